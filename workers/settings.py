"""The workers' settings: the broker, the sweep, reminder delivery and its channels."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator, model_validator

from engine import EngineSettings, empty_is_unset, load_settings


class WorkerSettings(EngineSettings):
    """The worker's and the beat's configuration (``PATHWAY_<NAME>``), the engine's included."""

    broker_url: str = "redis://127.0.0.1:6379/0"
    """The Celery broker (Redis). It carries reminder ids only; the database is the truth."""

    sweep_seconds: float = Field(default=5, gt=0, le=3600)
    """How often the beat sweeps: fire due timers, publish due reminders, reap stuck ones."""

    sweep_batch: int = Field(default=200, ge=1, le=10_000)
    fire_parallel: int = Field(default=2, ge=1, le=64)
    """Worker processes that fire a backlog of due timers at once, the sweep's included: at
    most the worker's ``--concurrency`` less one (a process is left to send), and one on
    SQLite (one writer at a time)."""

    reminder_max_attempts: int = Field(default=8, ge=1, le=100)
    reminder_backoff_seconds: float = Field(default=30, ge=0)
    """First retry wait; it doubles with each attempt (at most an hour)."""

    reminder_send_timeout: float = Field(default=60, gt=0, le=3600)
    """The longest one send task may take, its whole batch on all its channels; what is
    still under way then is recorded as timed out and retried."""

    send_batch: int = Field(default=50, ge=1, le=1000)
    """Reminders per send task: claimed in one statement, sent at once, recorded together."""

    reminder_claim_timeout: float = Field(default=120, gt=0)
    """A reminder enqueued or being sent for longer than this is published again. It must
    exceed the send timeout, or a send still under way would be sent a second time."""

    channels: dict[str, list[str]] = Field(default_factory=dict)
    """Reminder channels per role, JSON: {"coordinator": ["email", "webhook"]}. Unset (or
    {}): every role gets the channels that are configured (see ``channels_of``)."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "pathway@localhost"
    smtp_recipients: dict[str, list[str]] = Field(default_factory=dict)
    """Email addresses per role, JSON: {"coordinator": ["coord@hospital.example"]}."""

    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None

    public_url: str = ""
    """The address people reach the service at (links in reminders); empty: the API's own
    address, http://host:port."""

    host: str = "127.0.0.1"
    port: int = 8000
    """Where the API listens (the same variables the API reads): links default to it."""

    metrics: bool = False
    """``pathway worker`` serves its metrics (Prometheus) on ``metrics_host:metrics_port``."""

    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=1, le=65535)

    _empty_is_unset = field_validator("smtp_host", "webhook_url", "webhook_secret", mode="before")(
        empty_is_unset
    )

    @model_validator(mode="after")
    def _claim_outlasts_a_send(self) -> WorkerSettings:
        if self.reminder_claim_timeout > self.reminder_send_timeout:
            return self
        raise ValueError(
            f"PATHWAY_REMINDER_CLAIM_TIMEOUT ({self.reminder_claim_timeout:g} s) must be longer "
            f"than PATHWAY_REMINDER_SEND_TIMEOUT ({self.reminder_send_timeout:g} s): a reminder "
            "still being sent would be taken back and sent again"
        )

    @model_validator(mode="after")
    def _channels_are_configured(self) -> WorkerSettings:
        problems = [
            *(channel_problems(self) if self.channels else ()),
            *(default_problems(self) if not self.channels else ()),
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def email_configured(self) -> bool:
        """Whether email can be sent: an SMTP server is set."""
        return bool(self.smtp_host)

    @property
    def webhook_configured(self) -> bool:
        """Whether webhooks can be sent: an address and a secret are set."""
        return bool(self.webhook_url) and self.webhook_secret is not None

    def channels_of(self, role: str) -> list[str]:
        """The channels a role's reminders go out on: those ``PATHWAY_CHANNELS`` names for
        it (the log when it names none). Without ``PATHWAY_CHANNELS``, the channels that are
        configured: the webhook when it is, email when the role has addresses, else the log."""
        if self.channels:
            return list(self.channels.get(role) or [LOG])
        chosen = [WEBHOOK] if self.webhook_configured else []
        if self.email_configured and self.smtp_recipients.get(role):
            chosen.append(EMAIL)
        return chosen or [LOG]

    def describe_channels(self) -> str:
        """Where reminders go, in a line for a process's start-up message."""
        if self.channels:
            named = ", ".join(f"{role}: {'+'.join(ch)}" for role, ch in self.channels.items())
            return f"{named}; any other role: the log"
        if not (self.webhook_configured or self.email_configured):
            return (
                "the worker's log (set PATHWAY_WEBHOOK_URL and PATHWAY_WEBHOOK_SECRET, or "
                "PATHWAY_SMTP_HOST and PATHWAY_SMTP_RECIPIENTS; see the README)"
            )
        parts = ["every role: webhook"] if self.webhook_configured else []
        if self.email_configured:
            parts.append("email to " + ", ".join(sorted(self.smtp_recipients)))
        return "; ".join(parts) + ("" if self.webhook_configured else "; any other role: the log")

    @property
    def base_url(self) -> str:
        """The service's public address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


EMAIL, WEBHOOK, LOG = "email", "webhook", "log"
KNOWN_CHANNELS = (EMAIL, WEBHOOK, LOG)


def channel_problems(settings: WorkerSettings) -> list[str]:
    """What stops the channels ``PATHWAY_CHANNELS`` names from working, each naming what to
    set: a channel that is unknown, or not configured (for email: for that role)."""
    problems: list[str] = []
    for role, names in settings.channels.items():
        for name in names:
            where = f"PATHWAY_CHANNELS gives {role!r} the channel {name!r}"
            if name not in KNOWN_CHANNELS:
                problems.append(f"{where}, which is unknown (known: {', '.join(KNOWN_CHANNELS)})")
            elif name == EMAIL and not settings.email_configured:
                problems.append(f"{where}, which is not configured: set PATHWAY_SMTP_HOST")
            elif name == EMAIL and not settings.smtp_recipients.get(role):
                problems.append(
                    f"{where}, but PATHWAY_SMTP_RECIPIENTS has no address for {role!r}: "
                    "set it (JSON, e.g. {" + f'"{role}": ["someone@hospital.example"]' + "})"
                )
            elif name == WEBHOOK and not settings.webhook_url:
                problems.append(f"{where}, which is not configured: set PATHWAY_WEBHOOK_URL")
            elif name == WEBHOOK and settings.webhook_secret is None:
                problems.append(f"{where}, which is not configured: set PATHWAY_WEBHOOK_SECRET")
    return problems


def default_problems(settings: WorkerSettings) -> list[str]:
    """What half-configures a channel when ``PATHWAY_CHANNELS`` is unset: reminders would go
    to the log instead of where the settings point."""
    problems = []
    if settings.webhook_url and settings.webhook_secret is None:
        problems.append(
            "PATHWAY_WEBHOOK_URL is set but PATHWAY_WEBHOOK_SECRET is not: set it, to sign "
            "the webhook's requests"
        )
    if settings.email_configured and not any(settings.smtp_recipients.values()):
        problems.append(
            "PATHWAY_SMTP_HOST is set but PATHWAY_SMTP_RECIPIENTS has no address: set each "
            'role\'s addresses (JSON, e.g. {"coordinator": ["coord@hospital.example"]})'
        )
    return problems


@lru_cache
def get_settings() -> WorkerSettings:
    """Return the workers' settings, read from the environment on first use."""
    return load_settings(WorkerSettings)
