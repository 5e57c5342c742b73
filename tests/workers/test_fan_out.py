"""A backlog of due timers fired by more than one worker process at once, with real
processes: `pathway worker` and `pathway beat` on Redis and PostgreSQL, and a real webhook
receiver. Every case fires once and every reminder arrives once."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from pytest_httpserver import HTTPServer

import engine
from engine import EventType, ReminderStatus
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
from tests.workers.test_resilience import Receiver, _reminders, _settled
from workers import scheduler

ADVANCED = re.compile(r"(sweep|fire) \(process (\d+)\): (\d+) cases advanced")


def _firing(folder: Path) -> list[tuple[str, str, int]]:
    """(pool process, task, cases) of every sweep or fire task that advanced cases."""
    text = "".join(path.read_text(errors="replace") for path in folder.glob("worker*.log"))
    return [(m[2], m[1], int(m[3])) for m in ADVANCED.finditer(text) if int(m[3])]


def test_a_backlog_is_fired_by_two_worker_processes_and_each_reminder_sent_once(
    postgresql_db: Database, tmp_path: Path, broker: str, hookserver: HTTPServer
) -> None:
    db = postgresql_db
    receiver = Receiver(answer=lambda n: 200)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    # Already due when the worker starts: 120 cases in batches of 5, so the first sweep's
    # first batch is full and it asks for a second firer.
    case_ids = cases_due_soon(db, seconds=-1, count=120, ref="MRN-FAN")
    env = worker_env(
        db,
        tmp_path,
        broker,
        PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK),
        PATHWAY_SWEEP_BATCH="5",
        PATHWAY_FIRE_PARALLEL="2",
    )
    processes = [
        start(["worker", "--concurrency", "3"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:
        assert wait(_settled(db, case_ids, ReminderStatus.SENT), timeout=90), logs(tmp_path)
        # A few more sweeps: nothing may fire or arrive twice.
        assert more_sweeps(tmp_path, 3), logs(tmp_path)
    finally:
        stop(processes)

    firing = _firing(tmp_path)
    assert sum(cases for _, _, cases in firing) == len(case_ids), logs(tmp_path)
    assert any(task == "fire" for _, task, _ in firing), "no fire task advanced a case"
    assert len({process for process, _, _ in firing}) >= 2, "one pool process fired them all"
    with db.sessions() as session:
        fired = Counter(
            case_id
            for case_id in case_ids
            for event in engine.timeline(session, case_id)
            if event.type == EventType.TIMER_FIRED
        )
    assert fired == dict.fromkeys(case_ids, 1), "each case's 2-week deadline fired once"
    hits = receiver.snapshot()
    assert len(hits) == len(case_ids), "each reminder arrived once"
    assert len({hit.webhook_id for hit in hits}) == len(case_ids)
    assert {r.status for r in _reminders(db, case_ids)} == {ReminderStatus.SENT}


def test_a_full_first_batch_asks_for_more_firers_on_postgresql_only(db: Database) -> None:
    """On PostgreSQL the sweep asks for PATHWAY_FIRE_PARALLEL - 1 more firers, within the
    worker's processes less one; SQLite has one writer at a time, where a second firer would
    only wait for the first."""
    case_ids = cases_due_soon(db, seconds=-1, count=4, ref="MRN-ONE")
    sim = simulation(db, sweep_batch=2, fire_parallel=3, webhook_url="http://127.0.0.1:9/unused")
    asked: list[int] = []
    report = scheduler.sweep(
        sessions=db.sessions,
        settings=sim.settings,
        clock=sim.clock,
        publish=lambda ids: None,
        fan_out=lambda count, until, skip: asked.append(count),
    )
    assert report.cases == len(case_ids)
    assert asked == ([] if db.kind == "sqlite" else [2])
    # A worker of two processes keeps one to send: its sweep fires alone.
    assert scheduler.firers(db.sessions, sim.settings, processes=2) == 1
