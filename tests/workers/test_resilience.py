"""The reminder scheduler under trouble, with a real webhook receiver that fails, stays down,
or answers slowly while the worker is killed; and two beats sweeping at once. Retries are
the sweep's and the send's logic: they run in the test process on a simulated clock. A killed
worker and two beats are about processes: real `pathway beat` and `pathway worker` on the
local Redis. Whatever happens, every
reminder arrives, retries carry the same ``webhook-id``, and nothing is sent twice that the
receiver could not recognise as a retry."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from engine import ReminderStatus
from tests.conftest import Database
from tests.workers.conftest import (
    HOOK,
    cases_due_soon,
    logs,
    more_sweeps,
    simulation,
    start,
    stop,
    wait,
    worker_env,
)


@dataclass
class Hit:
    webhook_id: str
    reminder_id: int
    status: int


@dataclass
class Receiver:
    """A webhook receiver answering with ``answer(n)`` for its n-th request (from 1)."""

    answer: Callable[[int], int]
    delay: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Response:
        with self.lock:
            n = len(self.hits) + 1
            status = self.answer(n)
            self.hits.append(
                Hit(
                    request.headers["webhook-id"],
                    json.loads(request.get_data())["reminder_id"],
                    status,
                )
            )
        if self.delay:
            time.sleep(self.delay)
        return Response("ok" if status < 400 else "down", status=status)

    def snapshot(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)


def _reminders(db: Database, case_ids: list[str]) -> list[engine.ReminderRecord]:
    records = []
    with db.sessions() as session:
        for case_id in case_ids:
            found, _ = engine.list_reminders(session, case_id=case_id)
            records.extend(found)
    return records


def _settled(db: Database, case_ids: list[str], status: ReminderStatus) -> Callable[[], bool]:
    def check() -> bool:
        records = _reminders(db, case_ids)
        return len(records) == len(case_ids) and all(r.status == status for r in records)

    return check


def test_a_webhook_failing_three_times_is_retried_until_it_is_delivered_once(
    db: Database, hookserver: HTTPServer
) -> None:
    receiver = Receiver(answer=lambda n: 503 if n <= 3 else 200)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    (case_id,) = cases_due_soon(db, seconds=2)
    run = simulation(db, webhook_url=hookserver.url_for(HOOK))
    done = run.run_until(_settled(db, [case_id], ReminderStatus.SENT), seconds=45)
    run.run_for(2.5)  # more sweeps: nothing may be sent again
    assert done, run.sends
    (record,) = _reminders(db, [case_id])
    assert (record.status, record.attempts, record.last_error) == ("sent", 4, None)
    hits = receiver.snapshot()
    assert [h.status for h in hits] == [503, 503, 503, 200]
    assert {h.webhook_id for h in hits} == {f"reminder-{record.id}"}


def test_a_webhook_that_stays_down_fails_the_reminder_after_max_attempts(
    db: Database, hookserver: HTTPServer
) -> None:
    receiver = Receiver(answer=lambda n: 503)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    (case_id,) = cases_due_soon(db, seconds=2)
    run = simulation(db, webhook_url=hookserver.url_for(HOOK), reminder_max_attempts=3)
    done = run.run_until(_settled(db, [case_id], ReminderStatus.FAILED), seconds=45)
    run.run_for(2.5)  # more sweeps: a failed reminder is not tried again
    assert done, run.sends
    (record,) = _reminders(db, [case_id])
    assert (record.status, record.attempts) == ("failed", 3)
    assert record.last_error is not None and "503" in record.last_error
    hits = receiver.snapshot()
    assert len(hits) == 3
    assert {h.webhook_id for h in hits} == {f"reminder-{record.id}"}


def test_two_beats_at_once_send_every_reminder_exactly_once(
    db: Database, tmp_path: Path, broker: str, hookserver: HTTPServer
) -> None:
    receiver = Receiver(answer=lambda n: 200)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    case_ids = cases_due_soon(db, seconds=1, count=5)
    url = hookserver.url_for(HOOK)
    # The subject is two beats, not the reaper or the send's time limit: on a busy machine
    # (browser tests beside it) a send can outlast a 3.5 s limit after the webhook answered,
    # and is then rightly taken back and sent again. Generous limits keep this test on its
    # subject; the reaper and the limits have tests of their own.
    settings = {
        "PATHWAY_WEBHOOK_URL": url,
        "PATHWAY_REMINDER_SEND_TIMEOUT": "20",
        "PATHWAY_REMINDER_CLAIM_TIMEOUT": "60",
    }
    # Several pool processes, so that the sweeps the two beats publish do run at once.
    processes = [
        start(
            ["worker", "--concurrency", "4"],
            worker_env(db, tmp_path / "worker", broker, **settings),
            tmp_path / "worker.log",
        )
    ]
    for name in ("beat-a", "beat-b"):
        processes.append(
            start(
                ["beat"],
                worker_env(db, tmp_path / name, broker, **settings),
                tmp_path / f"{name}.log",
            )
        )
    try:
        done = wait(_settled(db, case_ids, ReminderStatus.SENT), timeout=45)
        # More sweeps from both beats: nothing may arrive twice.
        assert more_sweeps(tmp_path, 4), logs(tmp_path)
    finally:
        stop(processes)
    assert done, logs(tmp_path)
    records = _reminders(db, case_ids)
    assert len(records) == 5
    assert all(r.attempts == 1 for r in records), [(r.id, r.attempts) for r in records]
    ids = sorted(h.webhook_id for h in receiver.snapshot())
    assert ids == sorted(f"reminder-{r.id}" for r in records), logs(tmp_path)


def test_a_worker_killed_while_sending_is_recovered_by_the_reaper(
    db: Database, tmp_path: Path, broker: str, hookserver: HTTPServer
) -> None:
    # 2.5 s per answer: long enough for the kill to land mid-send, and inside what a batch
    # waits for its channels (0.8 x 3.5 s), so the send after the restart completes.
    receiver = Receiver(answer=lambda n: 200, delay=2.5)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    case_ids = cases_due_soon(db, seconds=2, count=2)
    env = worker_env(db, tmp_path, broker, PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK))
    worker = start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    processes = [worker, start(["beat"], env, tmp_path / "beat.log")]
    try:
        arrived = wait(lambda: bool(receiver.snapshot()), timeout=45)
        assert arrived, logs(tmp_path)
        # The receiver has the request and answers only 2.5 s later: the send is under way.
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        first = receiver.snapshot()
        processes.append(start(["worker", "--concurrency", "1"], env, tmp_path / "worker-2.log"))
        done = wait(_settled(db, case_ids, ReminderStatus.SENT), timeout=60)
        assert more_sweeps(tmp_path, 2), logs(tmp_path)  # after which nothing more may arrive
    finally:
        stop(processes)
    assert done, logs(tmp_path)
    assert first, "a send was under way at the kill (both, when they went as one batch)"
    hits = receiver.snapshot()
    records = _reminders(db, case_ids)
    by_reminder: dict[int, list[str]] = {}
    for hit in hits:
        by_reminder.setdefault(hit.reminder_id, []).append(hit.webhook_id)
    assert sorted(by_reminder) == sorted(r.id for r in records)
    for reminder_id, webhook_ids in by_reminder.items():
        assert set(webhook_ids) == {f"reminder-{reminder_id}"}
    # Those whose send was cut off were sent again after the reaper put them back.
    for hit in first:
        assert len(by_reminder[hit.reminder_id]) >= 2
