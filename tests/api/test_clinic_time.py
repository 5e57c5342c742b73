"""Clinic time over HTTP, on SQLite and PostgreSQL: a server with PATHWAY_TIMEZONE reads
clinical dates in that zone. The server runs on the real clock, so the zone is chosen for the
moment the test runs: one whose date differs from UTC's now (UTC+14 from 10:00 UTC, UTC-11
before 11:00 UTC), so that the difference is always there to see."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.api.conftest import ROOT, Server, intake, own_server, stop_server
from tests.api.test_cases import PATHWAY

AHEAD, BEHIND = "Pacific/Kiritimati", "Pacific/Pago_Pago"


def _zone_not_on_utcs_date() -> str:
    return AHEAD if datetime.now(UTC).hour >= 10 else BEHIND


@pytest.fixture(params=["sqlite", "postgresql"])
def clinic(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    zone = _zone_not_on_utcs_date()
    server = own_server(request, tmp_path, env={"PATHWAY_TIMEZONE": zone})
    yield server, zone
    stop_server(server)


def test_a_clinical_date_is_read_in_the_clinics_zone(clinic: tuple[Server, str]) -> None:
    server, zone = clinic
    local_today = datetime.now(ZoneInfo(zone)).date().isoformat()
    utc_today = datetime.now(UTC).date().isoformat()
    assert local_today != utc_today  # the zone was chosen so
    with server.client("ana", "coordinator") as ana:

        def onset(ref: str, day: str) -> int:
            body = {"pathway": PATHWAY, "patient_ref": ref, "data": intake(symptom_onset=day)}
            return ana.post("/cases", json=body).status_code

        if zone == AHEAD:  # the clinic's today is UTC's tomorrow: not in the future there
            assert onset("SYN-TZ-1", local_today) == 201
        else:  # the clinic's today is UTC's yesterday: UTC's today is its tomorrow
            assert onset("SYN-TZ-1", local_today) == 201
            assert onset("SYN-TZ-2", utc_today) == 422


def test_an_unknown_time_zone_stops_the_service_naming_the_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--port", "0"],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "PATHWAY_DATA_DIR": str(tmp_path),
            "PATHWAY_TIMEZONE": "Mars/Olympus_Mons",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PATHWAY_TIMEZONE" in result.stderr and "IANA" in result.stderr, result.stderr
