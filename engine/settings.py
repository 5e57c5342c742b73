"""Settings, read from the environment (prefix ``PATHWAY_``) and validated once at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE = Path.cwd() / "pathway.db"


class Settings(BaseSettings):
    """Pathway's configuration."""

    model_config = SettingsConfigDict(env_prefix="PATHWAY_", extra="ignore")

    database_url: str = f"sqlite:///{DEFAULT_DATABASE}"
    """SQLAlchemy URL; SQLite file by default, ``postgresql+psycopg://...`` in production."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("PATHWAY_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value


@lru_cache
def get_settings() -> Settings:
    """Return the settings, read from the environment on first use."""
    return Settings()
