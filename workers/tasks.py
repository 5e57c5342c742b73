"""The two Celery tasks: the sweep (beat, every few seconds) and sending one reminder.

Each is a few lines calling ``workers.scheduler`` with this process's session factory, the
settings and the system clock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

import engine

from . import scheduler
from .app import app
from .settings import get_settings


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
    """Publish one send task per reminder id, all on one producer connection."""
    with app.producer_or_acquire() as producer:
        for reminder_id in reminder_ids:
            send_reminder.apply_async((reminder_id,), producer=producer)


@app.task(name="pathway.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Sweep once: reap stuck reminders, fire due timers, publish the reminders raised."""
    report = scheduler.sweep(
        sessions=sessions(), settings=get_settings(), clock=_clock(), publish=publish
    )
    return asdict(report)


@app.task(name="pathway.send_reminder", ignore_result=True)
def send_reminder(reminder_id: int) -> str:
    """Claim one reminder, deliver it on its roles' channels, and record the outcome."""
    return scheduler.send(reminder_id, sessions=sessions(), settings=get_settings(), clock=_clock())
