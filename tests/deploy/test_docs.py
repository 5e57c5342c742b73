"""The README's settings table, checked against the settings the code reads: a setting added
without a line there (or a line left for one removed) fails here."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import ApiSettings
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


def test_the_settings_table_names_every_setting_and_no_other() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(PATHWAY_[A-Z_]+)`", row.split("|")[1])}
    read = {
        f"PATHWAY_{name.upper()}"
        for name in {*ApiSettings.model_fields, *WorkerSettings.model_fields}
    }
    assert read - named == set(), "settings the README's table does not name"
    assert named - read == set(), "settings the README's table names that the code does not read"
