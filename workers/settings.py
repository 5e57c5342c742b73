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
    reminder_max_attempts: int = Field(default=8, ge=1, le=100)
    reminder_backoff_seconds: float = Field(default=30, ge=0)
    """First retry wait; it doubles with each attempt (at most an hour)."""

    reminder_send_timeout: float = Field(default=60, gt=0, le=3600)
    """The longest one send may take, all channels together; the worker stops it then."""

    reminder_claim_timeout: float = Field(default=120, gt=0)
    """A reminder enqueued or being sent for longer than this is published again. It must
    exceed the send timeout, or a send still under way would be sent a second time."""

    channels: dict[str, list[str]] = Field(default_factory=dict)
    """Reminder channels per role, JSON: {"coordinator": ["email", "webhook"]}. Default: log."""

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

    @property
    def base_url(self) -> str:
        """The service's public address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache
def get_settings() -> WorkerSettings:
    """Return the workers' settings, read from the environment on first use."""
    return load_settings(WorkerSettings)
