"""The one interface every reminder channel implements, and the error a channel raises.

A channel is told one reminder and either delivers it or raises. It keeps no state about
attempts: what was delivered is recorded by the caller, and a retry gets the same
idempotency key (the reminder id) from the channel itself, so a receiver can drop repeats.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import engine


class DeliveryError(Exception):
    """A channel could not deliver a reminder; the message holds no patient data."""


class NotConfigured(DeliveryError):
    """A channel a role asks for lacks the settings it needs; nothing was attempted."""


class Channel(ABC):
    """Delivers a reminder somewhere a person will see it."""

    name: str
    """The name ``PATHWAY_CHANNELS`` uses for this channel, and under which its outcome is
    recorded."""

    @abstractmethod
    def send(self, message: engine.ReminderMessage) -> None:
        """Deliver one reminder; raise (``DeliveryError`` when the cause is known) if not."""


@dataclass(frozen=True, kw_only=True)
class Unavailable(Channel):
    """A channel a role names that cannot be used (unknown, or its settings missing): its
    outcome is ``reason``, and nothing is sent."""

    name: str
    reason: str

    def send(self, message: engine.ReminderMessage) -> None:
        """Refuse, naming what to set."""
        raise NotConfigured(self.reason)
