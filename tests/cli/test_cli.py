"""The `pathway` command as a user runs it: a real process, its output and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import hostile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def pathway(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_the_pathways_own_files_are_deployable() -> None:
    result = pathway("validate", "bpmn/lumbar_radiculopathy.bpmn", "bpmn/red_flags.dmn")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:2] == [
        "bpmn/lumbar_radiculopathy.bpmn: deployable",
        "bpmn/red_flags.dmn: deployable",
    ]


def test_validate_reports_problems_with_element_line_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bpmn"
    bad.write_text(
        (ROOT / "bpmn" / "lumbar_radiculopathy.bpmn")
        .read_text()
        .replace('red_flag != "none"', "__import__('os').system('touch pwned')")
    )
    result = pathway("validate", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "[flow_red_flag]" in result.stdout
    assert "line " in result.stdout
    assert not (tmp_path / "pwned").exists()


def test_validate_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = pathway("validate", str(tmp_path / "nope.bpmn"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("scenario", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_simulates(scenario: Path) -> None:
    result = pathway("simulate", "--json", str(scenario))
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["timeline"][0]["type"] == "task_ready"
    assert output["timeline"][0]["task"] == "intake"
    assert set(output["final"]) >= {"status", "end", "ready_tasks", "reminders_sent", "variances"}


def test_simulation_of_the_procedure_candidate_path() -> None:
    result = pathway("simulate", "--json", "examples/disabling_pain_procedure_candidate.json")
    output = json.loads(result.stdout)
    assert output["final"] == {
        "status": "ended",
        "end": "referred",
        "ready_tasks": [],
        "reminders_sent": ["referral_due_2_weeks", "reassessment_due_6_weeks"],
        # Disabling pain, referred on day 16 of conservative care: after the 2-week reminder,
        # and a variance from the guideline's "within 2 weeks".
        "variances": ["referral_beyond_2_weeks_for_disabling_pain"],
        "escalated": False,
    }
    reminders = [(e["day"], e["reminder"]) for e in output["timeline"] if e["type"] == "reminder"]
    assert reminders == [(14, "referral_due_2_weeks"), (42, "reassessment_due_6_weeks")]


def test_human_timeline_is_readable() -> None:
    result = pathway("simulate", "examples/late_presentation_escalated.json")
    assert result.returncode == 0
    assert "REMINDER     reminder: referral_escalation_3_months" in result.stdout
    assert "VARIANCE     variance: bed_rest_prescribed  at conservative_plan" in result.stdout
    assert "escalated: yes" in result.stdout


def test_a_step_that_is_not_ready_exits_2_naming_the_step_and_the_ready_steps(
    tmp_path: Path,
) -> None:
    scenario = json.loads((ROOT / "examples" / "improved_at_6_weeks.json").read_text())
    scenario["steps"].insert(
        2, {"day": 0, "complete": "six_week_reassessment", "data": {"improved": True}}
    )
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(scenario))
    result = pathway("simulate", "--json", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "step 3" in result.stderr
    assert "six_week_reassessment" in result.stderr
    assert "ready steps: conservative_plan" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"pathway": "lumbar_radiculopathy", "steps": []}', "start"),
        ('{"pathway": "nope", "start": "2026-01-05T09:00:00+00:00", "steps": []}', "no pathway"),
        (
            '{"pathway": "lumbar_radiculopathy", "start": "2026-01-05T09:00:00", "steps": []}',
            "timezone",
        ),
    ],
)
def test_bad_scenario_files_are_explained(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    result = pathway("simulate", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["beat"], ["db", "upgrade"]])
def test_bad_settings_are_explained_without_repeating_any_value(
    tmp_path: Path, command: list[str]
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATHWAY_DATA_DIR": str(tmp_path),
        "PATHWAY_JWT_SECRET": "a-jwt-secret-that-must-never-be-printed-0123",
        "PATHWAY_WEBHOOK_SECRET": "whsec_bmV2ZXItcHJpbnQtbWUtMDEyMzQ1Njc4OQ==",
        "PATHWAY_REMINDER_CLAIM_TIMEOUT": "30",
        "PATHWAY_REMINDER_SEND_TIMEOUT": "60",
    }
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *command],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "PATHWAY_REMINDER_CLAIM_TIMEOUT (30 s) must be longer than" in result.stderr
    assert "Traceback" not in result.stderr
    for secret in ("must-never-be-printed", "bmV2ZXItcHJpbnQtbWUt"):
        assert secret not in result.stdout + result.stderr


def test_a_json_setting_that_does_not_parse_is_named_not_echoed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=60,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATHWAY_DATA_DIR": str(tmp_path),
            "PATHWAY_SMTP_RECIPIENTS": '{"coordinator": ["private-list@hospital.example"',
        },
    )
    assert result.returncode == 2
    assert "PATHWAY_SMTP_RECIPIENTS is not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr and "private-list" not in result.stderr


def test_the_data_folder_and_its_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """The embedded database holds patient data and the folder the signing secret: 0700 and
    0600, even when the caller's umask would leave them open, and a folder an older version
    left world-readable is closed too."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    earlier = data / "left-by-an-older-version.txt"
    earlier.write_text("synthetic")
    earlier.chmod(0o644)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATHWAY_DATA_DIR": str(data)}
    for command in (["db", "upgrade"], ["token", "--sub", "ana", "--role", "coordinator"]):
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *command],
            cwd=tmp_path,
            text=True,
            capture_output=True,
            timeout=60,
            env=env,
            preexec_fn=lambda: os.umask(0),
        )
        assert result.returncode == 0, result.stderr
    modes = {p.name: p.stat().st_mode & 0o777 for p in [data, *data.rglob("*")]}
    assert {"data", "pathway.db", "jwt-secret", earlier.name} <= set(modes)
    assert modes == {name: 0o700 if name == "data" else 0o600 for name in modes}


