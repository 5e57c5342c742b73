"""Choosing a reminder's channels from the settings, and delivering on each of them.

``PATHWAY_CHANNELS`` names the channels of each role; without it every role gets the
channels that are configured, else the log (``WorkerSettings.channels_of``; the settings
refuse a channel named but not configured). A reminder goes out once on each channel its
roles have together, skipping the channels an earlier attempt already delivered. Each
channel's outcome is recorded by the caller: None for delivered, else a short error
without patient data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import replace
from typing import Protocol

import engine

from ..settings import WorkerSettings
from . import email, log, webhook
from .base import Channel, DeliveryError, NotConfigured, Unavailable
from .email import EmailChannel, SmtpConnection

logger = logging.getLogger(__name__)

DEFAULT = "log"
_ERROR_LIMIT = 200
SEND_THREADS = 16
"""The most reminders of a batch under way at once (a process's webhook client keeps up to
20 connections alive; a batch's email goes over its one SMTP connection, one at a time)."""
TIMED_OUT = "not finished within the send time limit (PATHWAY_REMINDER_SEND_TIMEOUT)"

Plan = tuple[engine.ReminderMessage, Sequence[Channel]]
"""A reminder and the channels it goes out on."""


class Factory(Protocol):
    """Builds one kind of channel from the settings for a reminder to some roles."""

    def __call__(
        self, settings: WorkerSettings, *, roles: Iterable[str], clock: engine.Clock
    ) -> Channel: ...


FACTORIES: Mapping[str, Factory] = {
    "email": email.from_settings,
    "webhook": webhook.from_settings,
    "log": log.from_settings,
}
"""The channels ``PATHWAY_CHANNELS`` can name, by name."""


def channel_names(settings: WorkerSettings, roles: Iterable[str]) -> list[str]:
    """Return the channels of the given roles, each once, in the order named."""
    chosen: list[str] = []
    for role in roles:
        for name in settings.channels_of(role):
            if name not in chosen:
                chosen.append(name)
    return chosen or [DEFAULT]


def channels_for(
    settings: WorkerSettings,
    *,
    roles: Sequence[str],
    clock: engine.Clock,
    smtp: SmtpConnection | None = None,
) -> list[Channel]:
    """Return the channels of a reminder to ``roles``, as the settings choose them; its
    email goes over ``smtp`` when given (a batch's one connection)."""
    chosen: list[Channel] = []
    for name in channel_names(settings, roles):
        factory = FACTORIES.get(name)
        if factory is None:
            chosen.append(Unavailable(name=name, reason=f"unknown channel {name!r}"))
            continue
        channel = factory(settings, roles=roles, clock=clock)
        if isinstance(channel, EmailChannel) and smtp is not None and not channel.starttls:
            channel = replace(channel, connection=smtp)
        chosen.append(channel)
    return chosen


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = " ".join(text.split())
    if len(text) > _ERROR_LIMIT:
        text = text[: _ERROR_LIMIT - 3] + "..."
    return text if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {text}"


def deliver(
    message: engine.ReminderMessage,
    channels: Sequence[Channel],
    *,
    on_outcome: Callable[[str, str | None], None] | None = None,
) -> dict[str, str | None]:
    """Send a reminder on each channel not yet delivered; map channel to None or an error.
    ``on_outcome`` is told each channel's outcome as soon as it is known."""
    outcomes: dict[str, str | None] = {}
    for chosen in channels:
        if chosen.name in message.delivered or chosen.name in outcomes:
            continue
        try:
            chosen.send(message)
        except NotConfigured as exc:
            outcomes[chosen.name] = str(exc)  # nothing was attempted: no warning either
        except Exception as exc:
            outcomes[chosen.name] = _short(exc)
            logger.warning(
                "reminder %d of case %s: %s failed: %s",
                message.id,
                message.case_id,
                chosen.name,
                type(exc).__name__,
            )
        else:
            outcomes[chosen.name] = None
        if on_outcome is not None:
            on_outcome(chosen.name, outcomes[chosen.name])
    return outcomes


def deliver_batch(
    plans: Sequence[Plan], *, seconds: float, threads: int = SEND_THREADS
) -> list[dict[str, str | None]]:
    """Deliver several reminders at once, each on its channels as ``deliver`` does, on up
    to ``threads`` threads, and return each one's outcomes in the order given. Whatever has
    not finished within ``seconds`` is left to finish on its own: each of its channels
    without an outcome yet counts as not delivered (the reminder is retried, with the same
    id, so a receiver can drop the repeat)."""
    lock = threading.Lock()
    known: list[dict[str, str | None]] = [{} for _ in plans]

    def run(index: int) -> None:
        def keep(channel: str, error: str | None) -> None:
            with lock:
                known[index][channel] = error

        message, channels = plans[index]
        deliver(message, channels, on_outcome=keep)

    pool = ThreadPoolExecutor(max_workers=max(1, min(threads, len(plans))))
    try:
        futures = [pool.submit(run, index) for index in range(len(plans))]
        wait_for(futures, timeout=max(0.0, seconds))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    with lock:
        results = [dict(outcomes) for outcomes in known]
    for (message, channels), outcomes in zip(plans, results, strict=True):
        for chosen in channels:
            if chosen.name not in message.delivered and chosen.name not in outcomes:
                outcomes[chosen.name] = TIMED_OUT
    return results
