"""The modelers' commands as a modeler runs them: a real `pathway` process against a real
server (SQLite), with the token in the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, intake, start_server, stop_server
from tests.variants import (
    two_week_timer_days,
    with_extra_step_before_reassessment,
    without_step,
)

ROOT = Path(__file__).resolve().parents[2]
PATHWAY = "lumbar_radiculopathy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("cli-modeling")
    running = start_server(
        kind="sqlite", database=f"sqlite:///{data_dir / 'pathway.db'}", data_dir=data_dir
    )
    yield running
    stop_server(running)


def pathway(
    server: Server, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATHWAY_SERVER": server.url}
    env.pop("PATHWAY_TOKEN", None)
    if token is not None:
        env["PATHWAY_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        env=env,
    )


def write(folder: Path, files: list[tuple[str, bytes]]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (folder / name).write_bytes(data)
    return [str(folder / name) for name, _ in files]


def test_deploy_then_diff_names_the_changed_timer(server: Server, tmp_path: Path) -> None:
    token = server.token("modeler:mo", "modeler")
    paths = write(tmp_path / "v2", two_week_timer_days(10))
    first = pathway(server, "deploy", *paths, token=token)
    assert first.returncode == 0, first.stderr
    assert f"deployed {PATHWAY} version 2" in first.stdout
    again = pathway(server, "deploy", *paths, token=token)
    assert again.returncode == 0 and "already holds these files" in again.stdout

    diff = pathway(server, "diff", PATHWAY, "1", "2", token=token)
    assert diff.returncode == 0, diff.stderr
    assert "1 change(s), 0 breaking" in diff.stdout
    assert "14 days → 10 days" in diff.stdout
    as_json = json.loads(pathway(server, "diff", PATHWAY, "1", "2", "--json", token=token).stdout)
    assert as_json["changes"][0]["kind"] == "timer_changed"


def test_deploy_reports_each_problem_and_deploys_nothing(server: Server, tmp_path: Path) -> None:
    name, data = two_week_timer_days(11)[0]
    paths = write(tmp_path / "broken", [(name, data.replace(b"P6W", b"P6WW", 1))])
    result = pathway(server, "deploy", *paths, token=server.token("modeler:mo", "modeler"))
    assert result.returncode == 1
    assert "not deployed" in result.stdout and "[six_week_timer]" in result.stdout


def test_without_a_token_or_a_modelers_role_nothing_is_deployed(
    server: Server, tmp_path: Path
) -> None:
    paths = write(tmp_path / "v", two_week_timer_days(12))
    no_token = pathway(server, "deploy", *paths)
    assert no_token.returncode == 2 and "PATHWAY_TOKEN" in no_token.stderr
    coordinator = pathway(
        server, "deploy", *paths, token=server.token("coordinator:ana", "coordinator")
    )
    assert coordinator.returncode == 1 and "403" in coordinator.stderr


def test_migrate_dry_run_then_moves_and_lists_who_could_not(server: Server, tmp_path: Path) -> None:
    token = server.token("modeler:mo", "modeler")
    with server.client("coordinator:ana", "coordinator") as care:
        cases = [
            care.post(
                "/cases", json={"pathway": PATHWAY, "patient_ref": f"P-40{i}", "data": intake()}
            ).json()
            for i in range(3)
        ]
    current = cases[0]["definition_version"]
    deployed = pathway(
        server, "deploy", *write(tmp_path / "next", without_step("intake")), token=token
    )
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    target = current + 1
    dry = pathway(
        server,
        "migrate",
        PATHWAY,
        "--from",
        str(current),
        "--to",
        str(target),
        "--dry-run",
        token=token,
    )
    # every case has passed intake, which the new version removes: none can move
    assert dry.returncode == 4, dry.stderr
    assert "3 running case(s), 0 can move, 3 cannot" in dry.stdout
    assert "has passed `intake`, which version" in dry.stdout
    moved = pathway(
        server, "migrate", PATHWAY, "--from", str(current), "--to", str(target), token=token
    )
    assert moved.returncode == 4
    assert "0 moved, 3 could not move" in moved.stdout
    with server.client("coordinator:ana", "coordinator") as care:
        versions = {care.get(f"/cases/{c['id']}").json()["definition_version"] for c in cases}
    assert versions == {current}
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/definitions").status_code == 401


def test_migrate_moves_every_case_that_can(server: Server, tmp_path: Path) -> None:
    token = server.token("modeler:mo", "modeler")
    start = pathway(server, "deploy", *write(tmp_path / "u", two_week_timer_days(13)), token=token)
    assert start.returncode == 0, start.stdout + start.stderr
    with server.client("coordinator:ana", "coordinator") as care:
        case = care.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "P-501", "data": intake()}
        ).json()
    current = case["definition_version"]
    deployed = pathway(
        server, "deploy", *write(tmp_path / "v", with_extra_step_before_reassessment()), token=token
    )
    target = int(deployed.stdout.split("version ")[1].split(":")[0])
    result = pathway(
        server, "migrate", PATHWAY, "--from", str(current), "--to", str(target), token=token
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "finished: " in result.stdout and " 0 could not move" in result.stdout
    with server.client("coordinator:ana", "coordinator") as care:
        assert care.get(f"/cases/{case['id']}").json()["definition_version"] == target
