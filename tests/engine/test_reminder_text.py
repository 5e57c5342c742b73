"""What a reminder says comes from its diagram: ``pathway.reminder.text`` on the event, else the
event's name; and validation keeps that text one short line."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from engine.steps import read_steps
from engine.validation import validate_documents

REPO = Path(__file__).resolve().parents[2]
PATHWAY_BPMN = REPO / "bpmn" / "lumbar_radiculopathy.bpmn"
PATHWAY_DMN = REPO / "bpmn" / "red_flags.dmn"
REFERRAL_TEXT = (
    '<camunda:property name="pathway.reminder.text" '
    'value="Specialist referral due (2 weeks after conservative care started)"/>'
)
# The referral reminder's roles (another reminder has the same line: this one follows its text).
REFERRAL_TO = (
    REFERRAL_TEXT
    + '\n            <camunda:property name="pathway.reminder.to" value="coordinator"/>'
)


def _pathway(*edits: tuple[str, str]) -> bytes:
    text = PATHWAY_BPMN.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text.encode()


def _texts(content: bytes) -> dict[str, str]:
    steps, problems = read_steps(etree.fromstring(content), file="pathway.bpmn")
    assert problems == []
    return {s.reminder.kind: s.reminder.text for s in steps.values() if s.reminder}


def test_the_first_pathways_reminders_read_as_they_did_when_the_words_were_in_code() -> None:
    assert _texts(PATHWAY_BPMN.read_bytes()) == {
        "referral_due_2_weeks": "Specialist referral due (2 weeks after conservative care started)",
        "reassessment_due_6_weeks": "6-week reassessment due",
        "referral_escalation_3_months": (
            "ESCALATION: specialist referral not done 3 months after symptom onset"
        ),
        "urgent_action_overdue": "Urgent MRI / specialist referral still open",
        "emergency_action_overdue": (
            "EMERGENCY: MRI / specialist referral still open 4 hours after the report"
        ),
    }


def test_a_reminder_without_a_text_reads_its_events_name() -> None:
    texts = _texts(_pathway((REFERRAL_TEXT, "")))
    assert texts["referral_due_2_weeks"] == "Referral overdue (2 weeks)"


def _problems(content: bytes) -> list[tuple[str | None, str, str | None]]:
    report = validate_documents(
        [("lumbar_radiculopathy.bpmn", content), ("red_flags.dmn", PATHWAY_DMN.read_bytes())]
    )[0]
    return [(p.element_id, p.message, p.fix) for p in report.problems]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("   ", "is blank"),
        ("Referral due&#10;Bcc: someone@example.org", "unprintable character U+000A"),
        ("Referral due\u202e", "unprintable character U+202E"),
        ("x" * 201, "201 characters long, more than 200"),
    ],
)
def test_a_reminder_text_that_is_not_one_short_line_is_a_problem(value: str, says: str) -> None:
    bad = REFERRAL_TEXT.replace(
        "Specialist referral due (2 weeks after conservative care started)", value
    )
    ((element, message, fix),) = _problems(_pathway((REFERRAL_TEXT, bad)))
    assert element == "referral_due_reminder"
    assert "the reminder text of intermediate throw event 'referral_due_reminder'" in message
    assert says in message
    assert fix is not None and "one line of plain text, at most 200 characters" in fix


def test_a_reminder_text_or_roles_without_a_kind_is_a_problem() -> None:
    found = _problems(
        _pathway(('<camunda:property name="pathway.reminder" value="referral_due_2_weeks"/>', ""))
    )
    event = "intermediate throw event 'referral_due_reminder' (\"Referral overdue (2 weeks)\")"
    assert sorted((e, m) for e, m, _ in found) == [
        ("referral_due_reminder", f"{event} has pathway.reminder.text but no reminder kind"),
        (
            "referral_due_reminder",
            f"{event} names whom to remind but no reminder (pathway.reminder)",
        ),
    ]


@pytest.mark.parametrize(
    ("to", "says"),
    [
        ("", "reminds no one"),
        ("coordinator, nurse", "names unknown role 'nurse'"),
    ],
)
def test_a_reminder_to_no_one_or_to_an_unknown_role_is_a_problem(to: str, says: str) -> None:
    found = _problems(
        _pathway((REFERRAL_TO, REFERRAL_TO.replace('value="coordinator"', f'value="{to}"')))
    )
    assert len(found) == 1
    element, message, fix = found[0]
    assert element == "referral_due_reminder"
    assert "intermediate throw event 'referral_due_reminder'" in message
    assert says in message
    assert fix is not None and "coordinator, clinician" in fix
