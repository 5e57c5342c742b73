"""The FastAPI application: settings, database, the bundled pathway, logging and errors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import engine

from . import problems
from .auth import TokenVerifier
from .routes import router
from .settings import ApiSettings, get_settings

log = logging.getLogger("api.access")


class AccessLog:
    """Gives each request an id (X-Request-ID) and logs method, path, status and time.

    The query string is never logged: it can hold a patient reference. A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware costs a task and two streams per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(b"x-request-id", b"").decode("latin-1")
        request_id = given[:100] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %d %.1fms request=%s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - start) * 1000,
                request_id,
            )


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
    app.state.clock = engine.SystemClock()
    app.state.verifier = TokenVerifier(settings)
    problems.install(app)
    app.include_router(router)

    app.add_middleware(AccessLog)
    return app
