"""The FastAPI application: settings, database, the bundled pathway, logging and errors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from sqlalchemy.exc import IntegrityError

import engine

from . import problems
from .auth import TokenVerifier
from .routes import router

log = logging.getLogger("api.access")


def create_app(settings: engine.Settings | None = None) -> FastAPI:
    """Build the app; on the embedded default the database schema is brought up to date."""
    settings = settings or engine.get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = engine.make_engine(settings.database)
        if settings.is_embedded:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
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

    @app.middleware("http")
    async def access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # The query string is never logged: it can hold a patient reference.
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        log.info(
            "%s %s %d %.1fms request=%s",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - start) * 1000,
            request.state.request_id,
        )
        return response

    return app
