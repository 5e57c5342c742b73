"""An in-memory channel: keeps what it is sent, for tests and trial runs.

Like httpx's ``MockTransport`` it stands beside the real channels behind the same interface.
A ``handler`` decides each send: it may raise to play a receiver that is down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import engine

from .base import Channel


@dataclass(kw_only=True)
class MemoryChannel(Channel):
    """Records every reminder it delivers in ``sent``; ``handler`` may raise to refuse one
    (a refused reminder is not recorded)."""

    name: str = "memory"
    handler: Callable[[engine.ReminderMessage], None] | None = None
    sent: list[engine.ReminderMessage] = field(default_factory=list)

    def send(self, message: engine.ReminderMessage) -> None:
        """Deliver a reminder into ``sent``, unless the handler raises."""
        if self.handler is not None:
            self.handler(message)
        self.sent.append(message)
