"""The scheduler with real processes: `pathway beat` and `pathway worker` (Celery) on the
local Redis, a real SMTP server and a real webhook receiver. A case's 2-week referral
deadline passes, and the reminder arrives once by email and once by webhook."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from engine import ReminderStatus
from tests.conftest import Database
from tests.workers.conftest import (
    HOOK,
    SECRET,
    Collector,
    cases_due_soon,
    more_sweeps,
    start,
    stop,
    verify,
    wait,
    worker_env,
)


def test_two_week_reminder_arrives_once_by_email_and_once_by_webhook(
    db: Database,
    tmp_path: Path,
    broker: str,
    mailbox: tuple[Collector, int],
    httpserver: HTTPServer,
) -> None:
    box, smtp_port = mailbox
    received: list[tuple[dict[str, str], bytes]] = []

    def receive(request: Request) -> Response:
        received.append((dict(request.headers), request.get_data()))
        return Response("ok", status=200)

    httpserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
    (case_id,) = cases_due_soon(db, seconds=1)
    env = worker_env(
        db,
        tmp_path,
        broker,
        PATHWAY_CHANNELS=json.dumps({"coordinator": ["email", "webhook"]}),
        PATHWAY_SMTP_HOST="127.0.0.1",
        PATHWAY_SMTP_PORT=str(smtp_port),
        PATHWAY_SMTP_RECIPIENTS=json.dumps({"coordinator": ["coord@hospital.example"]}),
        PATHWAY_WEBHOOK_URL=httpserver.url_for(HOOK),
    )
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:
        wait(lambda: bool(box.messages and received), timeout=40)
        # A few more sweeps: nothing may arrive twice.
        assert more_sweeps(tmp_path, 3), "the worker stopped sweeping"
    finally:
        stop(processes)
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
    assert verify(SECRET, headers, body)
    payload = json.loads(body)
    assert (payload["case_id"], payload["kind"]) == (case_id, "referral_due_2_weeks")
    with db.sessions() as session:
        (record,), _ = engine.list_reminders(session, case_id=case_id)
    assert (record.status, record.attempts) == (ReminderStatus.SENT, 1)
    assert "MRN-SCHED-1" not in logs, "no patient data in the worker's or beat's log"
