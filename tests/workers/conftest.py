"""The scheduler tests' harness: Redis for a broker, an SMTP server and a webhook receiver in
the test process, cases whose deadline falls due seconds from now, and `pathway worker` /
`pathway beat` started as real processes with the settings the tests share."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from pytest_httpserver import HTTPServer
from standardwebhooks import Webhook, WebhookVerificationError

import engine
from tests.api.conftest import free_port
from tests.conftest import IN_CI, Database
from tests.data import GOOD_PLAN, NO_RED_FLAGS
from tests.pathway.conftest import intake
from workers import scheduler
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_" + base64.b64encode(b"synthetic-test-secret-0123456789").decode()
HOOK = "/hooks/pathway"
# A Redis database of the scheduler tests' own, emptied before and after each: 11, or under
# pytest-xdist 11 + the worker's number (gw0 -> 11, gw1 -> 12, ... up to 15).
_XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
BROKER_DB = 11 + _XDIST_WORKER
# Another Redis for these tests (host:port), for two test runs side by side on one machine.
REDIS_ADDRESS = os.environ.get("PATHWAY_TEST_REDIS", "127.0.0.1:6379")
assert BROKER_DB <= 15, "the scheduler tests own Redis databases 11-15: run at most 5 xdist workers"


@dataclass
class Collector:
    """An aiosmtpd handler keeping every message it receives, and counting the connections
    made to it (``CountingController``)."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    connections: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class CountingController(Controller):
    """An SMTP server that counts in its ``Collector`` each connection a client opens."""

    def factory(self) -> SMTP:
        server = super().factory()
        collector = self.handler
        opened = server.connection_made

        def connection_made(transport: Any) -> None:
            collector.connections += 1
            opened(transport)

        server.connection_made = connection_made  # type: ignore[method-assign]
        return server


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """Whether the Standard Webhooks package's own verifier accepts a request: an independent
    check of our signing (it also refuses a timestamp more than 5 minutes from now)."""
    try:
        Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError:
        return False
    return True


