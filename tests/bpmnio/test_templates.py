"""The element templates of bpmn/templates: Camunda Modeler accepts them, and what a modeler
fills in their forms is what the engine reads. Each template is applied with bpmn-moddle as
Camunda Modeler applies it (templates.mjs follows the template's bindings, not a copy of
them), the file is checked with `pathway validate` and read with engine.steps.read_steps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import engine
from engine.steps import (
    DeadlineLimits,
    Escalation,
    Evidence,
    ReminderRule,
    Step,
    VarianceRule,
    read_steps,
)
from engine.vocabulary import Role

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEMPLATES = ROOT / "bpmn" / "templates"
UNTEMPLATED = HERE / "untemplated.bpmn"
CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"

STEP = {
    "pathway.evidence.source": "Test guideline, section 1",
    "pathway.evidence.quote": "Score the pain before planning the review.",
    "pathway.priority": "urgent",
    "pathway.completed_on": "assessed_on",
}
VARIANCE = {  # added in the Extension properties group once the step template is applied
    "pathway.variance.severe_pain_not_escalated": "score >= 8",
    "pathway.variance.severe_pain_not_escalated.rule": "Severe pain is seen within a week.",
    "pathway.variance.severe_pain_not_escalated.quote": "Escalate severe pain early.",
}
REMINDER = {
    "pathway.reminder": "review_due",
    "pathway.reminder.to": "coordinator, clinician",
    "pathway.escalate": "true",
    "pathway.reminder.text": "The two-week review is due.",
    "pathway.evidence.source": "Test guideline, section 3",
}
DEADLINE = {
    "pathway.deadline": "review_due",
    "pathway.evidence.source": "Test guideline, section 2",
    "pathway.evidence.quote": "Review after two weeks, and within three.",
    "pathway.deadline.latest": "add_weeks(assessed_on, 3)",
    "pathway.deadline.latest.rule": "The review happens within three weeks.",
    "pathway.deadline.earliest": "add_weeks(assessed_on, 2)",
    "pathway.deadline.earlier.role": "clinician",
    "pathway.deadline.earlier.variance": "review_brought_forward",
    "pathway.deadline.earlier.rule": "A review before two weeks cuts the trial of care short.",
}
ARMED_DEADLINE = {
    "pathway.deadline": "assessment_overdue",
    "pathway.evidence.source": "Test guideline, section 4",
    "pathway.deadline.later": "never",
    "pathway.escalation.message": "pain_reported",
    "pathway.escalation.urgency": "emergency",
    "pathway.escalation.clock": "PT4H",
    "pathway.escalation.decision": "pain_decision",
}


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if (
        found is None
        or not (HERE / "node_modules" / "@bpmn-io" / "element-templates-validator").exists()
    ):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("node and tests/bpmnio/node_modules are required (make install)")
        pytest.skip("node or the bpmn.io packages are missing: run make install")
    return found


def _apply(node: str, out: Path, *applications: dict[str, Any]) -> dict[str, Any]:
    """Apply templates to elements of the fixture, as Camunda Modeler does, into ``out``."""
    job = {"diagram": str(UNTEMPLATED), "out": str(out), "applications": list(applications)}
    result = subprocess.run(
        [node, str(HERE / "templates.mjs"), "apply"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    assert answer["warnings"] == []
    return answer


def _template(name: str, element: str, values: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"template": str(TEMPLATES / name), "element": element, "values": values, **extra}


def _all_applied(**changes: dict[str, str]) -> list[dict[str, Any]]:
    """The three templates on the fixture's four elements, with ``changes`` to their values."""
    return [
        _template("step.json", "assess", STEP | changes.get("assess", {}), extra=VARIANCE),
        _template("deadline.json", "review_timer", DEADLINE | changes.get("review_timer", {})),
        _template(
            "reminder.json", "review_reminder", REMINDER | changes.get("review_reminder", {})
        ),
        _template(
            "deadline.json", "assess_overdue", ARMED_DEADLINE | changes.get("assess_overdue", {})
        ),
    ]


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def _problems(path: Path) -> tuple[str, ...]:
    """The problems `pathway validate` reports, found in this process (quicker than the CLI)."""
    (report,) = engine.validate_paths([path])
    return tuple(str(p) for p in report.problems)


