"""Batched sends with real processes: `pathway worker` and `pathway beat` on Redis, a real
webhook receiver and a real SMTP server. A batch's reminders are claimed together and sent
at once, yet each is recorded on its own; a worker killed mid-batch loses none; a duplicate
batch message claims nothing; a batch's email goes over one SMTP connection."""

from __future__ import annotations

import json
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from engine import ReminderStatus
from tests.conftest import Database
from tests.workers.conftest import (
    HOOK,
    Collector,
    cases_due_soon,
    logs,
    more_sweeps,
    start,
    stop,
    wait,
    worker_env,
)
from tests.workers.test_resilience import Receiver, _reminders, _settled
from workers import scheduler
from workers.app import create_celery
from workers.settings import WorkerSettings


def _without_channels(env: dict[str, str]) -> dict[str, str]:
    """The environment with PATHWAY_CHANNELS unset, as a new user leaves it."""
    return {k: v for k, v in env.items() if k != "PATHWAY_CHANNELS"}


def _sends_done(folder: Path, task: str) -> int:
    return sum(
        1
        for path in folder.glob("worker*.log")
        for line in path.read_text(errors="replace").splitlines()
        if f"Task {task}[" in line and "] succeeded in " in line
    )


def test_a_batch_records_each_reminder_on_its_own_when_the_webhook_fails_for_some(
    db: Database, tmp_path: Path, broker: str, hookserver: HTTPServer
) -> None:
    refused = {"MRN-BATCH-2", "MRN-BATCH-4", "MRN-BATCH-5"}

    def receive(request: Request) -> Response:
        if json.loads(request.get_data())["patient_ref"] in refused:
            return Response("down", status=503)
        return Response("ok", status=200)

    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
    case_ids = cases_due_soon(db, seconds=2, count=6, ref="MRN-BATCH")
    # No PATHWAY_CHANNELS: the webhook's URL and secret alone send every reminder to it.
    env = _without_channels(
        worker_env(
            db,
            tmp_path,
            broker,
            PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK),
            PATHWAY_REMINDER_BACKOFF_SECONDS="3600",  # one attempt each within the test
        )
    )
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:
        done = wait(lambda: all(r.attempts == 1 for r in _reminders(db, case_ids)), timeout=45)
        settled = wait(
            lambda: all(r.status != ReminderStatus.SENDING for r in _reminders(db, case_ids)),
            timeout=15,
        )
        assert more_sweeps(tmp_path, 2), logs(tmp_path)
    finally:
        stop(processes)
    assert done and settled, logs(tmp_path)
    assert _sends_done(tmp_path, "pathway.send_reminders") == 1, "the six went as one batch"
    assert len(hookserver.log) == 6
    records = {r.case_id: r for r in _reminders(db, case_ids)}
    for n, case_id in enumerate(case_ids, start=1):
        record = records[case_id]
        assert record.attempts == 1
        if f"MRN-BATCH-{n}" in refused:
            assert record.status == ReminderStatus.PENDING
            assert record.last_error == "webhook: webhook answered HTTP 503"
            assert record.sent_at is None and record.next_attempt_at is not None
            waits = record.next_attempt_at - datetime.now(UTC)
            assert timedelta(minutes=55) < waits <= timedelta(hours=1), "its own backoff"
        else:
            assert (record.status, record.last_error) == (ReminderStatus.SENT, None)
            assert record.sent_at is not None and record.next_attempt_at is None
    everything = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
    assert "MRN-BATCH" not in everything, "no patient reference in any log"


