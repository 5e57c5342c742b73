"""What changed between two versions of the bundled pathway, as a modeler's edits make them."""

from __future__ import annotations

import json
import re

from engine import bundled
from engine.changes import DefinitionDiff, diff_definitions, render_text
from engine.vocabulary import ChangeKind

ORIGINAL = bundled.pathway_files()
BPMN = ORIGINAL[0][1].decode()
DMN = ORIGINAL[1][1].decode()


def _edited(bpmn: str = BPMN, dmn: str = DMN) -> list[tuple[str, bytes]]:
    return [(ORIGINAL[0][0], bpmn.encode()), (ORIGINAL[1][0], dmn.encode())]


def _replace(text: str, old: str, new: str) -> str:
    """Replace one exact piece of a diagram (a test edit that misses is a broken test)."""
    assert text.count(old) == 1, f"expected exactly one {old!r}"
    return text.replace(old, new)


def _diff(bpmn: str = BPMN, dmn: str = DMN) -> DefinitionDiff:
    return diff_definitions(ORIGINAL, _edited(bpmn, dmn))


def _kinds(diff: DefinitionDiff) -> list[tuple[str, str, bool]]:
    return [(c.kind, c.element, c.breaking) for c in diff.changes]


WITHOUT_SELF_CARE_DISCHARGE = re.sub(
    r'\s*<bpmn:userTask id="self_care_discharge".*?</bpmn:userTask>'
    r'\s*<bpmn:sequenceFlow id="flow_discharge_resolved"[^>]*/>',
    "",
    BPMN.replace('targetRef="self_care_discharge">', 'targetRef="conservative_resolved">'),
    flags=re.DOTALL,
)
OPTIONAL_FIELD = """
            <camunda:formField id="referral_note" label="Note for the specialist" type="string">
              <camunda:validation>
                <camunda:constraint name="maxlength" config="500"/>
              </camunda:validation>
            </camunda:formField>"""
REQUIRED_FIELD = """
            <camunda:formField id="referral_urgency" label="Urgency of the referral" type="enum">
              <camunda:validation>
                <camunda:constraint name="required"/>
              </camunda:validation>
              <camunda:value id="routine" name="Routine"/>
              <camunda:value id="soon" name="Soon"/>
            </camunda:formField>"""


def _with_field(field: str) -> str:
    """The specialist referral's form with one more field after `specialty`."""
    start = BPMN.index('<camunda:formField id="specialty"')
    end = BPMN.index("</camunda:formData>", start)
    return BPMN[:end] + field.strip() + "\n          " + BPMN[end:]


def test_identical_versions_have_no_changes() -> None:
    diff = diff_definitions(ORIGINAL, bundled.pathway_files())
    assert diff.changes == ()
    assert diff.summary() == {"changes": 0, "breaking": 0, "by_kind": {}}
    assert render_text(diff) == "No changes.\n"


def test_the_two_week_timer_shortened_to_ten_days_reads_in_days() -> None:
    diff = _diff(_replace(BPMN, '"P14D" if disabling_pain', '"P10D" if disabling_pain'))
    assert _kinds(diff) == [(ChangeKind.TIMER_CHANGED, "referral_two_week_timer", False)]
    text = diff.changes[0].text
    assert "14 days → 10 days" in text
    assert '"14 days (disabling pain)"' in text and "referral_due_2_weeks" in text
    assert '"Specialist referral"' in text
    assert 'its name still says "14 days"' in text
    assert diff.changes[0].before == {
        "type": "timeDuration",
        "expression": '"P14D" if disabling_pain else null',
    }


def test_durations_read_in_weeks_hours_and_months() -> None:
    diff = _diff(
        _replace(
            _replace(BPMN, ">P6W<", ">P5W<"),
            '"PT4H" if urgency == "emergency"',
            '"PT2H" if urgency == "emergency"',
        )
    )
    texts = {c.element: c.text for c in diff.changes}
    assert texts["six_week_timer"].endswith('6 weeks → 5 weeks (its name still says "6 weeks")')
    assert "4 hours → 2 hours" in texts["urgent_action_timer"]
    assert "24 hours" not in texts["urgent_action_timer"], "only the duration that changed"
    dated = _diff(
        BPMN.replace("add_months(symptom_onset, 3)</bpmn:timeDate>", "P3M</bpmn:timeDate>")
    )
    assert "on symptom_onset + 3 months → on 3 months" in dated.changes[0].text


def test_a_timer_whose_expression_changes_shape_shows_both_expressions() -> None:
    diff = _diff(_replace(BPMN, '"P14D" if disabling_pain else null', "P10D"))
    assert "after 14 days if disabling_pain else null → after 10 days" in diff.changes[0].text


