"""`pathway simulate --coverage` and `--definitions DIR`, run as a modeler runs them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.cli.test_cli import ROOT, pathway

CONSERVATIVE = "examples/improved_at_6_weeks.json"
DISABLING = "examples/disabling_pain_procedure_candidate.json"
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def copy_of_bpmn(tmp_path: Path, old: str, new: str) -> Path:
    """A changed copy of bpmn/, as a modeler would make before deploying it."""
    folder = tmp_path / "changed"
    shutil.copytree(ROOT / "bpmn", folder)
    diagram = folder / "lumbar_radiculopathy.bpmn"
    text = diagram.read_text()
    assert text.count(old) == 1, old
    diagram.write_text(text.replace(old, new))
    return folder


def test_coverage_of_the_examples_is_the_modelers_test_suite() -> None:
    result = pathway("simulate", "--coverage", "--json", "examples")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert {s["pathway"] for s in output["scenarios"]} == {"lumbar_radiculopathy"}
    (report,) = output["coverage"]
    assert report["scenarios"] == [str(Path("examples") / p.name) for p in EXAMPLES]
    for category in ("steps", "flows", "timers", "reminders", "variances"):
        section = report[category]
        counted = len(section["reached"]) + len(section["unreached"])
        assert counted + len(section.get("armed_not_fired", [])) == section["total"]
        assert section["reached_count"] == len(section["reached"])
        assert section["percent"] == round(100 * section["reached_count"] / section["total"], 1)
    steps, flows = report["steps"], report["flows"]
    assert {"intake", "red_flag_decision", "urgent_care", "treatment_decision"} <= ids(
        steps["reached"]
    )
    # Flows into and out of activities with boundary events, and an event-based gateway's.
    assert {
        "flow_red_flag",
        "flow_no_red_flag",
        "flow_referral_join",
        "flow_conservative_outcome",
        "flow_trigger_limit",
        "flow_candidate",
    } <= ids(flows["reached"])
    # The 2-week timer is disarmed unless the pain is disabling, and its "no" branch needs the
    # pain not to be disabling: no scenario can reach that end (a finding for the modeler).
    assert "two_week_not_applicable" in ids(steps["unreached"])
    assert "flow_two_week_not_applicable" in ids(flows["unreached"])
    assert "six_week_timer" in ids(report["timers"]["reached"])
    assert "referral_escalation_reminder" in ids(report["reminders"]["reached"])
    bed_rest = next(v for v in report["variances"]["reached"] if v["id"] == "bed_rest_prescribed")
    assert bed_rest["step"] == "conservative_plan"
    assert bed_rest["by"] == ["examples/late_presentation_escalated.json"]
    assert "fusion_for_isolated_disc_herniation" in ids(report["variances"]["unreached"])


def test_a_conservative_scenario_alone_leaves_the_red_flag_branch_unreached() -> None:
    result = pathway("simulate", "--coverage", "--json", CONSERVATIVE)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)["coverage"]
    flows = {item["id"]: item for item in report["flows"]["reached"]}
    assert flows["flow_no_red_flag"]["by"] == [CONSERVATIVE]
    assert flows["flow_improved"]["condition"] == "improved == True"
    unreached = {item["id"]: item for item in report["flows"]["unreached"]}
    assert unreached["flow_red_flag"] == {
        "id": "flow_red_flag",
        "from": "red_flag_present",
        "to": "to_urgent",
        "name": "yes",
        "condition": 'red_flag != "none"',
        "default": False,
    }
    assert {"flow_to_urgent_care", "flow_urgent_split"} <= set(unreached)
    assert {"urgent_care", "urgent_mri"} <= ids(report["steps"]["unreached"])
    timers = report["timers"]
    assert ids(timers["reached"]) == {"six_week_timer"}
    # The event-based gateway waited on the 3-month limit until self-care discharge.
    assert ids(timers["armed_not_fired"]) == {"three_month_limit"}
    assert "urgent_action_timer" in ids(timers["unreached"])


def test_coverage_in_a_terminal_shows_armed_and_disarmed_timers() -> None:
    scenario = "examples/red_flag_reported_mid_way.json"
    result = pathway("simulate", "--coverage", scenario)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{scenario}: lumbar_radiculopathy, active"
    assert "timers: 2 of 6 fired (33.3%)" in lines
    armed = lines.index("  armed, never fired:")
    assert (
        lines[armed + 1]
        == "    - six_week_timer  intermediate  P6W  (deadline reassessment_due_6_weeks)"
    )
    assert (
        "    - emergency_action_timer  on urgent_care  null  (deadline emergency_action_overdue)"
        f"  disarmed (null) in {scenario}"
    ) == lines[lines.index("  not reached:", armed) + 2]
    assert "  flows        23 of 57   taken    40.4%" in lines


def reminders(output: dict[str, Any]) -> list[tuple[float, str]]:
    return [(e["day"], e["reminder"]) for e in output["timeline"] if e["type"] == "reminder"]


def test_definitions_runs_the_scenario_on_a_changed_copy(tmp_path: Path) -> None:
    changed = copy_of_bpmn(tmp_path, '"P14D" if disabling_pain', '"P10D" if disabling_pain')
    bundled = pathway("simulate", "--json", DISABLING)
    result = pathway("simulate", "--json", "--definitions", str(changed), DISABLING)
    assert result.returncode == 0, result.stderr
    assert reminders(json.loads(bundled.stdout))[0] == (14, "referral_due_2_weeks")
    # The 2-week deadline shortened to 10 days: its reminder comes 4 days earlier.
    assert reminders(json.loads(result.stdout)) == [
        (10, "referral_due_2_weeks"),
        (42, "reassessment_due_6_weeks"),
    ]


def test_definitions_with_a_broken_diagram_runs_nothing(tmp_path: Path) -> None:
    broken = copy_of_bpmn(tmp_path, 'red_flag != "none"', "__import__('os').system('touch pwned')")
    result = pathway("simulate", "--json", "--definitions", str(broken), DISABLING, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "not deployable, so no scenario was run" in result.stderr
    assert f"{broken / 'lumbar_radiculopathy.bpmn'}: 1 problem" in result.stderr
    assert "[flow_red_flag]" in result.stderr and "line " in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "pwned").exists()


def test_definitions_folders_that_cannot_be_used_are_explained(tmp_path: Path) -> None:
    missing = pathway("simulate", "--definitions", str(tmp_path / "nope"), CONSERVATIVE)
    assert missing.returncode == 2
    assert f"--definitions {tmp_path / 'nope'}: no such folder" in missing.stderr
    no_bpmn = pathway("simulate", "--definitions", "docs", CONSERVATIVE)
    assert no_bpmn.returncode == 2
    assert "--definitions docs: no .bpmn file in it" in no_bpmn.stderr


def test_a_folder_with_two_pathways_runs_the_one_a_scenario_names(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    shutil.copytree(ROOT / "bpmn", folder)
    second = (folder / "lumbar_radiculopathy.bpmn").read_text()
    (folder / "second.bpmn").write_text(
        second.replace('"lumbar_radiculopathy"', '"second_pathway"')
    )
    scenario = json.loads((ROOT / CONSERVATIVE).read_text())
    del scenario["pathway"]
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps(scenario))
    named = tmp_path / "named.json"
    named.write_text(json.dumps({**scenario, "pathway": "second_pathway"}))

    refused = pathway("simulate", "--definitions", str(folder), str(unnamed))
    assert refused.returncode == 2
    assert (
        f"{unnamed}: {folder} holds 2 pathways (lumbar_radiculopathy, second_pathway): "
        'name one in the scenario\'s "pathway"'
    ) in refused.stderr
    ran = pathway("simulate", "--coverage", "--definitions", str(folder), str(named))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[0] == f"{named}: second_pathway, ended at 'resolved'"
    assert f"Coverage of second_pathway ({folder}/second.bpmn) by 1 scenario" in ran.stdout
    # With the bundled pathway alone, a scenario that names none runs it.
    alone = pathway("simulate", "--json", str(unnamed))
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["final"]["end"] == "resolved"


def test_simulate_a_folder_skips_what_is_not_a_scenario(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(ROOT / CONSERVATIVE, folder / "conservative.json")
    (folder / "README.md").write_text("notes for people")
    (folder / "more").mkdir()
    result = pathway("simulate", "--json", str(folder))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["final"]["end"] == "resolved"
    assert result.stderr.splitlines() == [
        f"{folder / 'README.md'}: skipped, not a scenario (.json) file",
        f"{folder / 'more'}: skipped, a folder",
    ]
    nothing = pathway("simulate", str(folder / "more"))
    assert nothing.returncode == 2
    assert "no scenario (.json) file in it" in nothing.stderr
    assert "no scenario to run" in nothing.stderr
