"""A deadline rescheduled through the API fires at its new time, not its old one: a real API
server moves it; the sweep and the send run on a simulated clock, with a real webhook
receiver, since their logic (which timer row is due when) is the subject, not the
processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import engine
from engine import EventType
from tests.api.conftest import start_server, stop_server
from tests.conftest import Database
from tests.workers.conftest import HOOK, cases_due_soon, simulation


def test_a_rescheduled_deadline_fires_at_its_new_time(
    db: Database, tmp_path: Path, httpserver: HTTPServer
) -> None:
    arrivals: list[datetime] = []
    api = start_server(kind=db.kind, database=db.url, data_dir=tmp_path / "api")
    try:
        # The old time is far enough ahead that the API, on the real clock, never sees it
        # pass: only the simulated sweep may reach it.
        (case_id,) = cases_due_soon(db, seconds=30)
        run = simulation(db, webhook_url=httpserver.url_for(HOOK))

        def receive(request: Request) -> Response:
            arrivals.append(run.clock.now())
            return Response("ok", status=200)

        httpserver.expect_request(HOOK, method="POST").respond_with_handler(receive)
        new_time = (datetime.now(UTC) + timedelta(seconds=60)).replace(microsecond=0)
        with api.client("ana", "coordinator") as ana:
            moved = ana.post(
                f"/cases/{case_id}/deadlines/referral_due_2_weeks/reschedule",
                json={"due_at": new_time.isoformat(), "reason": "patient asked for next week"},
            )
    finally:
        stop_server(api)
    assert moved.status_code == 200, moved.text
    assert {d["kind"]: d["due_at"] for d in moved.json()["deadlines"]}[
        "referral_due_2_weeks"
    ] == new_time.isoformat().replace("+00:00", "Z")
    run.run_for(38)  # well past the old time
    assert arrivals == [], "nothing may fire at the old time"
    run.run_until(lambda: bool(arrivals), seconds=30)
    assert len(arrivals) == 1
    assert new_time <= arrivals[0] <= new_time + timedelta(seconds=6)
    with db.sessions() as session:
        events = engine.timeline(session, case_id)
    (moved_event,) = [e for e in events if e.type == EventType.DEADLINE_RESCHEDULED]
    assert (moved_event.actor, moved_event.detail["reason"]) == (
        "ana",
        "patient asked for next week",
    )
