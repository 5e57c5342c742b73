"""A real API server for the tests: ``pathway serve`` in a subprocess (uvicorn), on SQLite and
on PostgreSQL, with httpx as the client.

One server per database kind serves the whole test run; before each test every case table is
emptied (the deployed pathway stays), so each test owns its data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import engine
from api.auth import issue_token
from api.settings import ApiSettings
from tests.conftest import own_postgres_database

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-for-the-api-suite-only-0123456789"
CASE_TABLES = (
    "reminder_attempts",
    "idempotency_keys",
    "case_tasks",
    "case_events",
    "variances",
    "reminders",
    "case_timers",
    "cases",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``pathway serve`` process."""

    kind: str
    url: str
    database: str
    log: Path
    process: subprocess.Popen[bytes]
    settings: ApiSettings = field(repr=False)

    def token(self, sub: str, *roles: str, hours: float = 1) -> str:
        return issue_token(self.settings, sub=sub, roles=list(roles), hours=hours)

    def client(self, sub: str | None = None, *roles: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(sub, *roles)}"} if sub else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_through(self, request_id: str, timeout: float = 5) -> str:
        """The log once it holds ``request_id``: a request is logged after its response is
        sent, so reading the log the moment the answer arrives can miss its line."""
        deadline = time.monotonic() + timeout
        while request_id not in (text := self.log_text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"request {request_id} never logged: {text[-2000:]}")
            time.sleep(0.02)
        return text


def start_server(
    *, kind: str, database: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATHWAY_DATA_DIR": str(data_dir),
        "PATHWAY_JWT_SECRET": SECRET,
        "PATHWAY_LOG_LEVEL": "INFO",
        "PATHWAY_DATABASE_URL": database,
        **(extra_env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=data_dir,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pathway serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"pathway serve did not become ready: {log.read_text()[-2000:]}")
    settings = ApiSettings(
        data_dir=data_dir,
        database_url=database,
        jwt_secret=SECRET,  # type: ignore[arg-type]
    )
    return Server(kind, url, database, log, process, settings)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


def own_server(request: pytest.FixtureRequest, tmp_path: Path, *, env: dict[str, str]) -> Server:
    """A server of the test's own (on ``request.param``'s database, its case tables empty),
    with settings of its own: its log then holds that test's requests and nothing else."""
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'pathway.db'}"
    else:
        database = request.getfixturevalue("postgres_url")
        db = engine.make_engine(database)
        with db.begin() as conn:
            for table in CASE_TABLES:
                conn.execute(text(f"DELETE FROM {table}"))
        db.dispose()
    return start_server(
        kind=request.param, database=database, data_dir=tmp_path / "server", extra_env=env
    )


@contextmanager
def server_of_its_own(kind: str, data_dir: Path) -> Iterator[Server]:
    """A server on a database of its own (SQLite or a new PostgreSQL database), for tests
    that deploy versions: on the shared database they would become the version every other
    API test starts its cases on."""
    if kind == "sqlite":
        server = start_server(
            kind=kind, database=f"sqlite:///{data_dir / 'pathway.db'}", data_dir=data_dir
        )
        try:
            yield server
        finally:
            stop_server(server)
        return
    with own_postgres_database() as url:
        server = start_server(kind=kind, database=url, data_dir=data_dir)
        try:
            yield server
        finally:
            stop_server(server)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def api_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        database = f"sqlite:///{data_dir / 'pathway.db'}"
    else:
        database = request.getfixturevalue("postgres_url")
    server = start_server(kind=request.param, database=database, data_dir=data_dir)
    yield server
    stop_server(server)


@pytest.fixture
def api(api_server: Server) -> Iterator[Server]:
    """The server, with every case table emptied first (the deployed pathway stays)."""
    db = engine.make_engine(api_server.database)
    with db.begin() as conn:
        for table in CASE_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
    db.dispose()
    yield api_server


def intake(**overrides: Any) -> dict[str, Any]:
    """Intake data for a synthetic patient (the patient_ref comes from the case), whose
    symptoms began 32 days ago: the server runs on the real clock, so a fixed date would
    one day put the 3-month referral limit in the past."""
    data: dict[str, Any] = {
        "side": "left",
        "symptom_onset": (date.today() - timedelta(days=32)).isoformat(),
        "leg_pain_nrs": 6,
        "disabling_pain": False,
        "age": 44,
    }
    data.update(overrides)
    return data