def test_a_worker_killed_mid_batch_loses_no_reminder(
    db: Database, tmp_path: Path, broker: str, hookserver: HTTPServer
) -> None:
    release = threading.Event()
    receiver = Receiver(answer=lambda n: 200)

    def receive(request: Request) -> Response:
        # Every other reminder is held open until the worker has been killed.
        if json.loads(request.get_data())["patient_ref"][-1] in "24":
            receiver(request)
            release.wait(timeout=30)
            return Response("ok", status=200)
        return receiver(request)

    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
    case_ids = cases_due_soon(db, seconds=2, count=4, ref="MRN-KILL")
    env = worker_env(db, tmp_path, broker, PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK))
    worker = start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    processes = [worker, start(["beat"], env, tmp_path / "beat.log")]
    try:
        # All four requests are in: two answered, two held. The batch is under way.
        arrived = wait(lambda: len(receiver.snapshot()) == 4, timeout=45)
        assert arrived, logs(tmp_path)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        release.set()
        with db.sessions() as session:
            stuck = [
                r.status for c in case_ids for r in engine.list_reminders(session, case_id=c)[0]
            ]
        processes.append(start(["worker", "--concurrency", "1"], env, tmp_path / "worker-2.log"))
        done = wait(_settled(db, case_ids, ReminderStatus.SENT), timeout=60)
        assert more_sweeps(tmp_path, 2), logs(tmp_path)  # after which nothing more may arrive
    finally:
        release.set()
        stop(processes)
    assert done, logs(tmp_path)
    assert stuck == [ReminderStatus.SENDING] * 4, "killed before it could record any"
    records = _reminders(db, case_ids)
    by_reminder: dict[int, list[str]] = {}
    for hit in receiver.snapshot():
        by_reminder.setdefault(hit.reminder_id, []).append(hit.webhook_id)
    assert sorted(by_reminder) == sorted(r.id for r in records), "every reminder arrived"
    for reminder_id, webhook_ids in by_reminder.items():
        assert len(webhook_ids) >= 2, "sent before the kill, and again after it"
        assert set(webhook_ids) == {f"reminder-{reminder_id}"}, "a repeat carries the same id"


def test_a_duplicate_batch_message_claims_nothing(
    db: Database, tmp_path: Path, broker: str, hookserver: HTTPServer
) -> None:
    receiver = Receiver(answer=lambda n: 200)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    case_ids = cases_due_soon(db, seconds=-5, count=3, ref="MRN-DUP")
    settings = WorkerSettings(
        database_url=db.url,
        broker_url=broker,
        jwt_secret="unused-by-workers-but-required-on-postgresql-0123",  # type: ignore[arg-type]
    )
    published: list[int] = []
    scheduler.sweep(
        sessions=db.sessions,
        settings=settings,
        clock=engine.SystemClock(),
        publish=published.extend,
    )
    assert len(published) == 3
    app = create_celery(settings)
    # The same batch twice, and one of its ids as a message of the task before batches.
    for _ in range(2):
        app.send_task("pathway.send_reminders", args=(published,), queue="pathway.send")
    app.send_task("pathway.send_reminder", args=(published[0],), queue="pathway.send")
    app.close()
    env = worker_env(db, tmp_path, broker, PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK))
    # Two pool processes: the duplicates run at the same time.
    worker = start(["worker", "--concurrency", "2"], env, tmp_path / "worker.log")
    try:
        done = wait(
            lambda: (
                _sends_done(tmp_path, "pathway.send_reminders") == 2
                and _sends_done(tmp_path, "pathway.send_reminder") == 1
            ),
            timeout=45,
        )
    finally:
        stop([worker])
    assert done, logs(tmp_path)
    records = _reminders(db, case_ids)
    assert [(r.status, r.attempts) for r in records] == [(ReminderStatus.SENT, 1)] * 3
    assert sorted(h.reminder_id for h in receiver.snapshot()) == sorted(published)


def test_a_batch_sends_its_email_over_one_smtp_connection(
    db: Database, tmp_path: Path, broker: str, mailbox: tuple[Collector, int]
) -> None:
    box, smtp_port = mailbox
    before = box.connections  # the server's own start-up probe
    case_ids = cases_due_soon(db, seconds=2, count=5, ref="MRN-MAIL")
    env = _without_channels(
        worker_env(
            db,
            tmp_path,
            broker,
            PATHWAY_SMTP_HOST="127.0.0.1",
            PATHWAY_SMTP_PORT=str(smtp_port),
            PATHWAY_SMTP_RECIPIENTS=json.dumps({"coordinator": ["coord@hospital.example"]}),
        )
    )
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:
        done = wait(_settled(db, case_ids, ReminderStatus.SENT), timeout=45)
        assert more_sweeps(tmp_path, 2), logs(tmp_path)
    finally:
        stop(processes)
    assert done, logs(tmp_path)
    assert _sends_done(tmp_path, "pathway.send_reminders") == 1, "the five went as one batch"
    assert len(box.messages) == 5
    assert box.connections - before == 1, "one connection for the whole batch"
    records = _reminders(db, case_ids)
    assert sorted(m["Message-ID"] for m in box.messages) == sorted(
        f"<reminder-{r.id}@pathway>" for r in records
    )
