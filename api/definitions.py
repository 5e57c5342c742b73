"""The routes for modelers: deploy a pathway's diagrams, validate and compare edited ones, list
and read its versions, and compare two versions (moving running cases is ``migrations``).

Modelers (and admins) change definitions; every signed-in role reads them. Nothing here
returns patient data: a migration names cases by their ids only.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import engine

from .auth import Forbidden, Principal, principal
from .dependencies import Clock, Transaction, error_responses, known_query_only
from .problems import PROBLEM
from .settings import ApiSettings
from .uploads import (
    FILENAME,
    MULTIPART,
    DeployProblem,
    problem_dicts,
    read_upload,
    refused_upload,
)

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(known_query_only)], tags=["definitions"])


async def modeler(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """FastAPI dependency: the caller, who must be a modeler or an admin (403 otherwise)."""
    if not caller.has_any(frozenset({engine.Role.MODELER})):
        raise Forbidden("changing definitions is for modelers and admins")
    return caller


Modeler = Annotated[Principal, Depends(modeler)]
Reader = Annotated[Principal, Depends(principal)]
PathwayId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z_][\w.-]*$")]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]
FileName = Annotated[str, Path(min_length=1, max_length=255)]


def _invalid(request: Request, body: dict[str, Any], outcome: str) -> JSONResponse:
    """A definition with problems, as problem+json with every problem listed."""
    body.update(
        {
            "type": "/problems/definition-invalid",
            "title": "The definition has problems",
            "status": 422,
            "detail": f"{len(body['problems'])} problem(s): {outcome}",
            "instance": request.url.path,
            "request_id": getattr(request.state, "request_id", None),
        }
    )
    return JSONResponse(body, status_code=422, media_type=PROBLEM)


def _deploy(
    sessions: sessionmaker[Session], files: list[tuple[str, bytes]], now: datetime
) -> tuple[int, dict[str, Any]]:
    # Validation and parsing are CPU work on the request's thread, never the event loop.
    for attempt in (1, 2):
        try:
            with sessions.begin() as session:
                info = engine.deploy(session, files=files, now=now)
                latest = engine.latest(session, info.pathway)
            break
        except engine.DefinitionInvalid as exc:
            return 422, {
                "deployable": False,
                "problems": problem_dicts(exc.problems),
                "files": [{"name": n, "size": len(d)} for n, d in files],
            }
        except IntegrityError:
            if attempt == 2:
                raise
            # Another deployment stored a file or the version number at the same moment:
            # deploy again, seeing what it stored (the same bytes are then the same version).
    return (201 if info.created else 200), {
        "deployable": True,
        "problems": [],
        "pathway": info.pathway,
        "version": info.version,
        "created": info.created,
        "latest_version": latest.version,
        "bundle_sha256": info.bundle_sha256,
        "files": [{"name": n, "size": len(d)} for n, d in files],
    }


@router.post(
    "/definitions",
    status_code=201,
    responses={
        **error_responses(400, 413, 415),
        200: {"description": "the same files are already deployed as this version"},
    },
    openapi_extra=MULTIPART,
)
async def deploy(request: Request, caller: Modeler, clock: Clock) -> JSONResponse:
    """Validate and deploy a pathway (one BPMN file and the DMN files it calls).

    201 with the new version; 200 when the same bytes are already deployed (the same
    version); 422 with every problem (file, element, line, what to change) when it cannot be
    deployed. New cases start on the newest version; running cases stay on theirs.
    """
    settings: ApiSettings = request.app.state.settings
    try:
        files = await read_upload(request, settings)
    except DeployProblem as exc:
        return refused_upload(request, exc)
    status, body = await anyio.to_thread.run_sync(
        _deploy, request.app.state.sessions, files, clock.now()
    )
    if status == 422:
        return _invalid(request, body, "nothing was deployed")
    log.info(
        "%s deployed %s version %d (%s)",
        caller.sub,
        body["pathway"],
        body["version"],
        "new" if body["created"] else "already stored",
    )
    headers = {"Location": f"/definitions/{body['pathway']}/versions/{body['version']}"}
    return JSONResponse(body, status_code=status, headers=headers)


def _validate(files: list[tuple[str, bytes]], limit: int) -> list[engine.Problem]:
    return [
        p for report in engine.validate_documents(files, max_bytes=limit) for p in report.problems
    ]


@router.post(
    "/definitions/validate",
    responses=error_responses(400, 413, 415),
    openapi_extra=MULTIPART,
)
async def validate(request: Request, caller: Modeler) -> JSONResponse:
    """Validate a pathway's files as a deployment would, without deploying anything.

    Always 200 for files that could be read: ``deployable`` says whether they would deploy,
    ``problems`` lists every problem (file, element, line, what to change).
    """
    settings: ApiSettings = request.app.state.settings
    try:
        files = await read_upload(request, settings)
    except DeployProblem as exc:
        return refused_upload(request, exc)
    problems = await anyio.to_thread.run_sync(_validate, files, settings.max_definition_bytes)
    return JSONResponse(
        {
            "deployable": not problems,
            "problems": problem_dicts(problems),
            "files": [{"name": n, "size": len(d)} for n, d in files],
        }
    )


def _diff_edited(
    sessions: sessionmaker[Session],
    pathway: str,
    version: int,
    files: list[tuple[str, bytes]],
    limit: int,
) -> tuple[int, dict[str, Any]]:
    problems = _validate(files, limit)
    if problems:
        return 422, {"deployable": False, "problems": problem_dicts(problems)}
    with sessions.begin() as session:
        stored = engine.definition_version(session, pathway, version)
        old = engine.original_files(session, stored.id)
    result = engine.diff_definitions(old, files)
    return 200, {"pathway": pathway, "from": version, "to": None, **result.as_dict()}


@router.post(
    "/definitions/{pathway}/versions/{version}/diff",
    responses=error_responses(400, 404, 413, 415),
    openapi_extra=MULTIPART,
)
async def diff_edited(
    request: Request, caller: Modeler, pathway: PathwayId, version: VersionNumber
) -> JSONResponse:
    """What the uploaded (edited, not deployed) files change from a deployed version, in the
    words a clinician reads. 422 with the problems when the files would not deploy."""
    settings: ApiSettings = request.app.state.settings
    try:
        files = await read_upload(request, settings)
    except DeployProblem as exc:
        return refused_upload(request, exc)
    status, body = await anyio.to_thread.run_sync(
        _diff_edited,
        request.app.state.sessions,
        pathway,
        version,
        files,
        settings.max_definition_bytes,
    )
    if status == 422:
        return _invalid(request, body, "nothing to compare")
    return JSONResponse(body)


def _version_dict(v: engine.VersionSummary) -> dict[str, Any]:
    return {
        "pathway": v.pathway,
        "version": v.version,
        "bundle_sha256": v.bundle_sha256,
        "created_at": v.created_at.isoformat(),
        "running_cases": v.running_cases,
        "files": [
            {
                "name": name,
                "sha256": sha,
                "size": size,
                "href": f"/definitions/{v.pathway}/versions/{v.version}/files/{name}",
            }
            for name, sha, size in v.files
        ],
    }


@router.get("/definitions", responses=error_responses())
def list_definitions(session: Transaction, caller: Reader) -> dict[str, Any]:
    """Every pathway: its latest version and the running cases on each of its versions."""
    by_pathway: dict[str, list[engine.VersionSummary]] = {}
    for v in engine.definition_versions(session):
        by_pathway.setdefault(v.pathway, []).append(v)
    return {
        "pathways": [
            {
                "pathway": name,
                "latest_version": found[-1].version,
                "running_cases": sum(v.running_cases for v in found),
                "running_cases_by_version": {str(v.version): v.running_cases for v in found},
                "href": f"/definitions/{name}/versions",
            }
            for name, found in by_pathway.items()
        ]
    }


@router.get("/definitions/{pathway}/versions", responses=error_responses(404))
def list_versions(session: Transaction, caller: Reader, pathway: PathwayId) -> dict[str, Any]:
    """A pathway's versions, oldest first, with their files and running cases."""
    found = engine.definition_versions(session, pathway)
    return {"pathway": pathway, "versions": [_version_dict(v) for v in found]}


