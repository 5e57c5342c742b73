"""`pathway status` as a person runs it: a real process reading the database from the same
settings as the other commands, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.backlog import OVERDUE, make_backlog
from tests.conftest import Database

ROOT = Path(__file__).resolve().parents[2]


def status(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "status", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_status_prints_reminders_by_status_and_the_due_timers(db: Database, tmp_path: Path) -> None:
    known = make_backlog(db)
    env = {"PATHWAY_DATABASE_URL": db.url, "PATHWAY_DATA_DIR": str(tmp_path)}

    table = status(env=env)
    assert table.returncode == 0, table.stderr
    lines = [" ".join(line.split()) for line in table.stdout.splitlines()]
    for name, count in known.reminders.items():
        assert f"{name} {count}" in lines, table.stdout
    assert f"due, not yet fired {known.due_timers}" in lines, table.stdout
    oldest = next(line for line in lines if line.startswith("oldest "))
    assert oldest.startswith("oldest 10 min ") or oldest.startswith("oldest 11 min "), oldest
    assert "overdue (due " in oldest
    database = "SQLite" if db.kind == "sqlite" else "PostgreSQL 127.0.0.1:5432/"
    assert database in lines[0]

    as_json = status("--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["reminders"] == known.reminders
    assert figures["due_timers"] == known.due_timers
    assert OVERDUE <= figures["oldest_due_seconds"] < OVERDUE + 120
    assert figures["oldest_due_at"] is not None

    for value in [*known.case_ids, *known.patient_refs, "MRN-", "postgres@"]:
        assert value not in table.stdout + as_json.stdout


def test_status_without_a_database_says_how_to_make_one(tmp_path: Path) -> None:
    result = status(env={"PATHWAY_DATA_DIR": str(tmp_path / "none"), "PATHWAY_DATABASE_URL": ""})
    assert result.returncode == 1
    assert "no database at" in result.stderr
    assert "pathway db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "none" / "pathway.db").exists()  # a status never makes one


def test_status_on_an_unreachable_database_names_neither_its_user_nor_password() -> None:
    url = "postgresql://clinic:s3cret-pw@127.0.0.1:1/pathway"
    result = status(env={"PATHWAY_DATABASE_URL": url})
    assert result.returncode == 1
    assert "the database cannot be read (OperationalError)" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
