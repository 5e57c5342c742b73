"""Reading diagram files uploaded by modelers (deploy, validate, compare edited files): the
multipart form, its file names and sizes, and how a refused upload is answered."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

import engine

from .problems import problem
from .settings import ApiSettings

MAX_FILES = 20
"""The most files one deployment takes (a BPMN file and the DMN files it calls)."""

FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}\.(bpmn|dmn)$")


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


class DeployProblem(Exception):
    """An upload that is not a set of diagram files (422), or a file over the size limit
    (413)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


MULTIPART: dict[str, Any] = {
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


def problem_dicts(problems: list[engine.Problem]) -> list[dict[str, Any]]:
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


async def read_upload(request: Request, settings: ApiSettings) -> list[tuple[str, bytes]]:
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
            if not FILENAME.match(name):
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


def refused_upload(request: Request, exc: DeployProblem) -> JSONResponse:
    return problem(
        request,
        status=exc.status,
        slug="upload-refused",
        title="The upload was refused",
        detail=exc.detail,
    )