def test_a_removed_step_is_breaking() -> None:
    diff = _diff(WITHOUT_SELF_CARE_DISCHARGE)
    assert _kinds(diff) == [(ChangeKind.STEP_REMOVED, "self_care_discharge", True)]
    assert diff.changes[0].text == 'Step "Self-care discharge" (self_care_discharge) removed'


def test_a_new_name_for_a_step_is_not_breaking() -> None:
    diff = _diff(_replace(BPMN, 'name="Self-care discharge"', 'name="Discharge to self-care"'))
    assert _kinds(diff) == [(ChangeKind.STEP_RENAMED, "self_care_discharge", False)]
    assert diff.changes[0].text == (
        'Step "Self-care discharge" (self_care_discharge) is now called "Discharge to self-care"'
    )


def test_a_new_id_for_a_step_is_breaking_and_is_not_a_removal() -> None:
    diff = _diff(BPMN.replace("self_care_discharge", "discharge_to_self_care"))
    assert _kinds(diff) == [(ChangeKind.STEP_ID_CHANGED, "discharge_to_self_care", True)]
    change = diff.changes[0]
    assert (change.before, change.after) == ("self_care_discharge", "discharge_to_self_care")
    assert "self_care_discharge → discharge_to_self_care" in change.text


def test_a_stage_and_a_step_inside_it_given_new_ids_are_both_matched() -> None:
    renamed = re.sub(r"\bconservative_care\b", "conservative_stage", BPMN)
    diff = _diff(renamed.replace("self_care_discharge", "discharge_to_self_care"))
    assert _kinds(diff) == [
        (ChangeKind.STEP_ID_CHANGED, "conservative_stage", True),
        (ChangeKind.STEP_ID_CHANGED, "discharge_to_self_care", True),
    ]
    assert diff.changes[0].text.startswith('Stage "Conservative care (at least 6 weeks)"')


def test_an_id_gone_is_not_matched_to_a_step_of_the_same_name_elsewhere() -> None:
    # The same name and type, but moved out of conservative care: removed and added.
    moved = WITHOUT_SELF_CARE_DISCHARGE.replace(
        '<bpmn:endEvent id="resolved" name="Resolved">',
        '<bpmn:userTask id="discharge" name="Self-care discharge" camunda:candidateGroups="clinician"/>\n'
        '    <bpmn:endEvent id="resolved" name="Resolved">',
    )
    kinds = {(k, e) for k, e, _ in _kinds(_diff(moved))}
    assert kinds == {
        (ChangeKind.STEP_REMOVED, "self_care_discharge"),
        (ChangeKind.STEP_ADDED, "discharge"),
    }


def test_a_required_field_added_to_an_existing_step_is_breaking() -> None:
    diff = _diff(_with_field(REQUIRED_FIELD))
    assert _kinds(diff) == [(ChangeKind.FIELD_ADDED, "specialist_referral.referral_urgency", True)]
    assert diff.changes[0].text == (
        'Step "Specialist referral" (specialist_referral): new required field '
        '"Urgency of the referral" (referral_urgency) (choice)'
    )


def test_an_optional_field_added_is_not_breaking() -> None:
    diff = _diff(_with_field(OPTIONAL_FIELD))
    assert _kinds(diff) == [(ChangeKind.FIELD_ADDED, "specialist_referral.referral_note", False)]
    assert "new optional field" in diff.changes[0].text
    assert "at most 500 characters" in diff.changes[0].text


def test_a_field_made_required_is_breaking_and_made_optional_is_not() -> None:
    optional = _with_field(OPTIONAL_FIELD)
    required = _replace(
        optional,
        '<camunda:constraint name="maxlength" config="500"/>',
        '<camunda:constraint name="required"/><camunda:constraint name="maxlength" config="500"/>',
    )
    forward = diff_definitions(_edited(optional), _edited(required))
    assert _kinds(forward) == [
        (ChangeKind.FIELD_NOW_REQUIRED, "specialist_referral.referral_note", True)
    ]
    back = diff_definitions(_edited(required), _edited(optional))
    assert _kinds(back) == [
        (ChangeKind.FIELD_NOW_OPTIONAL, "specialist_referral.referral_note", False)
    ]


