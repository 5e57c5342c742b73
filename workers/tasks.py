"""The Celery tasks: the sweep (beat, every few seconds) and sending a batch of reminders
(and, for messages queued before batches, one reminder).

Each is a few lines calling ``workers.scheduler`` with this process's session factory, the
settings and the system clock.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

import engine

from . import scheduler
from .app import app
from .settings import get_settings

log = logging.getLogger(__name__)


@lru_cache
def _clock() -> engine.SystemClock:
    return engine.SystemClock(zone=get_settings().zone)


@lru_cache
def _sessions(pid: int) -> sessionmaker[Session]:
    # One database engine per worker process (prefork children must not share sockets).
    return engine.session_factory(engine.make_engine(get_settings().database))


def sessions() -> sessionmaker[Session]:
    """The session factory of this process."""
    return _sessions(os.getpid())


def publish(reminder_ids: Sequence[int]) -> None:
    """Publish one send task per batch of ``PATHWAY_SEND_BATCH`` reminder ids, all on one
    producer connection."""
    with app.producer_or_acquire() as producer:
        for batch in scheduler.batches(reminder_ids, get_settings().send_batch):
            send_reminders.apply_async((batch,), producer=producer)


def fan_out(count: int, until: float, skip: Sequence[str]) -> None:
    """Publish ``count`` fire tasks working until ``until``; a message still queued then
    expires instead of firing late beside the next sweep's own."""
    expires = datetime.fromtimestamp(until, UTC)
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            fire.apply_async((until, list(skip)), expires=expires, producer=producer)


@app.task(name="pathway.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Sweep once: reap stuck reminders, fire due timers (with more processes under a
    backlog), publish the reminders raised."""
    report = scheduler.sweep(
        sessions=sessions(),
        settings=get_settings(),
        clock=_clock(),
        publish=publish,
        fan_out=fan_out,
        processes=app.conf.worker_concurrency,  # set by `pathway worker`
    )
    return asdict(report)


@app.task(name="pathway.fire", ignore_result=True)
def fire(until: float, skip: list[str]) -> dict[str, int]:
    """Fire due timers beside a sweep until ``until`` (or none are due), leaving out the
    cases in ``skip``; publish the reminders raised."""
    report = scheduler.fire(
        sessions=sessions(),
        settings=get_settings(),
        clock=_clock(),
        publish=publish,
        until=until,
        skip=skip,
    )
    if report.cases or report.failed or report.published:
        log.info(
            "fire (process %d): %d cases advanced, %d failed, %d published",
            os.getpid(),
            report.cases,
            report.failed,
            report.published,
        )
    return asdict(report)


@app.task(name="pathway.send_reminders", ignore_result=True)
def send_reminders(reminder_ids: list[int]) -> dict[str, str]:
    """Claim a batch of reminders, deliver them on their roles' channels, record each
    outcome; return each id's status (JSON keys are strings)."""
    statuses = scheduler.send_batch(
        reminder_ids, sessions=sessions(), settings=get_settings(), clock=_clock()
    )
    return {str(reminder_id): status for reminder_id, status in statuses.items()}


# The task of one reminder that versions before batched sends published: kept registered so
# that messages still queued at an upgrade are sent, not dropped as unknown. Nothing new
# publishes it.
@app.task(name="pathway.send_reminder", ignore_result=True)
def send_reminder(reminder_id: int) -> str:
    """Claim one reminder, deliver it on its roles' channels, and record the outcome."""
    return scheduler.send(reminder_id, sessions=sessions(), settings=get_settings(), clock=_clock())