@pytest.fixture
def broker() -> Iterator[str]:
    url = f"redis://{REDIS_ADDRESS}/{BROKER_DB}"
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
def mailbox() -> Iterator[tuple[Collector, int]]:
    """An SMTP server in the test process, and its port."""
    box = Collector()
    port = free_port()
    controller = CountingController(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def hookserver() -> Iterator[HTTPServer]:
    """A threaded webhook server: a slow answer must not hold up the next request."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def cases_due_soon(
    db: Database, *, seconds: float, count: int = 1, ref: str = "MRN-SCHED"
) -> list[str]:
    """``count`` disabling-pain cases whose 2-week referral deadline falls ``seconds`` from
    now, with patient references ``{ref}-1``, ``{ref}-2``, ..."""
    started = datetime.now(UTC) - timedelta(days=14) + timedelta(seconds=seconds)
    clock = engine.SimulatedClock(started)
    onset = (started - timedelta(days=7)).date().isoformat()
    ids = []
    with db.sessions.begin() as session:
        engine.deploy_bundled(session, now=started)
    for n in range(1, count + 1):
        with db.sessions.begin() as session:
            view = engine.start_case(
                session,
                pathway="lumbar_radiculopathy",
                clock=clock,
                actor="coordinator:ana",
                patient_ref=f"{ref}-{n}",
                first_step_data={
                    k: v
                    for k, v in intake(disabling_pain=True, symptom_onset=onset).items()
                    if k != "patient_ref"  # the case's own reference fills it in
                },
            )
            for step, data in (
                ("red_flag_screen", NO_RED_FLAGS),
                ("conservative_plan", GOOD_PLAN),
            ):
                view = engine.complete_task(
                    session,
                    case_id=view.id,
                    step=step,
                    data=data,
                    clock=clock,
                    actor="clinician:lee",
                )
        ids.append(view.id)
    return ids


def worker_env(db: Database, data_dir: Path, broker: str, **settings: str) -> dict[str, str]:
    """The environment of a worker or beat: sweeps every second, reminders to the coordinator
    by webhook, short claim and send timeouts; ``settings`` add to it or override it."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATHWAY_DATABASE_URL": db.url,
        "PATHWAY_DATA_DIR": str(data_dir),
        "PATHWAY_JWT_SECRET": "unused-by-workers-but-required-on-postgresql-0123",
        "PATHWAY_BROKER_URL": broker,
        "PATHWAY_SWEEP_SECONDS": "1",
        "PATHWAY_REMINDER_BACKOFF_SECONDS": "0.2",
        "PATHWAY_REMINDER_CLAIM_TIMEOUT": "4",
        "PATHWAY_REMINDER_SEND_TIMEOUT": "3.5",
        "PATHWAY_CHANNELS": json.dumps({"coordinator": ["webhook"]}),
        "PATHWAY_WEBHOOK_SECRET": SECRET,
        "PATHWAY_PUBLIC_URL": "https://pathway.hospital.example",
        **settings,
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``pathway <args>``. A session of its own: the worker's pool children can be
    killed with it as a group."""
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=log.parent,
        start_new_session=True,
    )


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait(condition: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def sweeps_done(folder: Path) -> int:
    """How many sweeps the workers logging in ``folder`` have finished."""
    return sum(
        1
        for path in folder.glob("worker*.log")
        for line in path.read_text(errors="replace").splitlines()
        if "Task pathway.sweep[" in line and "] succeeded in " in line
    )


def more_sweeps(folder: Path, count: int, *, timeout: float = 30) -> bool:
    """Wait until the workers in ``folder`` have finished ``count`` more sweeps than now."""
    target = sweeps_done(folder) + count
    return wait(lambda: sweeps_done(folder) >= target, timeout=timeout)


def logs(folder: Path) -> str:
    """The end of every process log in a test's folder, for a failure's message."""
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.log")))[-4000:]


@dataclass
class Simulation:
    """The scheduler in the test process on a simulated clock: each ``step`` moves the clock
    one sweep interval, runs one sweep and sends what it published, as a worker would, with
    the real channels of ``settings`` (the webhook to a real receiver). For tests whose
    subject is the sweep's and the send's logic, not the processes."""

    db: Database
    settings: WorkerSettings
    clock: engine.SimulatedClock
    sends: list[str] = field(default_factory=list)

    def step(self) -> None:
        self.clock.advance(timedelta(seconds=self.settings.sweep_seconds))
        published: list[int] = []
        scheduler.sweep(
            sessions=self.db.sessions,
            settings=self.settings,
            clock=self.clock,
            publish=published.extend,
        )
        for batch in scheduler.batches(published, self.settings.send_batch):
            statuses = scheduler.send_batch(
                batch, sessions=self.db.sessions, settings=self.settings, clock=self.clock
            )
            self.sends.extend(statuses.values())

    def run_until(self, condition: Callable[[], bool], *, seconds: float) -> bool:
        """Step until ``condition`` holds or ``seconds`` of simulated time have passed."""
        end = self.clock.now() + timedelta(seconds=seconds)
        while not condition():
            if self.clock.now() >= end:
                return False
            self.step()
        return True

    def run_for(self, seconds: float) -> None:
        """Step through ``seconds`` of simulated time."""
        self.run_until(lambda: False, seconds=seconds)


def simulation(db: Database, **settings: Any) -> Simulation:
    """A simulation starting now, with the settings ``worker_env`` gives real processes
    (``settings`` add to them or override them)."""
    chosen: dict[str, Any] = {
        "database_url": db.url,
        "jwt_secret": "unused-by-workers-but-required-on-postgresql-0123",
        "sweep_seconds": 1,
        "reminder_backoff_seconds": 0.2,
        "reminder_claim_timeout": 4,
        "reminder_send_timeout": 3.5,
        "channels": {engine.Role.COORDINATOR: ["webhook"]},
        "webhook_secret": SECRET,
        "public_url": "https://pathway.hospital.example",
        **settings,
    }
    return Simulation(db, WorkerSettings(**chosen), engine.SimulatedClock(datetime.now(UTC)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the Redis outage test (over a minute, mostly its 30 s outage) first: under
    pytest-xdist the other process works through the rest meanwhile, instead of the whole
    run waiting for it at the end."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/workers/test_outage.py"))