def test_new_limits_on_a_field_say_both_ranges() -> None:
    diff = _diff(
        _replace(
            BPMN,
            '<camunda:constraint name="min" config="18"/>',
            '<camunda:constraint name="min" config="16"/>',
        )
    )
    assert _kinds(diff) == [(ChangeKind.FIELD_LIMITS_CHANGED, "intake.age", False)]
    assert (
        diff.changes[0].text
        == 'Step "Intake" (intake): "Age in years" (age) limits 18 to 120 → 16 to 120'
    )
    assert diff.changes[0].after == {
        "min": 16,
        "max": 120,
        "minlength": None,
        "maxlength": None,
        "not_future": False,
    }


def test_a_choice_removed_is_breaking_and_a_choice_added_is_not() -> None:
    fusion = '\n              <camunda:value id="fusion" name="Lumbar fusion"/>'
    without = _replace(BPMN, fusion, "")
    removed = _diff(without)
    assert _kinds(removed) == [(ChangeKind.CHOICE_REMOVED, "treatment_decision.procedure", True)]
    assert 'no longer offers "Lumbar fusion" (fusion)' in removed.changes[0].text
    added = diff_definitions(_edited(without), ORIGINAL)
    assert _kinds(added) == [(ChangeKind.CHOICE_ADDED, "treatment_decision.procedure", False)]


def test_a_decision_rule_changed_names_the_rule_and_the_cell() -> None:
    dmn = _replace(
        DMN,
        '<outputEntry id="rule_malignancy_out_2"><text>"urgent"</text>',
        '<outputEntry id="rule_malignancy_out_2"><text>"emergency"</text>',
    )
    diff = _diff(dmn=dmn)
    assert _kinds(diff) == [(ChangeKind.DECISION_RULE_CHANGED, "rule_malignancy", False)]
    text = diff.changes[0].text
    assert text.startswith('Decision table "Red flags", rule "History of cancer')
    assert text.endswith('Urgency "urgent" → "emergency"')


def test_a_decision_rule_added_and_removed() -> None:
    start = DMN.index('<rule id="rule_fracture">')
    end = DMN.index("</rule>", start) + len("</rule>")
    without = DMN[:start] + DMN[end:]
    removed = _diff(dmn=without)
    assert _kinds(removed) == [(ChangeKind.DECISION_RULE_REMOVED, "rule_fracture", False)]
    assert "Suspected fracture true" in removed.changes[0].text
    added = diff_definitions(_edited(dmn=without), ORIGINAL)
    assert _kinds(added) == [(ChangeKind.DECISION_RULE_ADDED, "rule_fracture", False)]


REMINDER_TEXT = (
    '<camunda:property name="pathway.reminder.text" '
    'value="Specialist referral due (2 weeks after conservative care started)"/>'
)
REMINDER_TO = REMINDER_TEXT + (
    '\n            <camunda:property name="pathway.reminder.to" value="coordinator"/>'
)


def test_a_reminders_roles_changed() -> None:
    diff = _diff(
        _replace(BPMN, REMINDER_TO, REMINDER_TO.replace('"coordinator"', '"clinician,coordinator"'))
    )
    assert _kinds(diff) == [(ChangeKind.REMINDER_CHANGED, "referral_due_reminder", False)]
    assert diff.changes[0].text == (
        'Reminder referral_due_2_weeks: sent to "coordinator" → "clinician, coordinator"'
    )


def test_any_new_reminder_property_shows_without_code_for_it() -> None:
    extra = '\n            <camunda:property name="pathway.reminder.channel" value="pager"/>'
    diff = _diff(_replace(BPMN, REMINDER_TO, REMINDER_TO + extra))
    assert _kinds(diff) == [(ChangeKind.REMINDER_CHANGED, "referral_due_reminder", False)]
    assert '"pager"' in diff.changes[0].text


def test_a_reminders_wording_changed() -> None:
    diff = _diff(
        _replace(BPMN, REMINDER_TEXT, REMINDER_TEXT.replace("Specialist referral due", "Refer now"))
    )
    assert _kinds(diff) == [(ChangeKind.REMINDER_CHANGED, "referral_due_reminder", False)]
    assert "Refer now (2 weeks after conservative care started)" in diff.changes[0].text


def test_a_reminder_kind_renamed_is_breaking() -> None:
    diff = _diff(
        _replace(
            BPMN,
            'name="pathway.reminder" value="referral_due_2_weeks"',
            'name="pathway.reminder" value="referral_due_10_days"',
        )
    )
    assert _kinds(diff) == [(ChangeKind.REMINDER_RENAMED, "referral_due_reminder", True)]
    assert "referral_due_2_weeks is now referral_due_10_days" in diff.changes[0].text


