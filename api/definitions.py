"""The routes for modelers: deploy a pathway's diagrams, list and read its versions, compare
two versions, and move running cases from one version to another.

Modelers (and admins) change definitions; every signed-in role reads them. Nothing here
returns patient data: a migration names cases by their ids only.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

import engine

from .auth import Forbidden, Principal, principal
from .dependencies import Clock, Transaction, error_responses, known_query_only
from .settings import ApiSettings

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(known_query_only)], tags=["definitions"])

MAX_FILES = 20
"""The most files one deployment takes (a BPMN file and the DMN files it calls)."""

_FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}\.(bpmn|dmn)$")


def upload_limit(settings: ApiSettings) -> int:
    """The largest upload body: a few files at the largest size each, and the form around
    them. Each file is held to ``max_definition_bytes`` on its own."""
    return 4 * settings.max_definition_bytes + 65_536


_UPLOAD_PATH = re.compile(
    r"^/definitions(/validate|/[A-Za-z_][\w.-]{0,199}/versions/\d{1,7}/diff)?$"
)


def is_upload_path(path: str) -> bool:
    """Whether a POST to this path carries diagram files (deploy, validate, diff edited
    files): such a body may be as large as ``upload_limit``."""
    return bool(_UPLOAD_PATH.match(path))


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


class DeployProblem(Exception):
    """An upload that is not a set of diagram files (422), or a file over the size limit
    (413)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_MULTIPART: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            }
        },
    }
}


def _problem_dicts(problems: list[engine.Problem]) -> list[dict[str, Any]]:
    return [
        {
            "file": p.file,
            "element_id": p.element_id,
            "line": p.line,
            "message": p.message,
            "fix": p.fix,
        }
        for p in problems
    ]


async def _read_upload(request: Request, settings: ApiSettings) -> list[tuple[str, bytes]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise DeployProblem(
            415,
            "send the diagrams as multipart/form-data, one part named 'files' per file "
            "(curl -F files=@pathway.bpmn -F files=@rules.dmn)",
        )
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    except StarletteHTTPException as exc:
        if exc.status_code == 413:
            raise
        raise DeployProblem(400, f"the multipart body could not be read: {exc.detail}") from None
    try:
        uploads = form.getlist("files")
        if not uploads:
            raise DeployProblem(422, "no files: send one part named 'files' per BPMN/DMN file")
        unknown = [key for key in form if key != "files"]
        if unknown:
            raise DeployProblem(422, f"unknown form field {unknown[0][:40]!r}: send 'files' only")
        files: list[tuple[str, bytes]] = []
        for upload in uploads:
            if not isinstance(upload, UploadFile):
                raise DeployProblem(422, "each 'files' part must be a file, not a text field")
            name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
            if not _FILENAME.match(name):
                raise DeployProblem(
                    422,
                    f"file name {name[:60]!r} refused: name each file like 'pathway.bpmn' or "
                    "'rules.dmn' (letters, digits, '.', '_', '-', ending .bpmn or .dmn)",
                )
            if any(name == seen for seen, _ in files):
                raise DeployProblem(422, f"two files are named {name!r}")
            size = upload.size if upload.size is not None else 0
            if size > settings.max_definition_bytes:
                raise DeployProblem(
                    413,
                    f"{name} is {size:,} bytes; a diagram file may be at most "
                    f"{settings.max_definition_bytes:,} bytes (PATHWAY_MAX_DEFINITION_BYTES)",
                )
            files.append((name, await upload.read()))
        return files
    finally:
        await form.close()


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
                "problems": _problem_dicts(exc.problems),
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
    openapi_extra=_MULTIPART,
)
async def deploy(request: Request, caller: Modeler, clock: Clock) -> JSONResponse:
    """Validate and deploy a pathway (one BPMN file and the DMN files it calls).

    201 with the new version; 200 when the same bytes are already deployed (the same
    version); 422 with every problem (file, element, line, what to change) when it cannot be
    deployed. New cases start on the newest version; running cases stay on theirs.
    """
    import anyio.to_thread

    settings: ApiSettings = request.app.state.settings
    try:
        files = await _read_upload(request, settings)
    except DeployProblem as exc:
        from .problems import problem

        return problem(
            request,
            status=exc.status,
            slug="upload-refused",
            title="The upload was refused",
            detail=exc.detail,
        )
    status, body = await anyio.to_thread.run_sync(
        _deploy, request.app.state.sessions, files, clock.now()
    )
    if status == 422:
        from .problems import PROBLEM

        body.update(
            {
                "type": "/problems/definition-invalid",
                "title": "The definition has problems",
                "status": 422,
                "detail": f"{len(body['problems'])} problem(s): nothing was deployed",
                "instance": request.url.path,
                "request_id": getattr(request.state, "request_id", None),
            }
        )
        return JSONResponse(body, status_code=422, media_type=PROBLEM)
    log.info(
        "%s deployed %s version %d (%s)",
        caller.sub,
        body["pathway"],
        body["version"],
        "new" if body["created"] else "already stored",
    )
    headers = {"Location": f"/definitions/{body['pathway']}/versions/{body['version']}"}
    return JSONResponse(body, status_code=status, headers=headers)


