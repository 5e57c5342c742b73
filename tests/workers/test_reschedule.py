"""A deadline rescheduled through the API fires at its new time, not its old one: a real API
server, beat and worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from tests.api.conftest import start_server, stop_server
from tests.conftest import Database
from tests.workers.conftest import HOOK, cases_due_soon, start, stop, worker_env


def test_a_rescheduled_deadline_fires_at_its_new_time(
    db: Database, tmp_path: Path, broker: str, httpserver: HTTPServer
) -> None:
    arrivals: list[datetime] = []

    def receive(request: Request) -> Response:
        arrivals.append(datetime.now(UTC))
        return Response("ok", status=200)

    httpserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
    (case_id,) = cases_due_soon(db, seconds=4)  # the old time: 4 s from now
    api = start_server(kind=db.kind, database=db.url, data_dir=tmp_path / "api")
    env = worker_env(db, tmp_path, broker, PATHWAY_WEBHOOK_URL=httpserver.url_for(HOOK))
    processes = [
        start(["worker", "--concurrency", "1"], env, tmp_path / "worker.log"),
        start(["beat"], env, tmp_path / "beat.log"),
    ]
    try:
        new_time = datetime.now(UTC) + timedelta(seconds=12)
        with api.client("ana", "coordinator") as ana:
            moved = ana.post(
                f"/cases/{case_id}/deadlines/referral_due_2_weeks/reschedule",
                json={"due_at": new_time.isoformat(), "reason": "patient asked for next week"},
            )
        assert moved.status_code == 200, moved.text
        assert {d["kind"]: d["due_at"] for d in moved.json()["deadlines"]}[
            "referral_due_2_weeks"
        ] == new_time.isoformat().replace("+00:00", "Z")
        time.sleep(8)  # well past the old time
        assert arrivals == [], "nothing may fire at the old time"
        deadline = time.monotonic() + 20
        while not arrivals and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(processes)
        stop_server(api)
    assert len(arrivals) == 1
    assert new_time <= arrivals[0] <= new_time + timedelta(seconds=6)
    with db.sessions() as session:
        events = engine.timeline(session, case_id)
    (moved_event,) = [e for e in events if e.type == "deadline_rescheduled"]
    assert (moved_event.actor, moved_event.detail["reason"]) == (
        "ana",
        "patient asked for next week",
    )
