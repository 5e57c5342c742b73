"""Values of the pathway's own properties that the engine would misread when a case runs (a
reminder to a role no one holds, a limit that never applies, an escalation never armed) are
problems at validation, at the line of the property to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.validation import validate_documents

BPMN = Path(__file__).resolve().parents[2] / "bpmn"


def _problems(*edits: tuple[str, str]) -> list[tuple[str | None, int | None, str, str]]:
    text = (BPMN / "lumbar_radiculopathy.bpmn").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    report = validate_documents(
        [("pathway.bpmn", text.encode()), ("red_flags.dmn", (BPMN / "red_flags.dmn").read_bytes())]
    )[0]
    lines = text.splitlines()
    return [
        (
            p.element_id,
            p.line,
            lines[p.line - 1].strip() if p.line else "",
            f"{p.message} | {p.fix}",
        )
        for p in report.problems
    ]


REMINDER_TO = '<camunda:property name="pathway.reminder.to" value="coordinator"/>'
EARLIER_ROLE = '<camunda:property name="pathway.deadline.earlier.role" value="clinician"/>'
LATER = '<camunda:property name="pathway.deadline.later" value="never"/>'
CLOCK = '<camunda:property name="pathway.escalation.clock" value="PT4H"/>'


@pytest.mark.parametrize(
    ("edit", "element", "words"),
    [
        (
            (REMINDER_TO, REMINDER_TO.replace('"coordinator"', '"coordinator, nurse"')),
            "referral_due_reminder",
            "pathway.reminder.to of intermediate throw event 'referral_due_reminder' "
            "(\"Referral overdue (2 weeks)\") names unknown role 'nurse' | use one or more of "
            "coordinator, clinician, modeler, admin, comma-separated",
        ),
        (
            (EARLIER_ROLE, EARLIER_ROLE.replace('"clinician"', '"surgeon"')),
            "six_week_timer",
            "pathway.deadline.earlier.role of timer 'six_week_timer'",
        ),
        (
            (REMINDER_TO, REMINDER_TO.replace('"coordinator"', '""')),
            "referral_due_reminder",
            "reminder 'referral_due_2_weeks' of intermediate throw event "
            "'referral_due_reminder' (\"Referral overdue (2 weeks)\") reminds no one",
        ),
        (
            (LATER, LATER.replace('"never"', '"no"')),
            "urgent_action_timer",
            "pathway.deadline.later of timer 'urgent_action_timer' (\"24 h (emergency: 4 h)\") "
            "is 'no', which the engine does not read | write never, or leave it out",
        ),
        (
            (
                '<camunda:property name="pathway.escalate" value="true"/>',
                '<camunda:property name="pathway.escalate" value="yes"/>',
            ),
            "referral_escalation_reminder",
            "pathway.escalate of intermediate throw event 'referral_escalation_reminder'",
        ),
        (
            (CLOCK, CLOCK.replace("PT4H", "4 hours")),
            "emergency_action_timer",
            "is '4 hours', not an ISO 8601 duration",
        ),
        (
            (
                '<camunda:property name="pathway.deadline.earliest" '
                'value="add_weeks(conservative_care_started, 6)"/>',
                '<camunda:property name="pathway.deadline.earliest" '
                "value=\"__import__('os').getcwd()\"/>",
            ),
            "six_week_timer",
            "pathway.deadline.earliest of timer 'six_week_timer'",
        ),
    ],
    ids=[
        "unknown reminder role",
        "unknown earlier role",
        "reminder to no one",
        "later not never",
        "escalate not true or false",
        "clock not ISO 8601",
        "limit the sandbox refuses",
    ],
)
def test_a_misread_value_is_a_problem_at_its_property(
    edit: tuple[str, str], element: str, words: str
) -> None:
    found = [p for p in _problems(edit) if p[0] == element]
    assert len(found) == 1, found
    _, _, line, message = found[0]
    assert line == edit[1]
    assert words in message


def test_an_escalation_missing_a_part_is_never_armed() -> None:
    found = _problems((CLOCK, ""))
    assert [(p[0], p[3]) for p in found] == [
        (
            "emergency_action_timer",
            "the escalation of timer 'emergency_action_timer' (\"4 h after a report raises it "
            'to an emergency") is never armed: it has no pathway.escalation.clock | give all '
            "four of pathway.escalation.message, pathway.escalation.urgency, "
            "pathway.escalation.clock, pathway.escalation.decision, or none",
        )
    ]
