"""Reminder channels: one small interface (``Channel.send``), a module for each real channel
(email, webhook, log), an in-memory channel for tests beside them, and the choice of channels
per role from the settings.

```
Channel                 base.py     send(message) or raise DeliveryError
├── EmailChannel        email.py    SMTP, Message-ID <reminder-{id}@pathway>; a batch's
│                                   email shares one SmtpConnection
├── WebhookChannel      webhook.py  Standard Webhooks, webhook-id reminder-{id}
├── LogChannel          log.py      one WARNING line, no patient reference
├── MemoryChannel       memory.py   keeps what it is sent (tests, trial runs)
└── Unavailable         base.py     a channel named but not configured, or unknown
```
"""

from .base import Channel, DeliveryError, NotConfigured, Unavailable
from .content import case_link, describe, render
from .delivery import (
    FACTORIES,
    TIMED_OUT,
    Plan,
    channel_names,
    channels_for,
    deliver,
    deliver_batch,
)
from .email import EmailChannel, SmtpConnection, batch_connection, message_id
from .log import LogChannel
from .memory import MemoryChannel
from .webhook import WebhookChannel, shared_client, webhook_key, webhook_payload

__all__ = [
    "FACTORIES",
    "TIMED_OUT",
    "Channel",
    "DeliveryError",
    "EmailChannel",
    "LogChannel",
    "MemoryChannel",
    "NotConfigured",
    "Plan",
    "SmtpConnection",
    "Unavailable",
    "WebhookChannel",
    "batch_connection",
    "case_link",
    "channel_names",
    "channels_for",
    "deliver",
    "deliver_batch",
    "describe",
    "message_id",
    "render",
    "shared_client",
    "webhook_key",
    "webhook_payload",
]
