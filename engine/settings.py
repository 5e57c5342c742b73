"""Settings, read from the environment (prefix ``PATHWAY_``) and validated once at start."""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError


class Settings(BaseSettings):
    """Pathway's configuration. Every field is ``PATHWAY_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PATHWAY_", extra="ignore")

    data_dir: Path = Path(".pathway")
    """Where the embedded defaults live: the SQLite database and the local signing secret."""

    database_url: str = ""
    """SQLAlchemy URL; empty means the SQLite file ``<data_dir>/pathway.db``."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    """The address people reach the service at (links in reminders); empty: http://host:port."""

    jwt_secret: SecretStr | None = None
    """HS256 signing secret. Empty on SQLite: a random one kept in ``<data_dir>/jwt-secret``."""

    jwt_jwks: str | None = None
    """A JWKS file or https URL of the hospital identity provider (RS256); replaces the secret."""

    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    log_level: str = "INFO"

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

    threads: int = Field(default=2, ge=1, le=64)
    """Request threads per API worker process (the database pool is sized to match)."""

    @field_validator(
        "jwt_secret",
        "jwt_jwks",
        "jwt_issuer",
        "jwt_audience",
        "smtp_host",
        "webhook_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes unset variables as empty strings: an empty secret is no secret.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("PATHWAY_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("PATHWAY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return value

    @model_validator(mode="after")
    def _claim_outlasts_a_send(self) -> Settings:
        if self.reminder_claim_timeout > self.reminder_send_timeout:
            return self
        raise ValueError(
            f"PATHWAY_REMINDER_CLAIM_TIMEOUT ({self.reminder_claim_timeout:g} s) must be longer "
            f"than PATHWAY_REMINDER_SEND_TIMEOUT ({self.reminder_send_timeout:g} s): a reminder "
            "still being sent would be taken back and sent again"
        )

    @model_validator(mode="after")
    def _production_needs_keys(self) -> Settings:
        if self.is_embedded or self.jwt_jwks or self.jwt_secret is not None:
            return self
        raise ValueError(
            "PostgreSQL is the production set-up: set PATHWAY_JWT_SECRET (HS256) or "
            "PATHWAY_JWT_JWKS (the identity provider's keys) so that tokens can be checked"
        )

    @property
    def database(self) -> str:
        """The database URL in effect."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'pathway.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        """True on the embedded default (SQLite), where the service manages its own schema."""
        return self.database.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """The service's public address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def signing_secret(self) -> str:
        """The HS256 secret: the configured one, or the local one kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


class SettingsInvalid(ValueError):
    """The environment holds settings Pathway cannot run with. The message names each setting
    and what is wrong with it, and never repeats a value (it could be a secret)."""


@lru_cache
def get_settings() -> Settings:
    """Return the settings, read from the environment on first use."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False, include_context=False):
            names = [str(part) for part in error["loc"]]
            message = error["msg"].removeprefix("Value error, ")
            if names:  # a field's own error; a rule across fields names them itself
                field = "PATHWAY_" + names[0].upper() + "".join(f"[{n}]" for n in names[1:])
                message = f"{field}: {message}"
            problems.append(message)
        raise SettingsInvalid("invalid settings: " + "; ".join(problems)) from None
    except SettingsError as exc:  # a JSON setting that does not parse
        found = re.search(r'field "([^"]+)"', str(exc))
        name = f"PATHWAY_{found.group(1).upper()}" if found else "a setting"
        raise SettingsInvalid(f"invalid settings: {name} is not valid JSON") from None
