"""The reminder scheduler as plain functions: a sweep, and sending a batch of reminders.

Neither knows Celery: each takes its session factory, its settings and its clock, and the
sweep takes how to publish what it enqueued. ``workers.tasks`` wraps them in a few lines
each; a test calls them directly with an ``engine.SimulatedClock`` and skips time instead
of waiting for it. One transaction per step; the network calls to the channels happen
between transactions, never while a row is locked.
"""

from __future__ import annotations

import logging
import os
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


FanOut = Callable[[int, float, Sequence[str]], None]
"""Publishes ``count`` fire tasks that work until ``until`` (``time.time()`` seconds) and
leave out the case ids given (those the sweep could not fire)."""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep (or one fire task: nothing reaped) did."""

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
    fan_out: FanOut | None = None,
    processes: int | None = None,
) -> SweepReport:
    """Reap stuck reminders, then fire due timers batch by batch, publishing each batch's
    reminders as soon as it is committed (a backlog starts going out after one batch, not
    after all of it). A sweep stops after one interval's worth of batches and the next one
    carries on. When its first batch is full (a backlog) and the database takes concurrent
    writers, it asks ``fan_out`` for fire tasks that work beside it until its own interval
    ends, so that a backlog is fired by ``firers`` worker processes at once while the others
    send (``processes``: the worker's pool size, when known)."""
    started = time.monotonic()  # the work budget is real time, whatever the clock says
    until = time.time() + settings.sweep_seconds
    with sessions.begin() as session:
        reaped = engine.reap_reminders(
            session,
            now=clock.now(),
            stale_after=timedelta(seconds=settings.reminder_claim_timeout),
        )
    extra = firers(sessions, settings, processes) - 1
    report = fire(
        sessions=sessions,
        settings=settings,
        clock=clock,
        publish=publish,
        until=until,
        fan_out=fan_out if extra > 0 else None,
        extra=extra,
    )
    metrics.sweep_took(time.monotonic() - started)  # metrics: sweep duration
    if report.cases or reaped or report.published or report.failed:
        log.info(
            "sweep (process %d): %d cases advanced, %d failed, %d reminders reaped, %d published",
            os.getpid(),
            report.cases,
            report.failed,
            reaped,
            report.published,
        )
    return SweepReport(
        cases=report.cases, failed=report.failed, reaped=reaped, published=report.published
    )


def firers(
    sessions: sessionmaker[Session], settings: WorkerSettings, processes: int | None = None
) -> int:
    """How many worker processes may fire a backlog at once: ``PATHWAY_FIRE_PARALLEL`` on
    PostgreSQL (``SKIP LOCKED`` splits the due cases between them), but at most one fewer
    than the worker's ``processes`` (one is left to send); one on SQLite."""
    with sessions() as session:
        dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        return 1
    if processes is None:
        return settings.fire_parallel
    return max(1, min(settings.fire_parallel, processes - 1))


def fire(
    *,
    sessions: sessionmaker[Session],
    settings: WorkerSettings,
    clock: engine.Clock,
    publish: Publish,
    until: float,
    skip: Sequence[str] = (),
    fan_out: FanOut | None = None,
    extra: int = 0,
) -> SweepReport:
    """Fire due timers batch by batch until none are due or ``until`` (``time.time()``)
    has passed, publishing each batch's reminders once it is committed; leave out ``skip``
    and the cases this call failed (the next sweep retries them). After a full first batch,
    ``fan_out`` is asked for ``extra`` more firers, unless ``until`` has passed meanwhile
    (they would expire unread). Reaps nothing."""
    fired = published = 0
    skipped, failed = set(skip), set[str]()
    first = True
    while True:
        with sessions.begin() as session:
            batch = engine.fire_due(
                session,
                now=clock.now(),
                limit=settings.sweep_batch,
                skip=skipped | failed,
                zone=engine.clinic_zone(clock),
            )
        fired += len(batch.cases)
        failed.update(case_id for case_id, _ in batch.failed)
        full = len(batch.cases) + len(batch.failed) >= settings.sweep_batch
        if first and full and fan_out is not None and extra > 0 and time.time() < until:
            fan_out(extra, until, sorted(skipped | failed))
        first = False
        published += publish_due(sessions=sessions, settings=settings, clock=clock, publish=publish)
        if not full or time.time() >= until:
            break
    return SweepReport(cases=fired, failed=len(failed), reaped=0, published=published)


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
