"""The API's settings: where it listens, its request threads, and how tokens are checked."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator, model_validator

from engine import EngineSettings, empty_is_unset, load_settings


class ApiSettings(EngineSettings):
    """The API process's configuration (``PATHWAY_<NAME>``), the engine's included."""

    host: str = "127.0.0.1"
    port: int = 8000

    threads: int = Field(default=2, ge=1, le=64)
    """Request threads per API worker process (the database pool is sized to match)."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)
    """The largest request body taken, in bytes (413 beyond it, before it is read whole)."""

    jwt_secret: SecretStr | None = None
    """HS256 signing secret. Empty on SQLite: a random one kept in ``<data_dir>/jwt-secret``."""

    jwt_jwks: str | None = None
    """A JWKS file or https URL of the hospital identity provider (RS256); replaces the secret."""

    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    jwt_max_hours: float = Field(default=24, gt=0, le=24 * 366)
    """The longest a token may live, from its ``iat`` (or from now, without one): a token
    that names a later ``exp`` is refused, so a leaked one cannot outlast a working day."""

    metrics: bool = False
    """Serve ``GET /metrics`` (Prometheus; no sign-in, no patient data): the scheduler's
    backlog, read from the database at each scrape. Off: the path is a 404."""

    _empty_is_unset = field_validator(
        "jwt_secret", "jwt_jwks", "jwt_issuer", "jwt_audience", mode="before"
    )(empty_is_unset)

    @model_validator(mode="after")
    def _production_needs_keys(self) -> ApiSettings:
        if self.is_embedded or self.jwt_jwks or self.jwt_secret is not None:
            return self
        raise ValueError(
            "PostgreSQL is the production set-up: set PATHWAY_JWT_SECRET (HS256) or "
            "PATHWAY_JWT_JWKS (the identity provider's keys) so that tokens can be checked"
        )

    def signing_secret(self) -> str:
        """The HS256 secret: the configured one, or the local one kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.private_data_dir()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


@lru_cache
def get_settings() -> ApiSettings:
    """Return the API's settings, read from the environment on first use."""
    return load_settings(ApiSettings)
