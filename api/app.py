"""The FastAPI application: settings, database, the bundled pathway, logging and errors."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import orjson
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import engine

from . import definitions, metrics, migrations, pages, problems, routes, uploads, worklist
from .auth import TokenVerifier
from .settings import ApiSettings, get_settings

log = logging.getLogger("api.access")


# A request id a caller may choose: it is echoed into every log line of the request, so
# only the shape of a generated id (a UUID or hex), which can neither forge a line nor carry
# a word the caller chose.
_REQUEST_ID = re.compile(r"[0-9A-Fa-f][0-9A-Fa-f-]{7,63}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def loggable_path(scope: Scope) -> str:
    """The request's path as the log may show it: the route's template, with a case's id
    when it is a UUID (every case id is), and every other parameter as its placeholder
    (``/cases/6f0c.../tasks/{task_id}/complete``): a step id is harmless, but what a caller
    types there may not be (a patient reference in the wrong place). A path no route took
    is not shown at all."""
    template = getattr(scope.get("route"), "path", None)
    if template is None:
        return "/(unrouted)"
    case_id = (scope.get("path_params") or {}).get("case_id")
    if isinstance(case_id, str) and _UUID.fullmatch(case_id):
        template = template.replace("{case_id}", case_id)
    return str(template)


class AccessLog:
    """Gives each request an id (X-Request-ID) and logs method, path, status and time;
    refuses a body over the size limit by its Content-Length before reading any of it; and
    answers an unexpected error with a 500 that names the request id.

    Nothing the caller sent is logged: not the query string, not a path parameter that is
    not an id, not an error's text (see ``problems.log_unexpected``). A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task and two streams per request.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        """A diagram upload may be larger than any other request body."""
        if scope["method"] == "POST" and uploads.is_upload_path(scope["path"]):
            return self.max_upload_bytes, "PATHWAY_MAX_DEFINITION_BYTES"
        return self.max_body_bytes, "PATHWAY_MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        received = 0
        limit, setting = self._limit(scope)

        async def receive_within_limit() -> Message:
            # A body sent without Content-Length is cut off as it grows past the limit. The
            # HTTPException passes through FastAPI's body parsing to the problem handler.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise StarletteHTTPException(413, problems.too_large_detail(limit, setting))
            return message

        try:
            length = headers.get(b"content-length", b"")
            if length.isdigit() and int(length) > limit:
                # Refused before a byte of the body is read. (FastAPI's own max_body_size
                # would answer this one in plain text, not as a problem.)
                await _answer(
                    scope,
                    send_with_id,
                    request_id=request_id,
                    status=413,
                    slug="http-413",
                    title="Request body too large",
                    detail=problems.too_large_detail(limit, setting),
                    close=True,
                )
            else:
                await self.app(scope, receive_within_limit, send_with_id)
        except Exception as exc:
            problems.log_unexpected(request_id, exc)
            if not started:
                await _answer(
                    scope,
                    send_with_id,
                    request_id=request_id,
                    status=500,
                    slug="internal-error",
                    title="Internal error",
                    detail=problems.unexpected_detail(request_id),
                )
            # Not raised again: the server would log its traceback, error text and all.
        finally:
            log.info(
                "%s %s %d %.1fms request=%s",
                scope["method"],
                loggable_path(scope),
                status,
                (time.perf_counter() - start) * 1000,
                request_id,
            )


async def _answer(
    scope: Scope,
    send: Send,
    *,
    request_id: str,
    status: int,
    slug: str,
    title: str,
    detail: str,
    close: bool = False,
) -> None:
    content = problems.body(
        status=status,
        slug=slug,
        title=title,
        detail=detail,
        path=str(scope.get("path", "")),
        request_id=request_id,
    )
    headers = [
        (b"content-type", problems.PROBLEM.encode()),
        *([(b"connection", b"close")] if close else []),
    ]
    payload = orjson.dumps(content)
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app; on the embedded default the database schema is brought up to date."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = engine.make_engine(settings.database)
        if settings.is_embedded:
            settings.private_data_dir()
            engine.upgrade(db)
        sessions = engine.session_factory(db)
        for attempt in (1, 2):
            try:
                with sessions.begin() as session:
                    engine.deploy_bundled(session, now=engine.SystemClock().now())
                    stopped = engine.stop_stale_migrations(session, now=engine.SystemClock().now())
                    if stopped:
                        log.warning(
                            "%d migration(s) stopped without finishing: run them again to "
                            "move the rest of their cases",
                            stopped,
                        )
                break
            except IntegrityError:
                if attempt == 2:
                    raise  # not a race with another worker: something is wrong
                # Another worker stored the same version at the same moment; read it back.
        app.state.db = db
        app.state.sessions = sessions
        # Engine work is CPU-bound under the GIL: a few threads per worker serve as many
        # requests as forty, without the thrashing (and the connection-pool queue).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        yield
        db.dispose()

    app = FastAPI(
        title="Pathway",
        summary="Clinical pathway engine: cases, their steps, deadlines and reminders.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = engine.SystemClock(zone=settings.zone)
    app.state.verifier = TokenVerifier(settings)
    problems.install(app)
    # The pages first: their routes step aside for any request not asking for HTML.
    app.include_router(pages.browser)
    app.include_router(pages.router)
    app.mount("/static", pages.static_files(), name="static")
    app.include_router(routes.router)
    app.include_router(worklist.router)
    app.include_router(definitions.router)
    app.include_router(migrations.router)
    if settings.metrics:  # off by default: then /metrics is a 404 like any unknown path
        app.include_router(metrics.router)

    app.add_middleware(pages.SecurityHeaders)
    app.add_middleware(
        AccessLog,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=uploads.upload_limit(settings),
    )
    return app