def test_a_variance_rule_changed_and_a_variance_removed() -> None:
    stricter = _replace(
        BPMN,
        'value="opioid_short_course == True and leg_pain_nrs &lt; 7"',
        'value="opioid_short_course == True and leg_pain_nrs &lt; 8"',
    )
    changed = _diff(stricter)
    assert _kinds(changed) == [(ChangeKind.VARIANCE_CHANGED, "conservative_plan", False)]
    assert changed.changes[0].text == (
        "Variance opioid_without_severe_pain: raised when "
        '"opioid_short_course == True and leg_pain_nrs < 7" → '
        '"opioid_short_course == True and leg_pain_nrs < 8"'
    )
    gone = re.sub(
        r'\s*<camunda:property name="pathway.variance.bed_rest_prescribed[^>]*/>', "", BPMN
    )
    removed = _diff(gone)
    assert _kinds(removed) == [(ChangeKind.VARIANCE_REMOVED, "conservative_plan", True)]


def test_new_evidence_reads_its_new_words() -> None:
    diff = _diff(
        _replace(
            BPMN,
            "Discharge to self-care: reinforce education",
            "Discharge to self-care and reinforce education",
        )
    )
    assert _kinds(diff) == [(ChangeKind.EVIDENCE_CHANGED, "self_care_discharge", False)]
    assert diff.changes[0].text.startswith(
        'Step "Self-care discharge" (self_care_discharge): rationale now reads "Discharge to self-care and'
    )


def test_a_message_removed_is_breaking() -> None:
    diff = _diff(_replace(BPMN, 'name="red_flag_reported"/>', 'name="red_flag_raised"/>'))
    assert sorted(_kinds(diff)) == [
        (ChangeKind.MESSAGE_ADDED, "red_flag_raised", False),
        (ChangeKind.MESSAGE_REMOVED, "red_flag_reported", True),
        (ChangeKind.PROPERTY_CHANGED, "red_flag_reported", False),
    ]


MIRRORED = {
    ChangeKind.STEP_ADDED: ChangeKind.STEP_REMOVED,
    ChangeKind.FIELD_ADDED: ChangeKind.FIELD_REMOVED,
    ChangeKind.CHOICE_ADDED: ChangeKind.CHOICE_REMOVED,
    ChangeKind.VARIANCE_ADDED: ChangeKind.VARIANCE_REMOVED,
    ChangeKind.MESSAGE_ADDED: ChangeKind.MESSAGE_REMOVED,
}
MIRRORED.update({v: k for k, v in MIRRORED.items()})


def test_a_to_b_and_b_to_a_mirror_each_other() -> None:
    b = re.sub(
        r'\s*<bpmn:userTask id="self_care_discharge".*?</bpmn:userTask>',
        "",
        _with_field(OPTIONAL_FIELD),
        flags=re.DOTALL,
    )
    forward = diff_definitions(ORIGINAL, _edited(b))
    back = diff_definitions(_edited(b), ORIGINAL)
    assert {(c.kind, c.element) for c in forward.changes} == {
        (ChangeKind.STEP_REMOVED, "self_care_discharge"),
        (ChangeKind.FIELD_ADDED, "specialist_referral.referral_note"),
    }
    assert {(MIRRORED[c.kind], c.element) for c in back.changes} == {
        (c.kind, c.element) for c in forward.changes
    }


def test_the_text_report_puts_breaking_changes_first_and_marks_them() -> None:
    bpmn = _replace(
        _with_field(REQUIRED_FIELD), '"P14D" if disabling_pain', '"P10D" if disabling_pain'
    )
    report = render_text(_diff(bpmn))
    lines = report.splitlines()
    assert lines[0] == "2 change(s), 1 breaking."
    marked = next(i for i, line in enumerate(lines) if line.startswith("  BREAKING"))
    timers = lines.index("Timers and deadlines:")
    assert "referral_urgency" in lines[marked] and marked < timers
    assert "14 days → 10 days" in lines[timers + 1]
    assert "referral_urgency" not in report[report.index("Timers and deadlines:") :]


def test_the_diff_as_data_is_json_with_counts() -> None:
    diff = _diff(_with_field(REQUIRED_FIELD).replace('name="Intake"', 'name="Patient intake"'))
    data = json.loads(json.dumps(diff.as_dict()))
    assert data["summary"] == {
        "changes": 2,
        "breaking": 1,
        "by_kind": {"field_added": 1, "step_renamed": 1},
    }
    assert data["changes"][0]["kind"] == "field_added" and data["changes"][0]["breaking"] is True
    assert data["changes"][1]["before"] == "Intake"
    assert data["changes"][1]["after"] == "Patient intake"