def _refused_upload(request: Request, exc: DeployProblem) -> JSONResponse:
    from .problems import problem

    return problem(
        request,
        status=exc.status,
        slug="upload-refused",
        title="The upload was refused",
        detail=exc.detail,
    )


def _validate(files: list[tuple[str, bytes]], limit: int) -> list[engine.Problem]:
    return [
        p for report in engine.validate_documents(files, max_bytes=limit) for p in report.problems
    ]


@router.post(
    "/definitions/validate",
    responses=error_responses(400, 413, 415),
    openapi_extra=_MULTIPART,
)
async def validate(request: Request, caller: Modeler) -> JSONResponse:
    """Validate a pathway's files as a deployment would, without deploying anything.

    Always 200 for files that could be read: ``deployable`` says whether they would deploy,
    ``problems`` lists every problem (file, element, line, what to change).
    """
    import anyio.to_thread

    settings: ApiSettings = request.app.state.settings
    try:
        files = await _read_upload(request, settings)
    except DeployProblem as exc:
        return _refused_upload(request, exc)
    problems = await anyio.to_thread.run_sync(_validate, files, settings.max_definition_bytes)
    return JSONResponse(
        {
            "deployable": not problems,
            "problems": _problem_dicts(problems),
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
        return 422, {"deployable": False, "problems": _problem_dicts(problems)}
    with sessions.begin() as session:
        stored = engine.definition_version(session, pathway, version)
        old = engine.original_files(session, stored.id)
    result = engine.diff_definitions(old, files)
    return 200, {"pathway": pathway, "from": version, "to": None, **result.as_dict()}


@router.post(
    "/definitions/{pathway}/versions/{version}/diff",
    responses=error_responses(400, 404, 413, 415),
    openapi_extra=_MULTIPART,
)
async def diff_edited(
    request: Request, caller: Modeler, pathway: PathwayId, version: VersionNumber
) -> JSONResponse:
    """What the uploaded (edited, not deployed) files change from a deployed version, in the
    words a clinician reads. 422 with the problems when the files would not deploy."""
    import anyio.to_thread

    settings: ApiSettings = request.app.state.settings
    try:
        files = await _read_upload(request, settings)
    except DeployProblem as exc:
        return _refused_upload(request, exc)
    status, body = await anyio.to_thread.run_sync(
        _diff_edited,
        request.app.state.sessions,
        pathway,
        version,
        files,
        settings.max_definition_bytes,
    )
    if status == 422:
        from .problems import PROBLEM

        body.update(
            {
                "type": "/problems/definition-invalid",
                "title": "The definition has problems",
                "status": 422,
                "detail": f"{len(body['problems'])} problem(s): nothing to compare",
                "instance": request.url.path,
                "request_id": getattr(request.state, "request_id", None),
            }
        )
        return JSONResponse(body, status_code=422, media_type=PROBLEM)
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
    responses={**error_responses(404), 200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
)
def get_file(
    session: Transaction,
    caller: Reader,
    pathway: PathwayId,
    version: VersionNumber,
    name: FileName,
) -> Response:
    """A deployed file, byte for byte as it was deployed."""
    content = engine.definition_file(session, pathway, version, name)
    safe = name if _FILENAME.match(name) else "definition.xml"
    return Response(
        content,
        media_type="application/octet-stream",
        headers={
            # Downloaded, never rendered: an uploaded XML file could carry markup.
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
        },
    )


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


class MigrationRequest(BaseModel):
    """Which versions to move running cases between, and whether only to try."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_version: int = Field(alias="from", ge=1, le=1_000_000)
    to_version: int = Field(alias="to", ge=1, le=1_000_000)
    dry_run: bool = False


def _view_dict(view: engine.MigrationView) -> dict[str, Any]:
    return {
        "id": view.id,
        "pathway": view.pathway,
        "from": view.from_version,
        "to": view.to_version,
        "dry_run": view.dry_run,
        "status": view.status,
        "total": view.total,
        "done": view.total - view.counts.get("pending", 0),
        "counts": view.counts,
        "actor": view.actor,
        "created_at": view.created_at.isoformat() if view.created_at else None,
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
        "cases": [
            {"case_id": m.case_id, "outcome": m.outcome, "reason": m.reason} for m in view.cases
        ],
        "href": f"/definitions/{view.pathway}/migrations/{view.id}" if view.id else None,
    }


def _run_in_background(app_state: Any, migration_id: int) -> None:
    def run() -> None:
        try:
            engine.run_migration(app_state.sessions, migration_id, clock=app_state.clock)
        except Exception as exc:  # logged without its text (it may hold row values)
            log.error("migration %d stopped: %s", migration_id, type(exc).__name__)

    threading.Thread(target=run, name=f"migration-{migration_id}", daemon=True).start()


@router.post(
    "/definitions/{pathway}/migrations",
    status_code=202,
    responses=error_responses(404, 409),
)
def migrate(
    request: Request,
    session: Transaction,
    caller: Modeler,
    clock: Clock,
    pathway: PathwayId,
    body: MigrationRequest,
) -> JSONResponse:
    """Move the running cases of one version to another.

    With ``dry_run`` the answer (200) says, for every running case of ``from``, whether it
    can move or why not. Without it the migration starts (202) and moves every case that can,
    each in its own transaction, keeping every waiting timer's due time; follow its ``href``
    for progress and the per-case results.
    """
    if body.dry_run:
        view = engine.preview_migration(
            session, pathway=pathway, from_version=body.from_version, to_version=body.to_version
        )
        return JSONResponse(_view_dict(view), status_code=200)
    migration_id = engine.start_migration(
        session,
        pathway=pathway,
        from_version=body.from_version,
        to_version=body.to_version,
        actor=caller.sub,
        now=clock.now(),
    )
    session.commit()
    view = engine.migration_status(session, migration_id)
    _run_in_background(request.app.state, migration_id)
    href = f"/definitions/{pathway}/migrations/{migration_id}"
    return JSONResponse(_view_dict(view), status_code=202, headers={"Location": href})


@router.get("/definitions/{pathway}/migrations/{migration_id}", responses=error_responses(404))
def migration_progress(
    session: Transaction,
    caller: Reader,
    pathway: PathwayId,
    migration_id: Annotated[int, Path(ge=1, le=2_000_000_000)],
) -> dict[str, Any]:
    """A migration's progress and the result for each case."""
    return _view_dict(engine.migration_status(session, migration_id, pathway=pathway))
