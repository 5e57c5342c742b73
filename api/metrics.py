"""``GET /metrics``: the scheduler's backlog for Prometheus, read from the database at each
scrape (``PATHWAY_METRICS=true``; without it there is no such route, and the path is a 404).

The figures are the database's, the same whichever API process answers, so no process keeps
any state for them and ``pathway serve --workers N`` needs no multiprocess set-up. The route
asks for no sign-in: it must carry nothing of a patient, and it does not: counts by
reminder status, how many timers are due and not yet fired, and how long the oldest has
waited. No label ever holds a case id, a patient reference, a step's name or a role.
The workers' own figures (lateness of sent reminders, sweep durations, send failures) are
served by ``pathway worker`` itself: see ``workers/metrics.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

import engine

router = APIRouter()


class BacklogCollector(Collector):
    """Reads ``engine.backlog`` at each collection: two indexed queries."""

    def __init__(self, sessions: sessionmaker[Session], clock: engine.Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return ()  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            figures = engine.backlog(session, now=self.clock.now())
        reminders = GaugeMetricFamily(
            "pathway_reminders",
            "Reminders by delivery status (pending, enqueued, sending, sent, failed, cancelled).",
            labels=["status"],
        )
        for status, count in figures.reminders.items():
            reminders.add_metric([str(status)], count)
        yield reminders
        yield GaugeMetricFamily(
            "pathway_due_timers",
            "Timers whose due time has passed and that no sweep has fired yet.",
            value=figures.due_timers,
        )
        yield GaugeMetricFamily(
            "pathway_oldest_due_timer_age_seconds",
            "How long the oldest due timer not yet fired has waited past its due time "
            "(0 when none is due).",
            value=figures.oldest_due_seconds,
        )


def registry(sessions: sessionmaker[Session], clock: engine.Clock) -> CollectorRegistry:
    """A registry of the backlog alone: no process figures, which would differ from one
    API process to the next."""
    found = CollectorRegistry(auto_describe=False)
    found.register(BacklogCollector(sessions, clock))
    return found


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The backlog in the format the scraper asks for (``Accept``), as the workers' metrics
    server answers: Prometheus' text format 0.0.4 by default, or OpenMetrics."""
    state = request.app.state
    if getattr(state, "metrics_registry", None) is None:
        state.metrics_registry = registry(state.sessions, state.clock)
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(state.metrics_registry), headers={"Content-Type": content_type})