def _steps(path: Path) -> dict[str, Step]:
    steps, problems = read_steps(etree.parse(str(path)).getroot(), file=path.name)
    assert problems == []
    return steps


def test_camunda_modeler_accepts_each_template(node: str) -> None:
    files = sorted(TEMPLATES.glob("*.json"))
    result = subprocess.run(
        [node, str(HERE / "templates.mjs"), "validate", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == {str(f): [] for f in files}
    templates = [json.loads(f.read_text()) for f in files]
    assert [(t["id"], t["version"]) for t in templates] == [
        ("pathway.deadline", 1),
        ("pathway.reminder", 1),
        ("pathway.step", 1),
    ]


def test_what_a_modeler_fills_in_is_what_the_engine_reads(node: str, tmp_path: Path) -> None:
    out = tmp_path / "review.bpmn"
    assert _apply(node, out, *_all_applied())["refused"] == {}

    validated = _validate(out)
    assert (validated.returncode, validated.stdout.splitlines()[0]) == (
        0,
        f"{out}: deployable",
    ), validated.stdout

    steps = _steps(out)
    assess = steps["assess"]
    assert assess.evidence == Evidence(
        "Score the pain so the review can be planned.",
        STEP["pathway.evidence.source"],
        STEP["pathway.evidence.quote"],
    )
    assert (assess.urgent, assess.completed_on, assess.merges) == (True, "assessed_on", None)
    assert assess.variances == (
        VarianceRule(
            "severe_pain_not_escalated",
            "score >= 8",
            "Severe pain is seen within a week.",
            "Escalate severe pain early.",
        ),
    )

    reminder = steps["review_reminder"]
    assert reminder.reminder == ReminderRule(
        "review_due", ("coordinator", "clinician"), True, "The two-week review is due."
    )
    assert reminder.properties["pathway.reminder.text"] == "The two-week review is due."
    assert reminder.evidence.source == "Test guideline, section 3"

    timer = steps["review_timer"]
    assert (timer.deadline, timer.escalation) == ("review_due", None)
    assert timer.limits == DeadlineLimits(
        latest="add_weeks(assessed_on, 3)",
        latest_rule="The review happens within three weeks.",
        later=True,
        earliest="add_weeks(assessed_on, 2)",
        earlier_role="clinician",
        earlier_variance="review_brought_forward",
        earlier_rule="A review before two weeks cuts the trial of care short.",
    )

    armed = steps["assess_overdue"]
    assert (armed.deadline, armed.limits) == ("assessment_overdue", DeadlineLimits(later=False))
    assert armed.escalation == Escalation("pain_reported", "emergency", "PT4H", "pain_decision")

    # Camunda Modeler shows each element's form again when the file is reopened.
    root = etree.parse(str(out)).getroot()
    applied = {
        e.get("id"): (e.get(f"{CAMUNDA}modelerTemplate"), e.get(f"{CAMUNDA}modelerTemplateVersion"))
        for e in root.iter()
        if e.get(f"{CAMUNDA}modelerTemplate")
    }
    assert applied == {
        "assess": ("pathway.step", "1"),
        "review_timer": ("pathway.deadline", "1"),
        "review_reminder": ("pathway.reminder", "1"),
        "assess_overdue": ("pathway.deadline", "1"),
    }


def _dropdowns() -> list[tuple[str, str, str]]:
    return [
        (file.name, prop["binding"]["name"], choice["value"])
        for file in sorted(TEMPLATES.glob("*.json"))
        for prop in json.loads(file.read_text())["properties"]
        if prop["type"] == "Dropdown"
        for choice in prop["choices"]
    ]


ELEMENT_OF = {
    "step.json": "assess",
    "reminder.json": "review_reminder",
    "deadline.json": "review_timer",
}


@pytest.mark.parametrize(("template", "name", "value"), _dropdowns())
def test_every_dropdown_choice_is_deployable(
    node: str, tmp_path: Path, template: str, name: str, value: str
) -> None:
    out = tmp_path / "review.bpmn"
    _apply(node, out, *_all_applied(**{ELEMENT_OF[template]: {name: value}}))
    assert _problems(out) == ()
    assert _steps(out)[ELEMENT_OF[template]].properties[name] == value


@pytest.mark.parametrize(
    ("element", "name", "value"),
    [
        ("review_reminder", "pathway.reminder.to", ",".join(Role)),
        ("review_reminder", "pathway.reminder.to", Role.CLINICIAN),
        ("review_timer", "pathway.deadline.earlier.role", ", ".join(Role)),
        ("review_timer", "pathway.deadline.earlier.role", ""),
        ("assess_overdue", "pathway.escalation.clock", "P1Y2M4DT5H6M7.5S"),
        ("assess_overdue", "pathway.escalation.clock", "P1.5W"),
    ],
)
def test_what_the_engine_accepts_the_form_accepts(
    node: str, tmp_path: Path, element: str, name: str, value: str
) -> None:
    out = tmp_path / "review.bpmn"
    assert _apply(node, out, *_all_applied(**{element: {name: value}}))["refused"] == {}
    assert _problems(out) == ()


@pytest.mark.parametrize(
    ("element", "name", "value", "form_says", "validate_says"),
    [
        (
            "review_reminder",
            "pathway.reminder.to",
            "coordinator, nurse",
            "One or more of coordinator, clinician, modeler, admin, comma-separated.",
            "pathway.reminder.to of intermediate throw event 'review_reminder' (\"Review due\") "
            "names unknown role 'nurse'",
        ),
        (
            "review_reminder",
            "pathway.reminder.to",
            "",
            "Must not be empty.",
            "reminder 'review_due' of intermediate throw event 'review_reminder' "
            '("Review due") reminds no one',
        ),
        (
            "review_timer",
            "pathway.deadline.earlier.role",
            "surgeon",
            "Empty, or one or more of coordinator, clinician, modeler, admin, comma-separated.",
            "pathway.deadline.earlier.role of timer 'review_timer' (\"2 weeks\") names unknown "
            "role 'surgeon'",
        ),
        (
            "assess_overdue",
            "pathway.escalation.clock",
            "4 hours",
            "An ISO 8601 duration such as PT4H, P14D or P6W (weeks stand alone).",
            "is '4 hours', not an ISO 8601 duration",
        ),
        (
            "assess_overdue",
            "pathway.escalation.clock",
            "P3W4D",
            "An ISO 8601 duration such as PT4H, P14D or P6W (weeks stand alone).",
            "is 'P3W4D', not an ISO 8601 duration",
        ),
        (
            "review_timer",
            "pathway.evidence.source",
            "",
            "Must not be empty.",
            "timer 'review_timer' (\"2 weeks\") does not say why it is here",
        ),
    ],
    ids=[
        "unknown role",
        "no role",
        "unknown earlier role",
        "clock in words",
        "clock mixing weeks",
        "no source",
    ],
)
def test_a_value_the_form_refuses_is_a_problem_for_pathway_validate(
    node: str,
    tmp_path: Path,
    element: str,
    name: str,
    value: str,
    form_says: str,
    validate_says: str,
) -> None:
    out = tmp_path / "review.bpmn"
    answer = _apply(node, out, *_all_applied(**{element: {name: value}}))
    assert answer["refused"] == {element: {name: form_says}}
    validated = _validate(out)
    assert validated.returncode == 1
    assert f"[{element}]: " in validated.stdout
    assert validate_says in validated.stdout
