"""The engine's settings, and how every layer's settings are read and their errors reported.

Each layer has its own ``pydantic-settings`` class with the ``PATHWAY_`` prefix: the engine's
(the database, the data dir, the log level, the largest diagram file read) here, the API's in
``api/settings.py`` and the workers' in ``workers/settings.py``, both built on this one.
``load`` reads a class from the environment and reports every bad setting by name, never by
value (it could be a secret).
"""

from __future__ import annotations

import os
import re
from datetime import tzinfo
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from .clock import zone_named


class EngineSettings(BaseSettings):
    """What every Pathway process needs. Every field is ``PATHWAY_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="PATHWAY_", extra="ignore")

    data_dir: Path = Path(".pathway")
    """Where the embedded defaults live: the SQLite database and the local signing secret."""

    database_url: str = ""
    """SQLAlchemy URL; empty means the SQLite file ``<data_dir>/pathway.db``."""

    log_level: str = "INFO"

    max_definition_bytes: int = Field(default=5_000_000, le=1_000_000_000)
    """The largest BPMN or DMN file read (5 MB): a larger one is refused, unread, with its size;
    validation of any file within it takes at most a few seconds."""

    timezone: str = "UTC"
    """The clinic's IANA time zone: clinical dates (a form's "not in the future", today(),
    symptom onset + 3 months) are read in it, and a date-anchored deadline falls due at
    00:00 local time on its date."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone_named(value)  # ValueError naming what an IANA zone looks like
        return value

    @property
    def zone(self) -> tzinfo:
        """The clinic's time zone."""
        return zone_named(self.timezone)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("PATHWAY_DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value

    @field_validator("max_definition_bytes")
    @classmethod
    def _positive_size(cls, value: int) -> int:
        if value < 1:
            raise ValueError("PATHWAY_MAX_DEFINITION_BYTES must be a positive number of bytes")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("PATHWAY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def database(self) -> str:
        """The database URL in effect."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'pathway.db').resolve()}"

    def private_data_dir(self) -> Path:
        """Create the data dir if need be and keep it private, whatever the umask: the folder
        0700 and everything in it 0600 (0700 for folders), and files this process creates
        later the same (its umask becomes 077). It holds the embedded database and the local
        signing secret."""
        os.umask(0o077)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        for path in self.data_dir.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o700 if path.is_dir() else 0o600)
        return self.data_dir

    @property
    def is_embedded(self) -> bool:
        """True on the embedded default (SQLite), where the service manages its own schema."""
        return self.database.startswith("sqlite")


def empty_is_unset(value: object) -> object:
    """docker-compose passes unset variables as empty strings: an empty secret is no secret."""
    return None if isinstance(value, str) and not value.strip() else value


class SettingsInvalid(ValueError):
    """The environment holds settings Pathway cannot run with. The message names each setting
    and what is wrong with it, and never repeats a value (it could be a secret)."""


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Read a settings class from the environment; raise SettingsInvalid naming each problem."""
    try:
        return cls()
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


@lru_cache
def get_settings() -> EngineSettings:
    """Return the engine's settings, read from the environment on first use."""
    return load(EngineSettings)
