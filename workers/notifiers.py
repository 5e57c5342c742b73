"""Reminder notifiers: render a reminder and send it by email, signed webhook or the log.

Every sender is idempotent towards its receiver: the email ``Message-ID`` and the webhook
``webhook-id`` derive from the reminder id alone, so a retry can be recognised and dropped.
Logs name the reminder and the case, never the patient.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import lru_cache
from typing import Any

import httpx

from engine import ReminderMessage

log = logging.getLogger(__name__)

CHANNELS = ("email", "webhook", "log")

KIND_PHRASES = {
    "referral_due_2_weeks": "Specialist referral due (2 weeks after conservative care started)",
    "reassessment_due_6_weeks": "6-week reassessment due",
    "referral_escalation_3_months": (
        "ESCALATION: specialist referral not done 3 months after symptom onset"
    ),
    "urgent_action_overdue": "Urgent MRI / specialist referral still open",
}

_ERROR_LIMIT = 200


class DeliveryError(Exception):
    """A channel could not deliver a reminder; the message holds no patient data."""


def describe(kind: str) -> str:
    """Return the readable phrase for a reminder kind (the kind itself when unknown)."""
    return KIND_PHRASES.get(kind, kind)


def case_link(message: ReminderMessage, *, base_url: str) -> str:
    """Return the link to the reminder's case."""
    return f"{base_url.rstrip('/')}/cases/{message.case_id}"


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render(message: ReminderMessage, *, base_url: str) -> tuple[str, str]:
    """Return the subject and plain-text body of a reminder."""
    what = describe(message.kind)
    subject = f"[Pathway] {what} - case {message.case_id}"
    open_steps = ", ".join(message.open_steps) if message.open_steps else "(none)"
    body = "\n".join(
        [
            what,
            "",
            f"Case: {message.case_id}",
            f"Patient reference: {message.patient_ref or '(none)'}",
            f"Due since: {_iso_utc(message.due_at)}",
            f"Open steps: {open_steps}",
            "",
            f"Open the case: {case_link(message, base_url=base_url)}",
            "",
        ]
    )
    return subject, body


def message_id(message: ReminderMessage) -> str:
    """Return the email Message-ID of a reminder, the same on every retry."""
    return f"<reminder-{message.id}@pathway>"


def send_email(
    message: ReminderMessage,
    *,
    host: str,
    port: int,
    sender: str,
    recipients: list[str],
    base_url: str,
    timeout: float = 10,
    starttls: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> None:
    """Send a reminder as a plain-text email over SMTP; raise on failure."""
    if not recipients:
        raise DeliveryError("email: no recipient addresses for the reminder's roles")
    subject, body = render(message, base_url=base_url)
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Message-ID"] = message_id(message)
    mail.set_content(body)
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        if starttls:
            smtp.starttls()
        if username is not None:
            smtp.login(username, password or "")
        smtp.send_message(mail, from_addr=sender, to_addrs=recipients)
    log.info("reminder %d of case %s: emailed", message.id, message.case_id)


def webhook_key(secret: str) -> bytes:
    """Return the HMAC key of a Standard Webhooks secret (``whsec_`` + base64, or plain text)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode("utf-8")


def sign(*, key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the Standard Webhooks ``v1,`` signature of a body."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_payload(message: ReminderMessage, *, base_url: str) -> dict[str, Any]:
    """Return the JSON document a webhook receiver gets for a reminder."""
    return {
        "type": "reminder",
        "reminder_id": message.id,
        "case_id": message.case_id,
        "patient_ref": message.patient_ref,
        "kind": message.kind,
        "due_at": _iso_utc(message.due_at),
        "open_steps": list(message.open_steps),
        "link": case_link(message, base_url=base_url),
    }


@lru_cache
def _http(pid: int) -> httpx.Client:
    # One client per process, keeping its connections alive: building one loads the TLS
    # trust store, tens of milliseconds that a client per reminder paid every time.
    return httpx.Client(follow_redirects=False)


def send_webhook(
    message: ReminderMessage,
    *,
    url: str,
    secret: str,
    base_url: str,
    timeout: float = 10,
    now: Callable[[], datetime] | None = None,
) -> None:
    """POST a reminder as JSON signed in the Standard Webhooks scheme; raise unless 2xx."""
    body = json.dumps(
        webhook_payload(message, base_url=base_url), separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    msg_id = f"reminder-{message.id}"
    timestamp = int((now or (lambda: datetime.now(UTC)))().timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            key=webhook_key(secret), msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }
    try:
        response = _http(os.getpid()).post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook request failed ({type(exc).__name__})") from exc
    if not response.is_success:
        raise DeliveryError(f"webhook answered HTTP {response.status_code}")
    log.info("reminder %d of case %s: webhook delivered", message.id, message.case_id)


def send_log(message: ReminderMessage, *, base_url: str) -> None:
    """Log a reminder at WARNING: its id, case, kind and link, never the patient."""
    log.warning(
        "reminder %d of case %s: %s - %s",
        message.id,
        message.case_id,
        message.kind,
        case_link(message, base_url=base_url),
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = " ".join(text.split())
    if len(text) > _ERROR_LIMIT:
        text = text[: _ERROR_LIMIT - 3] + "..."
    return text if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {text}"


def deliver(
    message: ReminderMessage,
    *,
    channels: list[str],
    email: dict[str, Any] | None,
    webhook: dict[str, Any] | None,
    base_url: str,
) -> dict[str, str | None]:
    """Send a reminder on each channel not yet delivered; map channel to None or an error."""
    outcomes: dict[str, str | None] = {}
    for channel in dict.fromkeys(channels):
        if channel in message.delivered:
            continue
        try:
            if channel == "email":
                if email is None:
                    outcomes[channel] = "email not configured: set PATHWAY_SMTP_HOST"
                    continue
                send_email(message, base_url=base_url, **email)
            elif channel == "webhook":
                if webhook is None:
                    outcomes[channel] = (
                        "webhook not configured: set PATHWAY_WEBHOOK_URL and PATHWAY_WEBHOOK_SECRET"
                    )
                    continue
                send_webhook(message, base_url=base_url, **webhook)
            elif channel == "log":
                send_log(message, base_url=base_url)
            else:
                outcomes[channel] = f"unknown channel {channel!r}"
                continue
        except Exception as exc:
            outcomes[channel] = _short(exc)
            log.warning(
                "reminder %d of case %s: %s failed: %s",
                message.id,
                message.case_id,
                channel,
                type(exc).__name__,
            )
        else:
            outcomes[channel] = None
    return outcomes
