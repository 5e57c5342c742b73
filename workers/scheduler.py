"""The reminder scheduler as plain functions: a sweep, and sending one reminder.

Neither knows Celery: each takes its session factory, its settings and its clock, and the
sweep takes how to publish what it enqueued. ``workers.tasks`` wraps them in a few lines
each; a test calls them directly with an ``engine.SimulatedClock`` and skips time instead
of waiting for it. One transaction per step; the network call to a channel happens between
transactions, never while a row is locked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

import engine

from . import metrics
from .channels import Channel, channels_for, deliver
from .settings import WorkerSettings

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[int]], None]
"""Publishes one send per reminder id, after the ids' commit."""

ChooseChannels = Callable[[engine.ReminderMessage], Sequence[Channel]]
"""Returns the channels a reminder goes out on."""

NOT_CLAIMED = "not claimed"


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    cases: int
    failed: int
    reaped: int
    published: int


def sweep(
    *,
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    clock: engine.Clock,
    publish: Publish,
) -> SweepReport:
    """Reap stuck reminders, then fire due timers batch by batch, publishing each batch's
    reminders as soon as it is committed (a backlog starts going out after one batch, not
    after all of it). A sweep stops after one interval's worth of batches and the next one
    carries on, so a backlog keeps about one worker process firing timers while the others
    send what it raised."""
    started = time.monotonic()  # the work budget is real time, whatever the clock says
    with sessions.begin() as session:
        reaped = engine.reap_reminders(
            session,
            now=clock.now(),
            stale_after=timedelta(seconds=settings.reminder_claim_timeout),
        )
    fired = published = 0
    failed: set[str] = set()  # retried by the next sweep, not again by this one
    while True:
        with sessions.begin() as session:
            report = engine.fire_due(
                session,
                now=clock.now(),
                limit=settings.sweep_batch,
                skip=failed,
                zone=engine.clinic_zone(clock),
            )
        fired += len(report.cases)
        failed.update(case_id for case_id, _ in report.failed)
        published += publish_due(sessions=sessions, settings=settings, clock=clock, publish=publish)
        if len(report.cases) + len(report.failed) < settings.sweep_batch:
            break
        if time.monotonic() - started >= settings.sweep_seconds:
            break
    metrics.sweep_took(time.monotonic() - started)  # metrics: sweep duration
    if fired or reaped or published or failed:
        log.info(
            "sweep: %d cases advanced, %d failed, %d reminders reaped, %d published",
            fired,
            len(failed),
            reaped,
            published,
        )
    return SweepReport(cases=fired, failed=len(failed), reaped=reaped, published=published)


def publish_due(
    *,
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    clock: engine.Clock,
    publish: Publish,
) -> int:
    """Mark due reminders enqueued, commit, then publish them; a publish lost after the
    commit is reaped and published again. Returns how many were published."""
    published = 0
    while True:
        with sessions.begin() as session:
            ids = engine.enqueue_due_reminders(session, now=clock.now(), limit=settings.sweep_batch)
        publish(ids)
        published += len(ids)
        if len(ids) < settings.sweep_batch:
            return published


def send(
    reminder_id: int,
    *,
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    clock: engine.Clock,
    choose: ChooseChannels | None = None,
) -> str:
    """Claim one reminder, deliver it on its channels (by default those the settings give
    its roles), and record each channel's outcome. Returns the reminder's new status, or
    ``not claimed`` for a duplicate message or a reminder no longer enqueued."""
    with sessions.begin() as session:
        message = engine.claim_reminder(session, reminder_id=reminder_id, now=clock.now())
    if message is None:
        return NOT_CLAIMED
    if choose is None:
        channels: Sequence[Channel] = channels_for(settings, roles=message.recipients, clock=clock)
    else:
        channels = choose(message)
    outcomes = deliver(message, channels)
    with sessions.begin() as session:
        status = engine.record_reminder_delivery(
            session,
            reminder_id=reminder_id,
            attempt=message.attempt,
            outcomes=outcomes,
            now=clock.now(),
            max_attempts=settings.reminder_max_attempts,
            backoff_base=settings.reminder_backoff_seconds,
        )
    metrics.delivery_recorded(outcomes, status, due_at=message.due_at, at=clock.now())  # metrics
    log.info(
        "reminder %d of case %s: attempt %d, %s",
        reminder_id,
        message.case_id,
        message.attempt,
        status,
    )
    return status
