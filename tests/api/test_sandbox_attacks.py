"""A deployed diagram whose gateway condition holds one operation that would run for hours:
completing the step that evaluates it fails within a second or two with a clear problem, the
case is left as it was, and the server keeps answering meanwhile.

Each run has a server and a database of its own (a fresh PostgreSQL database, not the suite's
shared one), because the hostile copy becomes the latest version of the pathway there.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

import engine
from tests.api.conftest import Server, start_server, stop_server
from tests.api.test_cases import etag, get_case, problem, ready, recent_intake, start
from tests.conftest import PG_ADMIN_URL
from tests.data import NO_RED_FLAGS
from tests.engine.test_sandbox_attacks import HOSTILE
from tests.engine.test_sandbox_attacks import _files as hostile_files


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    dropped: list[str] = []
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path / 'pathway.db'}"
    else:
        request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
        name = f"pathway_attack_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        dropped.append(name)
        database = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        db = engine.make_engine(database)
        engine.upgrade(db)
        db.dispose()
    running = start_server(
        kind=request.param, database=database, data_dir=tmp_path / "server", extra_env={}
    )
    yield running
    stop_server(running)
    for name in dropped:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _deploy_hostile_copy(server: Server) -> int:
    """Deploy the bundled pathway with the attack in its red-flag gateway, as the latest."""
    db = engine.make_engine(server.database)
    sessions = engine.session_factory(db)
    with sessions.begin() as session:
        gateway = f"red_flag != &quot;none&quot; or {HOSTILE}"
        info = engine.deploy(
            session, files=hostile_files(gateway=gateway), now=engine.SystemClock().now()
        )
    db.dispose()
    return info.version


def test_a_hostile_gateway_fails_the_step_quickly_and_the_server_keeps_answering(
    server: Server,
) -> None:
    assert _deploy_hostile_copy(server) == 2  # the bundled pathway is version 1
    with server.client("ana", "coordinator") as ana, server.client("lee", "clinician") as lee:
        case = start(ana, "MRN-ATTACK-1", recent_intake())
        assert case["definition_version"] == 2
        outcome: dict[str, Any] = {}

        def complete_screen() -> None:
            started = time.monotonic()
            outcome["response"] = lee.post(
                f"/cases/{case['id']}/tasks/red_flag_screen/complete",
                json={"data": NO_RED_FLAGS},
                headers={"If-Match": etag(case)},
            )
            outcome["seconds"] = time.monotonic() - started

        completing = threading.Thread(target=complete_screen)
        completing.start()
        health: list[float] = []
        with httpx.Client(base_url=server.url, timeout=5) as probe:
            while completing.is_alive() or not health:
                asked = time.monotonic()
                assert probe.get("/healthz").status_code == 200
                health.append(time.monotonic() - asked)
        completing.join()

        assert outcome["seconds"] < 2, outcome["seconds"]
        body = problem(outcome["response"], 500)
        assert "too large" in body["detail"], body
        assert max(health) < 1, health
        after = get_case(lee, case["id"])
        assert after["version"] == case["version"]
        assert list(ready(after)) == ["red_flag_screen"]
        assert server.process.poll() is None
