"""The webhook channel: a JSON POST signed in the Standard Webhooks scheme.

``webhook-id`` is ``reminder-{id}`` on every attempt, so a receiver can drop a repeat;
``webhook-timestamp`` is the send's time by the worker's clock; ``webhook-signature`` is
``v1,<base64 HMAC-SHA256>``, computed by the ``standardwebhooks`` package. A ``whsec_`` secret
is base64; any other secret signs with its UTF-8 bytes, as it always has here.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC
from functools import lru_cache
from typing import Any

import httpx
from standardwebhooks import Webhook

import engine

from ..settings import WorkerSettings
from .base import Channel, DeliveryError, Unavailable
from .content import case_link, iso_utc

log = logging.getLogger(__name__)


def webhook_key(secret: str) -> bytes:
    """Return the HMAC key of a Standard Webhooks secret (``whsec_`` + base64, or plain text)."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode("utf-8")


def webhook_payload(message: engine.ReminderMessage, *, base_url: str) -> dict[str, Any]:
    """Return the JSON document a webhook receiver gets for a reminder."""
    return {
        "type": "reminder",
        "reminder_id": message.id,
        "case_id": message.case_id,
        "patient_ref": message.patient_ref,
        "kind": message.kind,
        "text": message.text,
        "due_at": iso_utc(message.due_at),
        "open_steps": list(message.open_steps),
        "link": case_link(message, base_url=base_url),
    }


@lru_cache
def _client(pid: int) -> httpx.Client:
    # One client per process, keeping its connections alive: building one loads the TLS
    # trust store, tens of milliseconds that a client per reminder paid every time. Keyed by
    # the pid, so that a prefork child never uses its parent's sockets.
    return httpx.Client(follow_redirects=False)


def shared_client() -> httpx.Client:
    """The HTTP client of this process, shared by every webhook send in it."""
    return _client(os.getpid())


@dataclass(frozen=True, kw_only=True)
class WebhookChannel(Channel):
    """POSTs each reminder to ``url``, signed with ``secret``; the time comes from ``clock``."""

    url: str
    secret: str = field(repr=False)
    base_url: str
    clock: engine.Clock
    timeout: float = 10
    client: httpx.Client | None = None  # None: the process's shared client
    name: str = "webhook"

    def send(self, message: engine.ReminderMessage) -> None:
        """POST a reminder as signed JSON; raise unless the receiver answers 2xx."""
        body = json.dumps(
            webhook_payload(message, base_url=self.base_url),
            separators=(",", ":"),
            ensure_ascii=False,
        )
        msg_id = f"reminder-{message.id}"
        # Whole seconds, as the header carries them and the signature covers them.
        sent_at = self.clock.now().astimezone(UTC).replace(microsecond=0)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(webhook_key(self.secret)).sign(
                msg_id=msg_id, timestamp=sent_at, data=body
            ),
        }
        client = self.client or shared_client()
        try:
            response = client.post(
                self.url, content=body.encode("utf-8"), headers=headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook request failed ({type(exc).__name__})") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}")
        log.info("reminder %d of case %s: webhook delivered", message.id, message.case_id)


def from_settings(
    settings: WorkerSettings, *, roles: Iterable[str], clock: engine.Clock
) -> Channel:
    """The webhook channel of the settings (the same for every role), or why there is none."""
    if not settings.webhook_url or settings.webhook_secret is None:
        return Unavailable(
            name="webhook",
            reason="webhook not configured: set PATHWAY_WEBHOOK_URL and PATHWAY_WEBHOOK_SECRET",
        )
    return WebhookChannel(
        url=settings.webhook_url,
        secret=settings.webhook_secret.get_secret_value(),
        base_url=settings.base_url,
        clock=clock,
    )
