"""The two tasks: the sweep (beat, every few seconds) and sending one reminder.

Each is a few lines calling the engine, one transaction per step; the network call to a
channel happens between transactions, never while a row is locked.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

import engine

from . import notifiers
from .app import app

log = logging.getLogger(__name__)
clock = engine.SystemClock()


@lru_cache
def _sessions(pid: int) -> sessionmaker[Session]:
    # One database engine per worker process (prefork children must not share sockets).
    return engine.session_factory(engine.make_engine(engine.get_settings().database))


def sessions() -> sessionmaker[Session]:
    """The session factory of this process."""
    return _sessions(os.getpid())


@app.task(name="pathway.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Reap stuck reminders, then fire due timers batch by batch, publishing each batch's
    reminders as soon as it is committed (a backlog starts going out after one batch, not
    after all of it). A sweep stops after one interval's worth of batches and the next one
    carries on, so a backlog keeps about one worker process firing timers while the others
    send what it raised."""
    settings = engine.get_settings()
    started = time.monotonic()
    with sessions().begin() as session:
        reaped = engine.reap_reminders(
            session,
            now=clock.now(),
            stale_after=timedelta(seconds=settings.reminder_claim_timeout),
        )
    fired = published = 0
    failed: set[str] = set()  # retried by the next sweep, not again by this one
    while True:
        with sessions().begin() as session:
            report = engine.fire_due(
                session, now=clock.now(), limit=settings.sweep_batch, skip=failed
            )
        fired += len(report.cases)
        failed.update(case_id for case_id, _ in report.failed)
        published += _publish_due(settings)
        if len(report.cases) + len(report.failed) < settings.sweep_batch:
            break
        if time.monotonic() - started >= settings.sweep_seconds:
            break
    if fired or reaped or published or failed:
        log.info(
            "sweep: %d cases advanced, %d failed, %d reminders reaped, %d published",
            fired,
            len(failed),
            reaped,
            published,
        )
    return {"cases": fired, "failed": len(failed), "reaped": reaped, "published": published}


def _publish_due(settings: engine.Settings) -> int:
    """Mark due reminders enqueued, commit, then publish one send task each; a publish lost
    after the commit is reaped and published again."""
    published = 0
    while True:
        with sessions().begin() as session:
            ids = engine.enqueue_due_reminders(session, now=clock.now(), limit=settings.sweep_batch)
        with app.producer_or_acquire() as producer:  # one connection for the whole batch
            for reminder_id in ids:
                send_reminder.apply_async((reminder_id,), producer=producer)
        published += len(ids)
        if len(ids) < settings.sweep_batch:
            return published


def _channels(settings: engine.Settings, roles: tuple[str, ...]) -> list[str]:
    chosen: list[str] = []
    for role in roles:
        for channel in settings.channels.get(role, ["log"]):
            if channel not in chosen:
                chosen.append(channel)
    return chosen or ["log"]


def _email(settings: engine.Settings, roles: tuple[str, ...]) -> dict[str, Any] | None:
    recipients = sorted({a for r in roles for a in settings.smtp_recipients.get(r, [])})
    if not settings.smtp_host or not recipients:
        return None
    return {
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "sender": settings.smtp_sender,
        "recipients": recipients,
    }


def _webhook(settings: engine.Settings) -> dict[str, Any] | None:
    if not settings.webhook_url or settings.webhook_secret is None:
        return None
    return {"url": settings.webhook_url, "secret": settings.webhook_secret.get_secret_value()}


@app.task(name="pathway.send_reminder", ignore_result=True)
def send_reminder(reminder_id: int) -> str:
    """Claim one reminder, deliver it on its roles' channels, and record the outcome."""
    settings = engine.get_settings()
    with sessions().begin() as session:
        message = engine.claim_reminder(session, reminder_id=reminder_id, now=clock.now())
    if message is None:
        return "not claimed"  # a duplicate message, or no longer enqueued
    outcomes = notifiers.deliver(
        message,
        channels=_channels(settings, message.recipients),
        email=_email(settings, message.recipients),
        webhook=_webhook(settings),
        base_url=settings.base_url,
    )
    with sessions().begin() as session:
        status = engine.record_reminder_delivery(
            session,
            reminder_id=reminder_id,
            attempt=message.attempt,
            outcomes=outcomes,
            now=clock.now(),
            max_attempts=settings.reminder_max_attempts,
            backoff_base=settings.reminder_backoff_seconds,
        )
    log.info(
        "reminder %d of case %s: attempt %d, %s",
        reminder_id,
        message.case_id,
        message.attempt,
        status,
    )
    return status
