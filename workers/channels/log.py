"""The log channel: one WARNING line in the worker's log, the default when a role names no
channel. The line names the reminder, the case, the kind and the link, never the patient."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import engine

from ..settings import WorkerSettings
from .base import Channel
from .content import case_link

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LogChannel(Channel):
    """Writes each reminder as one WARNING line."""

    base_url: str
    name: str = "log"

    def send(self, message: engine.ReminderMessage) -> None:
        """Log a reminder at WARNING: its id, case, kind and link, never the patient."""
        log.warning(
            "reminder %d of case %s: %s - %s",
            message.id,
            message.case_id,
            message.kind,
            case_link(message, base_url=self.base_url),
        )


def from_settings(
    settings: WorkerSettings, *, roles: Iterable[str], clock: engine.Clock
) -> Channel:
    """The log channel; it needs no setting."""
    return LogChannel(base_url=settings.base_url)
