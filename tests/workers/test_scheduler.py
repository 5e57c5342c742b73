"""The scheduler with real processes: `pathway beat` and `pathway worker` (Celery) on the
local Redis, a real SMTP server and a real webhook receiver. A case's 2-week referral
deadline passes, and the reminder arrives once by email and once by webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from tests.api.conftest import free_port
from tests.conftest import IN_CI, Database
from tests.data import GOOD_PLAN, NO_RED_FLAGS
from tests.pathway.conftest import intake

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"scheduler-test-secret-0123456789").decode()
BROKER_DB = 11  # a Redis database of its own, emptied before each test


class Mailbox:
    """An aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def broker() -> Iterator[str]:
    url = f"redis://127.0.0.1:6379/{BROKER_DB}"
    try:
        client = redis.Redis.from_url(url)
        client.flushdb()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required under CI=true: {exc}")
        pytest.skip(f"Redis not available: {exc}")
    yield url
    client.flushdb()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=log.parent,
    )


def _case_due_soon(db: Database, *, seconds: float) -> str:
    """A disabling-pain case whose 2-week referral deadline falls ``seconds`` from now."""
    started = datetime.now(UTC) - timedelta(days=14) + timedelta(seconds=seconds)
    clock = engine.SimulatedClock(started)
    onset = (started - timedelta(days=7)).date().isoformat()
    with db.sessions.begin() as session:
        engine.deploy_bundled(session, now=started)
        view = engine.start_case(
            session,
            pathway="lumbar_radiculopathy",
            clock=clock,
            actor="coordinator:ana",
            patient_ref="MRN-SCHED-1",
            first_step_data={
                k: v
                for k, v in intake(disabling_pain=True, symptom_onset=onset).items()
                if k != "patient_ref"  # the case's own reference fills it in
            },
        )
        for step, data in (("red_flag_screen", NO_RED_FLAGS), ("conservative_plan", GOOD_PLAN)):
            view = engine.complete_task(
                session, case_id=view.id, step=step, data=data, clock=clock, actor="clinician:lee"
            )
    return view.id


def _verify(secret: str, headers: Any, body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in headers["webhook-signature"].split())


def test_two_week_reminder_arrives_once_by_email_and_once_by_webhook(
    db: Database, tmp_path: Path, broker: str, mailbox: tuple[Mailbox, int], httpserver: HTTPServer
) -> None:
    box, smtp_port = mailbox
    received: list[tuple[dict[str, str], bytes]] = []

    def receive(request: Request) -> Response:
        received.append((dict(request.headers), request.get_data()))
        return Response("ok", status=200)

    httpserver.expect_request("/hooks/pathway", method="POST").respond_with_handler(receive)
    case_id = _case_due_soon(db, seconds=3)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATHWAY_DATABASE_URL": db.url,
        "PATHWAY_DATA_DIR": str(tmp_path),
        "PATHWAY_JWT_SECRET": "unused-by-workers-but-required-on-postgresql-0123",
        "PATHWAY_BROKER_URL": broker,
        "PATHWAY_SWEEP_SECONDS": "1",
        "PATHWAY_CHANNELS": json.dumps({"coordinator": ["email", "webhook"]}),
        "PATHWAY_SMTP_HOST": "127.0.0.1",
        "PATHWAY_SMTP_PORT": str(smtp_port),
        "PATHWAY_SMTP_RECIPIENTS": json.dumps({"coordinator": ["coord@hospital.example"]}),
        "PATHWAY_WEBHOOK_URL": httpserver.url_for("/hooks/pathway"),
        "PATHWAY_WEBHOOK_SECRET": SECRET,
        "PATHWAY_PUBLIC_URL": "https://pathway.hospital.example",
    }
    worker = _start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    beat = _start(["beat"], env, tmp_path / "beat.log")
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not (box.messages and received):
            time.sleep(0.2)
        time.sleep(3)  # a few more sweeps: nothing may arrive twice
    finally:
        for process in (beat, worker):
            process.terminate()
        for process in (beat, worker):
            process.wait(timeout=20)
    logs = (tmp_path / "worker.log").read_text() + (tmp_path / "beat.log").read_text()
    assert len(box.messages) == 1, logs[-3000:]
    assert len(received) == 1, logs[-3000:]
    mail = box.messages[0]
    assert mail["To"] == "coord@hospital.example"
    assert mail["Message-ID"].startswith("<reminder-")
    assert (
        f"https://pathway.hospital.example/cases/{case_id}"
        in mail.get_payload(decode=True).decode()
    )
    headers, body = received[0]
    headers = {k.lower(): v for k, v in headers.items()}
    assert _verify(SECRET, headers, body)
    payload = json.loads(body)
    assert (payload["case_id"], payload["kind"]) == (case_id, "referral_due_2_weeks")
    with db.sessions() as session:
        (record,), _ = engine.list_reminders(session, case_id=case_id)
    assert (record.status, record.attempts) == ("sent", 1)
    assert "MRN-SCHED-1" not in logs, "no patient data in the worker's or beat's log"
