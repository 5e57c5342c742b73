"""The demonstration pathway in examples/wound_check runs in the simulator like the first one:
its own form, decision, timer and reminder, with nothing of it in the engine's code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import ScenarioInvalid
from engine.validation import validate_paths

FOLDER = Path(__file__).resolve().parents[2] / "examples" / "wound_check"

WOUND_CHECK = engine.PathwayFolder.read(FOLDER, name="examples/wound_check")


def test_its_files_are_deployable() -> None:
    reports = validate_paths([FOLDER / "wound_check.bpmn", FOLDER / "wound_review_interval.dmn"])
    assert [(r.file, r.problems) for r in reports] == [
        (str(FOLDER / "wound_check.bpmn"), ()),
        (str(FOLDER / "wound_review_interval.dmn"), ()),
    ]


def _run(name: str) -> engine.ScenarioResult:
    scenario = engine.load_scenario(FOLDER / name)
    return engine.run_scenario(scenario, folder=WOUND_CHECK)


def _of(result: engine.ScenarioResult, kind: str) -> list[dict[str, Any]]:
    return [e for e in result.timeline if e["type"] == kind]


def test_signs_of_infection_bring_the_review_forward_and_a_late_review_is_reminded() -> None:
    result = _run("signs_of_infection_review_late.json")
    (decision,) = _of(result, "decision")
    assert (decision["decision"], decision["rule"]) == (
        "wound_review_interval",
        "rule_infection_signs",
    )
    assert decision["outputs"] == {"review_priority": "early", "review_interval": "P2D"}
    (timer,) = _of(result, "timer_fired")
    assert (timer["timer"], timer["deadline"], timer["day"]) == (
        "wound_review_timer",
        "wound_review_due",
        2.0,
    )
    (reminder,) = _of(result, "reminder")
    assert (reminder["reminder"], reminder["day"]) == ("wound_review_overdue", 2.0)
    assert result.final == {
        "status": "ended",
        "end": "wound_check_done",
        "ready_tasks": [],
        "reminders_sent": ["wound_review_overdue"],
        "variances": [],
        "escalated": False,
    }


def test_a_healing_wound_reviewed_in_time_gets_no_reminder() -> None:
    result = _run("healing_reviewed_in_time.json")
    (decision,) = _of(result, "decision")
    assert decision["outputs"] == {"review_priority": "routine", "review_interval": "P7D"}
    assert _of(result, "timer_fired") == [] and _of(result, "reminder") == []
    assert (result.final["end"], result.final["reminders_sent"]) == ("wound_check_done", [])


def test_the_form_refuses_a_value_out_of_range_naming_the_step_and_field(tmp_path: Path) -> None:
    text = (FOLDER / "healing_reviewed_in_time.json").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text(text.replace('"redness_cm": 1', '"redness_cm": 31'))
    with pytest.raises(ScenarioInvalid) as refused:
        engine.run_scenario(engine.load_scenario(bad), folder=WOUND_CHECK)
    assert "wound_assessment" in str(refused.value) and "redness_cm" in str(refused.value)
