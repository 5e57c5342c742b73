"""The workers' metrics with real processes: `pathway worker` (two pool processes) and
`pathway beat` on Redis, a real webhook receiver that refuses one case's reminder and takes
the other's, and the worker's metrics server scraped over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from engine import ReminderStatus
from tests.api.conftest import free_port
from tests.conftest import Database
from tests.workers.conftest import (
    HOOK,
    ROOT,
    cases_due_soon,
    logs,
    start,
    stop,
    wait,
    worker_env,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# A webhook the workers of these tests never call (they send nothing), so the settings hold.
UNUSED_HOOK = "http://127.0.0.1:9/hooks/pathway"


def scrape(port: int) -> tuple[str, Samples]:
    """The worker's metrics page (empty when it does not answer yet), and its samples."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return "", {}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def failures(samples: Samples, channel: str) -> float:
    return samples.get(("pathway_reminder_send_failures_total", (("channel", channel),)), -1)


def test_a_worker_exposes_lateness_and_failures_by_channel_after_real_sends(
    db: Database, tmp_path: Path, broker: str, httpserver: HTTPServer
) -> None:
    taken, refused = cases_due_soon(db, seconds=1, count=2)

    def receive(request: Request) -> Response:
        case_id = json.loads(request.get_data())["case_id"]
        return Response("busy", status=503) if case_id == refused else Response("ok")

    httpserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
    port = free_port()
    env = worker_env(
        db,
        tmp_path,
        broker,
        PATHWAY_WEBHOOK_URL=httpserver.url_for(HOOK),
        PATHWAY_REMINDER_MAX_ATTEMPTS="1",  # one refusal fails the reminder: one failure
        PATHWAY_METRICS="true",
        PATHWAY_METRICS_PORT=str(port),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the worker's own temporary folder
    processes = [
        start(["worker", "--concurrency", "2"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:

        def settled() -> bool:
            _, samples = scrape(port)
            return (
                samples.get(("pathway_reminder_lateness_seconds_count", ()), 0) >= 1
                and failures(samples, "webhook") >= 1
            )

        assert wait(settled, timeout=60), logs(tmp_path)
        text, samples = scrape(port)
        # Nothing more happens: both reminders are settled, one sent, one failed.
        with db.sessions() as session:
            records, _ = engine.list_reminders(session)
    finally:
        stop(processes)
    assert {(r.case_id, r.status) for r in records} == {
        (taken, ReminderStatus.SENT),
        (refused, ReminderStatus.FAILED),
    }
    # One reminder sent, a second or so after its due time.
    assert samples[("pathway_reminder_lateness_seconds_count", ())] == 1
    assert 0 <= samples[("pathway_reminder_lateness_seconds_sum", ())] < 60
    assert samples[("pathway_reminder_lateness_seconds_bucket", (("le", "+Inf"),))] == 1
    # One failure, on the webhook; the other channels' series are there, at zero.
    assert failures(samples, "webhook") == 1
    assert failures(samples, "email") == 0
    assert failures(samples, "log") == 0
    assert samples[("pathway_sweep_duration_seconds_count", ())] >= 1
    # No case id or patient reference anywhere: the only label is the channel's kind.
    for value in (taken, refused, "MRN-"):
        assert value not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= {"channel", "le"}, sample


def test_a_restarted_worker_does_not_count_a_previous_runs_figures_again(
    tmp_path: Path, broker: str, postgresql_db: Database
) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    # A previous run's file: five webhook failures recorded by a process long gone.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import prometheus_client as p; "
            "p.Counter('pathway_reminder_send_failures', 'x', ['channel'])"
            ".labels(channel='webhook').inc(5)",
        ],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        check=True,
    )
    assert list(folder.glob("counter_*.db"))
    port = free_port()
    env = worker_env(
        postgresql_db,
        tmp_path,
        broker,
        PATHWAY_METRICS="true",
        PATHWAY_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        PATHWAY_WEBHOOK_URL=UNUSED_HOOK,
    )
    processes = [start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")]
    try:
        assert wait(lambda: bool(scrape(port)[1]), timeout=30), logs(tmp_path)
        _, samples = scrape(port)
    finally:
        stop(processes)
    assert failures(samples, "webhook") == 0


def test_a_worker_whose_metrics_port_is_taken_says_so_and_stops(
    tmp_path: Path, broker: str, postgresql_db: Database
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = worker_env(
            postgresql_db,
            tmp_path,
            broker,
            PATHWAY_METRICS="true",
            PATHWAY_METRICS_PORT=str(port),
            PATHWAY_WEBHOOK_URL=UNUSED_HOOK,
        )
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "worker"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr
    assert "PATHWAY_METRICS_PORT" in result.stderr
    assert "Traceback" not in result.stderr
