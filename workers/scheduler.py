"""The reminder scheduler as plain functions: a sweep, and sending a batch of reminders.

Neither knows Celery: each takes its session factory, its settings and its clock, and the
sweep takes how to publish what it enqueued. ``workers.tasks`` wraps them in a few lines
each; a test calls them directly with an ``engine.SimulatedClock`` and skips time instead
of waiting for it. One transaction per step; the network calls to the channels happen
between transactions, never while a row is locked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

import engine

from . import metrics
from .channels import Channel, Plan, batch_connection, channels_for, deliver_batch
from .settings import WorkerSettings

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[int]], None]
"""Publishes sends for the reminder ids, after the ids' commit (``batches`` of them)."""

ChooseChannels = Callable[[engine.ReminderMessage], Sequence[Channel]]
"""Returns the channels a reminder goes out on."""

NOT_CLAIMED = "not claimed"
WAIT_SHARE = 0.8
"""The share of the send time limit a batch waits for its channels; the rest is for the
database, before the worker's own (soft) limit at 90%."""


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


def batches(reminder_ids: Sequence[int], size: int) -> Iterator[list[int]]:
    """Split reminder ids into the batches of one send each."""
    for start in range(0, len(reminder_ids), size):
        yield list(reminder_ids[start : start + size])


def send(
    reminder_id: int,
    *,
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    clock: engine.Clock,
    choose: ChooseChannels | None = None,
) -> str:
    """Send one reminder (a batch of one, see ``send_batch``); return its new status, or
    ``not claimed`` for a duplicate message or a reminder no longer enqueued."""
    statuses = send_batch(
        [reminder_id], sessions=sessions, settings=settings, clock=clock, choose=choose
    )
    return statuses[reminder_id]


def send_batch(
    reminder_ids: Sequence[int],
    *,
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    clock: engine.Clock,
    choose: ChooseChannels | None = None,
) -> dict[int, str]:
    """Claim the reminders still enqueued among ``reminder_ids`` in one statement, deliver
    them at once on their channels (by default those the settings give their roles; the
    batch's email over one SMTP connection), and record every outcome in one transaction,
    each reminder on its own. Returns each id's new status: sent, pending (retried after its
    backoff), failed, ``superseded`` (a newer attempt owns it), or ``not claimed`` (a
    duplicate message, or a reminder no longer enqueued)."""
    started = time.monotonic()  # the time limit is real time, whatever the clock says
    statuses = dict.fromkeys(reminder_ids, NOT_CLAIMED)
    with sessions.begin() as session:
        messages = engine.claim_reminders(session, reminder_ids=reminder_ids, now=clock.now())
    if not messages:
        return statuses
    smtp = batch_connection(settings) if choose is None else None
    try:
        plans: list[Plan] = [
            (
                message,
                choose(message)
                if choose is not None
                else channels_for(settings, roles=message.recipients, clock=clock, smtp=smtp),
            )
            for message in messages
        ]
        budget = WAIT_SHARE * settings.reminder_send_timeout - (time.monotonic() - started)
        outcomes = deliver_batch(plans, seconds=budget)
    finally:
        if smtp is not None:
            smtp.close()
    with sessions.begin() as session:
        recorded = engine.record_reminder_deliveries(
            session,
            [
                engine.ReminderDelivery(message.id, message.attempt, outcome)
                for message, outcome in zip(messages, outcomes, strict=True)
            ],
            now=clock.now(),
            max_attempts=settings.reminder_max_attempts,
            backoff_base=settings.reminder_backoff_seconds,
        )
    statuses.update(recorded)
    now = clock.now()
    for message, outcome in zip(messages, outcomes, strict=True):
        metrics.delivery_recorded(
            outcome, recorded[message.id], due_at=message.due_at, at=now
        )  # metrics
        log.info(
            "reminder %d of case %s: attempt %d, %s",
            message.id,
            message.case_id,
            message.attempt,
            recorded[message.id],
        )
    return statuses
