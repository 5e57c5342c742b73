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
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import engine

from ..settings import WorkerSettings
from . import email, log, webhook
from .base import Channel, DeliveryError, NotConfigured, Unavailable

logger = logging.getLogger(__name__)

DEFAULT = "log"
_ERROR_LIMIT = 200


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
    settings: WorkerSettings, *, roles: Sequence[str], clock: engine.Clock
) -> list[Channel]:
    """Return the channels of a reminder to ``roles``, as the settings choose them."""
    chosen: list[Channel] = []
    for name in channel_names(settings, roles):
        factory = FACTORIES.get(name)
        if factory is None:
            chosen.append(Unavailable(name=name, reason=f"unknown channel {name!r}"))
        else:
            chosen.append(factory(settings, roles=roles, clock=clock))
    return chosen


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = " ".join(text.split())
    if len(text) > _ERROR_LIMIT:
        text = text[: _ERROR_LIMIT - 3] + "..."
    return text if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {text}"


def deliver(message: engine.ReminderMessage, channels: Sequence[Channel]) -> dict[str, str | None]:
    """Send a reminder on each channel not yet delivered; map channel to None or an error."""
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
    return outcomes