@router.get(
    "/definitions/{pathway}/versions/{version}/files/{name}",
    responses={
        **error_responses(404),
        200: {"content": {"application/octet-stream": {}}},
        304: {"description": "the caller's copy (If-None-Match) is this file"},
    },
    response_class=Response,
)
def get_file(
    session: Transaction,
    caller: Reader,
    pathway: PathwayId,
    version: VersionNumber,
    name: FileName,
    if_none_match: Annotated[str | None, Header(max_length=4000)] = None,
) -> Response:
    """A deployed file, byte for byte as it was deployed. A version's files never change:
    the answer may be kept a year (by the caller's browser only), and 304 answers an
    ``If-None-Match`` naming its ETag."""
    content = engine.definition_file(session, pathway, version, name)
    safe = name if FILENAME.match(name) else "definition.xml"
    etag = f'"{hashlib.sha256(content).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(
        content,
        media_type="application/octet-stream",
        headers={
            **headers,
            # Downloaded, never rendered: an uploaded XML file could carry markup.
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


# Private: the files are read only by signed-in people, so no shared cache may keep them.
IMMUTABLE = "private, max-age=31536000, immutable"


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weakly compared, as for a GET)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(",")[:50]:
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


@router.get("/definitions/{pathway}/versions/{a}/diff/{b}", responses=error_responses(404))
def diff_versions(
    session: Transaction,
    caller: Reader,
    pathway: PathwayId,
    a: VersionNumber,
    b: VersionNumber,
) -> dict[str, Any]:
    """What changed from version a to version b, in the words a clinician reads; changes
    that break the pathway's contract are marked ``breaking``."""
    old = engine.definition_version(session, pathway, a)
    new = engine.definition_version(session, pathway, b)
    result = engine.diff_definitions(
        engine.original_files(session, old.id), engine.original_files(session, new.id)
    )
    return {"pathway": pathway, "from": a, "to": b, **result.as_dict()}
