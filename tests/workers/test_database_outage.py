"""PostgreSQL stopped for 30 s while timers fall due, with real processes: a PostgreSQL server
of the test's own, stopped in the middle of delivery (a fast shutdown: sessions are ended)
and started again; `pathway serve`, `pathway worker`, `pathway beat` and a webhook receiver.

Meanwhile the API answers 503 on /readyz at once; afterwards it answers 200 again, and the
worker and the beat carry on, none of them restarted. Every reminder arrives, a repeat with
the same id; nothing is left enqueued, in the database or in Redis. The worker logs one line
when the database goes and one when it returns, no traceback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import make_url

import engine
from engine import ReminderStatus
from tests.api.conftest import start_server, stop_server
from tests.conftest import Database
from tests.workers.conftest import (
    HOOK,
    cases_due_soon,
    logs,
    more_sweeps,
    start,
    stop,
    wait,
    worker_env,
)
from tests.workers.outage_log import assert_one_outage
from tests.workers.postgres_server import PostgresServer, postgres_server
from tests.workers.test_resilience import Receiver, _reminders, _settled

OUTAGE = 30.0


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def own_db(own_postgres: PostgresServer) -> Iterator[Database]:
    db_engine = engine.make_engine(own_postgres.url)
    engine.upgrade(db_engine)
    yield Database("postgresql", own_postgres.url, db_engine, engine.session_factory(db_engine))
    db_engine.dispose()


def _get(client: httpx.Client, path: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        status = client.get(path, timeout=10).status_code
    except httpx.HTTPError:
        status = 0
    return status, time.monotonic() - started


def test_postgresql_down_for_30_s_while_timers_fall_due_loses_no_reminder(
    own_postgres: PostgresServer,
    own_db: Database,
    tmp_path: Path,
    broker: str,
    hookserver: HTTPServer,
) -> None:
    db = own_db
    # Slow answers: when the database stops, a send is under way, its outcome not recorded.
    receiver = Receiver(answer=lambda n: 200, delay=0.5)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    before = cases_due_soon(db, seconds=4, count=4)
    api = start_server(kind="postgresql", database=db.url, data_dir=tmp_path / "api")
    env = worker_env(db, tmp_path, broker, PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK))
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    outage: list[tuple[str, int, float]] = []
    recovery: list[int] = []
    try:
        started = wait(lambda: bool(receiver.snapshot()), timeout=60)
        assert started, logs(tmp_path)
        # Timers falling due in the outage, whenever the processes took to start.
        during = cases_due_soon(db, seconds=10, count=3, ref="MRN-LATER")
        everything = before + during
        fired_before_stop = len(_reminders(db, during))
        db.engine.dispose()  # the test's own connections: not the subject
        own_postgres.stop()
        down_at = time.monotonic()
        with api.client("coordinator:ana", "coordinator") as client:
            while time.monotonic() - down_at < OUTAGE:
                for path in ("/readyz", "/worklist"):
                    outage.append((path, *_get(client, path)))
                time.sleep(0.5)
            own_postgres.start()
            up_at = time.monotonic()
            # The API recovers by itself: within a few seconds, no restart.
            while time.monotonic() - up_at < 30:
                recovery.append(_get(client, "/readyz")[0])
                if recovery[-1] == 200:
                    break
                time.sleep(0.2)
            worklist = _get(client, "/worklist")[0]
        done = wait(_settled(db, everything, ReminderStatus.SENT), timeout=90)
        # More sweeps: nothing may arrive again under another id.
        assert more_sweeps(tmp_path, 2), logs(tmp_path)
        away = time.monotonic() - down_at
        alive = [p.poll() is None for p in processes]
        queued = redis.Redis.from_url(broker).llen("pathway.send")
    finally:
        stop(processes)
        stop_server(api)
    assert done, logs(tmp_path) + api.log.read_text(errors="replace")[-2000:]
    assert alive == [True, True], "the worker and the beat rode out the outage themselves"
    assert fired_before_stop == 0, "the later timers fall due while the database is down"
    # 503 throughout the outage, at once (a refused connection, never a hang).
    assert outage and all(status == 503 for _, status, _ in outage), outage
    assert max(seconds for _, _, seconds in outage) < 2, outage
    assert recovery[-1] == 200 and worklist == 200, (recovery, worklist)
    records = _reminders(db, everything)
    assert len(records) == len(everything)
    assert all(r.status == ReminderStatus.SENT for r in records), "nothing left enqueued"
    assert queued == 0, "no send left in Redis"
    by_reminder: dict[int, set[str]] = {}
    for hit in receiver.snapshot():
        by_reminder.setdefault(hit.reminder_id, set()).add(hit.webhook_id)
    assert sorted(by_reminder) == sorted(r.id for r in records), "every reminder arrived"
    for reminder_id, webhook_ids in by_reminder.items():
        assert webhook_ids == {f"reminder-{reminder_id}"}, "a repeat carries the same id"
    where = make_url(db.url).render_as_string(hide_password=True)
    assert_one_outage(
        tmp_path / "worker.log",
        "database",
        where,
        at_least=int(up_at - down_at) - 1,
        at_most=int(away) + 1,
    )
    for log in (tmp_path / "beat.log", api.log):
        assert "Traceback" not in log.read_text(errors="replace"), log.name
