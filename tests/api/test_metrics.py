"""``GET /metrics`` on a real server: off by default (a 404), and with ``PATHWAY_METRICS=true``
the scheduler's backlog as the database holds it at each scrape, without a sign-in and
without a case id or a patient reference anywhere in it. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import engine
from tests.api.conftest import Server, own_server, stop_server
from tests.backlog import OVERDUE, Known, make_backlog
from tests.conftest import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def metrics_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Database]]:
    """A server with metrics on, and its database for the test to fill."""
    server = own_server(request, tmp_path, env={"PATHWAY_METRICS": "true"})
    db_engine = engine.make_engine(server.database)
    try:
        yield (
            server,
            Database(server.kind, server.database, db_engine, engine.session_factory(db_engine)),
        )
    finally:
        stop_server(server)
        db_engine.dispose()


def scrape(server: Server) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The page as served (no token), and each sample's value by name and labels."""
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def assert_no_patient_data(text: str, known: Known) -> None:
    for value in [*known.case_ids, *known.patient_refs, "MRN-"]:
        assert value not in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) <= {"status"}, sample
            assert set(sample.labels.values()) <= {str(s) for s in engine.ReminderStatus}


def test_metrics_count_reminders_by_status_and_the_due_timers_not_fired(
    metrics_on: tuple[Server, Database],
) -> None:
    server, db = metrics_on
    known = make_backlog(db)

    text, samples = scrape(server)

    for status, count in known.reminders.items():
        assert samples[("pathway_reminders", (("status", status),))] == count, status
    assert samples[("pathway_due_timers", ())] == known.due_timers
    age = samples[("pathway_oldest_due_timer_age_seconds", ())]
    assert OVERDUE <= age < OVERDUE + 120
    assert_no_patient_data(text, known)

    # The figures are read at each scrape: once a sweep fires the last due timer, the next
    # scrape shows no timer waiting and one more pending reminder.
    with db.sessions.begin() as session:
        fired = engine.fire_due(session, now=datetime.now(UTC))
    assert len(fired.cases) == 1
    text, samples = scrape(server)
    assert samples[("pathway_due_timers", ())] == 0
    assert samples[("pathway_oldest_due_timer_age_seconds", ())] == 0
    assert samples[("pathway_reminders", (("status", "pending"),))] == 2
    assert_no_patient_data(text, known)


def test_metrics_are_off_by_default(api: Server) -> None:
    with api.client("ana", "coordinator") as client:
        response = client.get("/metrics")
        assert response.status_code == 404
        assert "/metrics" not in client.get("/openapi.json").text
    assert httpx.get(f"{api.url}/metrics", timeout=10).status_code == 404