def test_the_simulation_shows_the_values_entered_and_the_red_flag_decision() -> None:
    result = pathway("simulate", "--json", "examples/cauda_equina_emergency.json")
    assert result.returncode == 0, result.stderr
    timeline = json.loads(result.stdout)["timeline"]
    screen = next(
        e for e in timeline if e["type"] == "task_completed" and e["task"] == "red_flag_screen"
    )
    assert screen["data"]["saddle_anesthesia"] is True
    decisions = [e for e in timeline if e["type"] == "decision"]
    assert [(d["task"], d["decision"], d["outputs"], d["rule"]) for d in decisions] == [
        (
            "red_flag_decision",
            "red_flags",
            {"red_flag": "cauda_equina", "urgency": "emergency"},
            "rule_cauda_equina",
        )
    ]
    # The decision comes straight after the screen it decided on.
    assert timeline.index(decisions[0]) == timeline.index(screen) + 1

    human = pathway("simulate", "examples/cauda_equina_emergency.json").stdout
    assert (
        "decision     red_flag_decision  red_flags: red_flag=cauda_equina, urgency=emergency "
        "(rule rule_cauda_equina)" in human
    ), human
    assert "completed    red_flag_screen  urinary_retention_or_incontinence=" in human


@pytest.mark.parametrize(("timezone", "accepted"), [("Australia/Sydney", True), (None, False)])
def test_a_scenario_reads_its_dates_in_its_clinics_time_zone(
    tmp_path: Path, timezone: str | None, accepted: bool
) -> None:
    """08:00 in Sydney on 2 December is 1 December in UTC: the clinic's "today" decides."""
    scenario: dict[str, object] = {
        "pathway": "lumbar_radiculopathy",
        "start": "2026-12-02T08:00:00+11:00",
        "steps": [
            {
                "day": 0,
                "complete": "intake",
                "data": {
                    "patient_ref": "P-TZ-1",
                    "side": "left",
                    "symptom_onset": "2026-12-02",
                    "leg_pain_nrs": 5,
                    "disabling_pain": False,
                    "age": 40,
                },
            }
        ],
    }
    if timezone:
        scenario["timezone"] = timezone
    path = tmp_path / "sydney.json"
    path.write_text(json.dumps(scenario))
    result = pathway("simulate", str(path))
    if accepted:
        assert result.returncode == 0, result.stderr
        assert "completed    intake" in result.stdout
    else:
        assert result.returncode == 2
        assert "must not be in the future (today is 2026-12-01)" in result.stderr


def test_a_scenario_with_an_unknown_time_zone_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "mars.json"
    path.write_text(
        json.dumps(
            {
                "pathway": "lumbar_radiculopathy",
                "start": "2026-01-05T09:00:00Z",
                "timezone": "Mars/Base",
                "steps": [],
            }
        )
    )
    result = pathway("simulate", str(path))
    assert result.returncode == 2
    assert "timezone" in result.stderr and "IANA" in result.stderr, result.stderr


