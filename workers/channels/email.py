"""The email channel: a plain-text reminder over SMTP, the same ``Message-ID`` on every
attempt so that a mail system can drop a repeat."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage

import engine

from ..settings import WorkerSettings
from .base import Channel, DeliveryError, Unavailable
from .content import render

log = logging.getLogger(__name__)


def message_id(message: engine.ReminderMessage) -> str:
    """Return the email Message-ID of a reminder, the same on every retry."""
    return f"<reminder-{message.id}@pathway>"


@dataclass(frozen=True, kw_only=True)
class EmailChannel(Channel):
    """Sends each reminder to ``recipients`` through the SMTP server at ``host``:``port``."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    base_url: str
    timeout: float = 10
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    name: str = "email"

    def send(self, message: engine.ReminderMessage) -> None:
        """Send a reminder as a plain-text email; raise on failure."""
        if not self.recipients:
            raise DeliveryError("email: no recipient addresses for the reminder's roles")
        subject, body = render(message, base_url=self.base_url)
        mail = EmailMessage()
        mail["Subject"] = subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Message-ID"] = message_id(message)
        mail.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail, from_addr=self.sender, to_addrs=list(self.recipients))
        log.info("reminder %d of case %s: emailed", message.id, message.case_id)


def from_settings(
    settings: WorkerSettings, *, roles: Iterable[str], clock: engine.Clock
) -> Channel:
    """The email channel to the addresses of ``roles``, or why there is none."""
    recipients = tuple(sorted({a for r in roles for a in settings.smtp_recipients.get(r, [])}))
    if not settings.smtp_host or not recipients:
        return Unavailable(name="email", reason="email not configured: set PATHWAY_SMTP_HOST")
    return EmailChannel(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        recipients=recipients,
        base_url=settings.base_url,
    )
