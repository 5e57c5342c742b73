"""Redis stopped for 30 s while timers fall due, with real processes: a Redis server of the
test's own (no persistence, so whatever it held is lost), `pathway serve`, `pathway worker`,
`pathway beat` on PostgreSQL and a webhook receiver. The API keeps answering throughout; once
Redis is back, every reminder arrives, none lost, without restarting anything. The worker
and the beat each log one line when Redis goes and one when it returns, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pytest_httpserver import HTTPServer

from engine import ReminderStatus
from tests.api.conftest import free_port, start_server, stop_server
from tests.conftest import IN_CI, Database
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
from tests.workers.test_resilience import Receiver, _reminders, _settled

OUTAGE = 30.0


class RedisServer:
    """A redis-server process of the test's own that can be stopped and started again on the
    same port, empty each time (as a Redis without persistence comes back)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        self.process = subprocess.Popen(
            [self.binary, *args, "no", "--dir", str(self.workdir)],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is required under CI=true")
        pytest.skip("redis-server not installed")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(binary, workdir)
    server.start()
    yield server
    server.stop()


def test_redis_down_for_30_s_while_timers_fall_due_loses_no_reminder(
    postgresql_db: Database, tmp_path: Path, own_redis: RedisServer, hookserver: HTTPServer
) -> None:
    db = postgresql_db
    # Slow answers: when Redis stops, some sends are still queued in it and are lost with it.
    receiver = Receiver(answer=lambda n: 200, delay=0.5)
    hookserver.expect_request(HOOK, method="POST").respond_with_handler(receiver)
    before = cases_due_soon(db, seconds=4, count=4)
    during = cases_due_soon(
        db, seconds=14, count=3, ref="MRN-LATER"
    )  # falls due while Redis is down
    everything = before + during
    api = start_server(kind="postgresql", database=db.url, data_dir=tmp_path / "api")
    env = worker_env(db, tmp_path, own_redis.url, PATHWAY_WEBHOOK_URL=hookserver.url_for(HOOK))
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    answers: list[tuple[str, int, float]] = []
    try:
        started = wait(lambda: bool(receiver.snapshot()), timeout=45)
        assert started, logs(tmp_path)
        own_redis.stop()
        down_at = time.monotonic()
        with api.client("coordinator:ana", "coordinator") as client:
            while time.monotonic() - down_at < OUTAGE:
                for path in ("/readyz", f"/cases/{before[0]}", "/worklist", "/reminders"):
                    t0 = time.monotonic()
                    try:
                        status = client.get(path, timeout=5).status_code
                    except httpx.HTTPError:
                        status = 0
                    answers.append((path, status, time.monotonic() - t0))
                time.sleep(1)
        sent_during_outage = [
            r for r in _reminders(db, everything) if r.status == ReminderStatus.SENT
        ]
        own_redis.start()
        up_at = time.monotonic()
        done = wait(_settled(db, everything, ReminderStatus.SENT), timeout=60)
        # More sweeps: nothing may arrive again under another id.
        assert more_sweeps(tmp_path, 2), logs(tmp_path)
        alive = [p.poll() is None for p in processes]
        # Both are back by now: the sweeps went round again.
        away = time.monotonic() - down_at
    finally:
        stop(processes)
        stop_server(api)
    assert done, logs(tmp_path)
    for name in ("worker.log", "beat.log"):
        assert_one_outage(
            tmp_path / name,
            "broker",
            own_redis.url,
            at_least=int(up_at - down_at) - 1,
            at_most=int(away) + 1,
        )
    assert alive == [True, True], "the worker and the beat rode out the outage themselves"
    assert answers and all(status == 200 for _, status, _ in answers), answers
    assert max(seconds for _, _, seconds in answers) < 2, answers
    # The outage did hold reminders back: some were still to be sent when Redis returned.
    assert len(sent_during_outage) < len(everything)
    records = _reminders(db, everything)
    assert len(records) == len(everything)
    by_reminder: dict[int, set[str]] = {}
    for hit in receiver.snapshot():
        by_reminder.setdefault(hit.reminder_id, set()).add(hit.webhook_id)
    assert sorted(by_reminder) == sorted(r.id for r in records), "every reminder arrived"
    for reminder_id, webhook_ids in by_reminder.items():
        assert webhook_ids == {f"reminder-{reminder_id}"}, "a repeat carries the same id"