def test_cauda_equina_reported_in_the_urgent_branch_simulates_its_own_clock() -> None:
    result = pathway("simulate", "--json", "examples/emergency_reported_in_urgent_branch.json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    kinds = [(e["day"], e["reminder"]) for e in output["timeline"] if e["type"] == "reminder"]
    # Reported at day 0.25 (15:00): the emergency clock falls due 4 hours later, once.
    assert kinds == [(0.4167, "emergency_action_overdue"), (1, "urgent_action_overdue")]
    decisions = [e["outputs"]["urgency"] for e in output["timeline"] if e["type"] == "decision"]
    assert decisions == ["urgent", "emergency"]
    human = pathway("simulate", "examples/emergency_reported_in_urgent_branch.json").stdout
    assert "reported: saddle_anesthesia, urinary_retention_or_incontinence" in human


def test_a_red_flag_reported_during_the_screen_simulates_into_the_urgent_branch() -> None:
    result = pathway("simulate", "--json", "examples/red_flag_reported_during_screen.json")
    output = json.loads(result.stdout)
    (decision,) = [e for e in output["timeline"] if e["type"] == "decision"]
    assert decision["outputs"]["red_flag"] == "progressive_deficit"
    assert set(output["final"]["ready_tasks"]) == {"urgent_mri", "urgent_specialist_referral"}


def test_validate_takes_a_folder_and_skips_what_is_not_a_diagram() -> None:
    folder = pathway("validate", "bpmn")
    assert folder.returncode == 0, folder.stdout + folder.stderr
    assert folder.stdout.splitlines() == [
        "bpmn/lumbar_radiculopathy.bpmn: deployable",
        "bpmn/red_flags.dmn: deployable",
        "2 of 2 files deployable",
    ]
    globbed = pathway("validate", "bpmn/README.md", "bpmn/lumbar_radiculopathy.bpmn")
    assert globbed.returncode == 0, globbed.stdout + globbed.stderr
    assert globbed.stdout.splitlines()[0] == "bpmn/README.md: skipped, not a .bpmn or .dmn file"
    nothing = pathway("validate", "docs")
    assert nothing.returncode == 2
    assert "no .bpmn or .dmn file" in nothing.stdout and "no diagram" in nothing.stderr


def test_validate_refuses_a_50_megabyte_file_at_once_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.bpmn"
    path.write_bytes(hostile.oversized(50_000_000))
    result = pathway("validate", str(path))
    assert result.returncode == 1, result.stderr
    assert (
        "no line: the file is 50,000,286 bytes; the limit is 5,000,000 bytes, so it was not read"
        in result.stdout
    )
    assert "PATHWAY_MAX_DEFINITION_BYTES" in result.stdout
    assert "Traceback" not in result.stderr


def test_validate_reports_on_the_130_000_task_file_within_five_seconds(tmp_path: Path) -> None:
    path = tmp_path / "tasks.bpmn"
    path.write_bytes(hostile.many_tasks(130_000))
    started = time.perf_counter()
    result = pathway("validate", str(path))
    assert time.perf_counter() - started < 5.0  # interpreter start-up included
    assert result.returncode == 1
    assert "line 6003: an element holds more than 6,000 elements directly" in result.stdout


def test_validate_refuses_a_doctype_behind_a_megabyte_of_comments(tmp_path: Path) -> None:
    path = tmp_path / "evil.bpmn"
    path.write_bytes(hostile.doctype_after_comments(encoding="utf-16"))
    result = pathway("validate", str(path))
    assert result.returncode == 1
    assert "line 2004: a DOCTYPE is not allowed in a BPMN or DMN file" in result.stdout
    assert "fix: remove the DOCTYPE" in result.stdout


def test_the_size_limit_of_validate_is_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli.main", "validate", "bpmn/red_flags.dmn"]
    small = subprocess.run(
        command,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        env={**env, "PATHWAY_MAX_DEFINITION_BYTES": "1000"},
    )
    assert small.returncode == 1
    assert "the limit is 1,000 bytes" in small.stdout
    zero = subprocess.run(
        command,
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=60,
        env={**env, "PATHWAY_MAX_DEFINITION_BYTES": "0"},
    )
    assert zero.returncode == 2
    assert "PATHWAY_MAX_DEFINITION_BYTES must be a positive number of bytes" in zero.stderr
