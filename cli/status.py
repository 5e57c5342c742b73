"""``pathway status``: the scheduler's backlog for a person, read straight from the database
the other commands use (``PATHWAY_DATABASE_URL``, else the SQLite file in
``PATHWAY_DATA_DIR``). The same figures as the API's ``/metrics``: reminders by status, the
timers due and not yet fired, and how long the oldest has waited. Nothing of a patient."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

import engine

EXIT_OK, EXIT_UNREADABLE = 0, 1


def _where(url: str) -> str:
    """The database named for a person, without its credentials."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database or '(in memory)'}"
    port = f":{parsed.port}" if parsed.port else ""
    return f"PostgreSQL {parsed.host or 'localhost'}{port}/{parsed.database or ''}"


def age(seconds: float) -> str:
    """A duration as a person reads it: ``45 s``, ``3 min 20 s``, ``2 h 5 min``, ``4 d 3 h``."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _local(when: datetime, zone: tzinfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def as_json(figures: engine.Backlog) -> dict[str, Any]:
    """The figures as ``pathway status --json`` prints them."""
    return {
        "at": figures.at.isoformat(),
        "reminders": {str(status): count for status, count in figures.reminders.items()},
        "due_timers": figures.due_timers,
        "oldest_due_at": figures.oldest_due_at.isoformat() if figures.oldest_due_at else None,
        "oldest_due_seconds": round(figures.oldest_due_seconds, 3),
    }


def as_table(figures: engine.Backlog, *, where: str, zone: tzinfo) -> str:
    """The figures as a small table for a person."""
    rows: list[tuple[str, str]] = [
        (f"  {status}", str(count)) for status, count in figures.reminders.items()
    ]
    if figures.oldest_due_at is None:
        oldest = "none due"
    else:
        oldest = (
            f"{age(figures.oldest_due_seconds)} overdue (due {_local(figures.oldest_due_at, zone)})"
        )
    due = ("  due, not yet fired", str(figures.due_timers))
    width = max(len(label) for label, _ in [*rows, due])
    number = max(len(value) for _, value in [*rows, due])

    def line(label: str, value: str) -> str:
        return f"{label:<{width}}  {value:>{number}}"

    return "\n".join(
        [
            f"Pathway backlog at {_local(figures.at, zone)} ({where})",
            "",
            "Reminders",
            *(line(label, value) for label, value in rows),
            "",
            "Timers",
            line(*due),
            f"{'  oldest':<{width}}  {oldest}",
        ]
    )


def _status(args: argparse.Namespace) -> int:
    settings = engine.get_settings()
    url = settings.database
    if settings.is_embedded:
        path = make_url(url).database
        if path and not Path(path).exists():
            print(
                f"pathway status: no database at {path} yet (PATHWAY_DATA_DIR, "
                "PATHWAY_DATABASE_URL); `pathway db upgrade` or `pathway serve` makes it",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
    db = engine.make_engine(url)
    try:
        with engine.session_factory(db)() as session:
            figures = engine.backlog(session, now=engine.SystemClock().now())
    except DBAPIError as exc:
        # Only the error's kind: its text may quote the database's address and user.
        print(
            f"pathway status: the database cannot be read ({type(exc.orig).__name__}): is it "
            "up, and is its schema made (`pathway db upgrade`)?",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(as_json(figures), indent=2))
    else:
        print(as_table(figures, where=_where(url), zone=settings.zone))
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``pathway status`` to the ``pathway`` parser."""
    status = commands.add_parser(
        "status",
        help="the reminder and timer backlog, read from the database",
        description="Reminders by status, the timers due and not yet fired, and how long the "
        "oldest has waited: the figures the API's /metrics gives Prometheus.",
    )
    status.add_argument("--json", action="store_true", help="print the figures as JSON")
    status.set_defaults(func=_status)
