"""The email channel: a plain-text reminder over SMTP, the same ``Message-ID`` on every
attempt so that a mail system can drop a repeat. The reminders of a batch share one SMTP
connection (``SmtpConnection``), one message at a time; a channel without one connects for
its message alone."""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

import engine

from ..settings import WorkerSettings
from .base import Channel, DeliveryError, Unavailable
from .content import render

log = logging.getLogger(__name__)


def message_id(message: engine.ReminderMessage) -> str:
    """Return the email Message-ID of a reminder, the same on every retry."""
    return f"<reminder-{message.id}@pathway>"


class SmtpConnection:
    """One SMTP connection for the reminders of a batch: opened for the first message, kept
    for every later one, and ended by ``close``. Sends take turns (a lock). A kept connection
    the server has dropped meanwhile is opened again once; a connection in doubt after any
    other error is dropped, and the next message opens a fresh one."""

    def __init__(self, *, host: str, port: int, timeout: float = 10) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._lock = threading.Lock()
        self._smtp: smtplib.SMTP | None = None
        self._closed = False

    def send(self, mail: EmailMessage, *, sender: str, recipients: Sequence[str]) -> None:
        """Send one message over the batch's connection; raise on failure."""
        with self._lock:
            try:
                if self._closed:
                    raise DeliveryError("email: the batch's SMTP connection is closed")
                kept = self._smtp is not None
                try:
                    self._connection().send_message(
                        mail, from_addr=sender, to_addrs=list(recipients)
                    )
                except smtplib.SMTPServerDisconnected:
                    self._drop()
                    if not kept:
                        raise
                    self._connection().send_message(
                        mail, from_addr=sender, to_addrs=list(recipients)
                    )
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException):
                raise  # the server refused this message: the connection is still good
            except BaseException:
                self._drop()
                raise
            finally:
                if self._closed:  # closed while this message was under way
                    self._quit()

    def close(self) -> None:
        """End the connection; one still in use (a send past the batch's time) ends after
        its message, not now."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                self._quit()
            finally:
                self._lock.release()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        return self._smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _quit(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def batch_connection(settings: WorkerSettings) -> SmtpConnection | None:
    """The SMTP connection a batch's email shares, or None without an SMTP server. Nothing
    connects until the batch's first email."""
    if not settings.smtp_host:
        return None
    return SmtpConnection(host=settings.smtp_host, port=settings.smtp_port)


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
    connection: SmtpConnection | None = field(default=None, repr=False, compare=False)
    """A batch's shared connection (to ``host``:``port``); None: one for each message."""
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
        if self.connection is not None:
            self.connection.send(mail, sender=self.sender, recipients=self.recipients)
            log.info("reminder %d of case %s: emailed", message.id, message.case_id)
            return
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
