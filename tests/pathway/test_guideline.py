"""The radiculopathy pathway, one test per clinical path of the guideline, on SQLite and
PostgreSQL. Each step is followed by a save-and-reload check (see CaseDriver)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import engine
from tests.conftest import Database
from tests.data import NO_RED_FLAGS
from tests.pathway.conftest import START, CaseDriver, intake

HOUR = timedelta(hours=1)
REFERRAL = {"referral_date": "2026-01-12", "specialty": "spine surgery"}
NOT_IMPROVED_NOT_CANDIDATE = {
    "improved": False,
    "function_limited": True,
    "procedure_candidate": False,
    "patient_choice": "conservative",
}


def referral_on(day: float) -> dict[str, str]:
    return {
        "referral_date": (START + timedelta(days=day)).date().isoformat(),
        "specialty": "spine surgery",
    }


# -- red flags ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "red_flag", "urgency", "overdue_after"),
    [
        ("urinary_retention_or_incontinence", "cauda_equina", "emergency", 4 * HOUR),
        ("saddle_anesthesia", "cauda_equina", "emergency", 4 * HOUR),
        ("bilateral_leg_weakness", "cauda_equina", "emergency", 4 * HOUR),
        ("progressive_motor_deficit", "progressive_deficit", "urgent", 24 * HOUR),
        ("history_of_cancer", "malignancy", "urgent", 24 * HOUR),
        ("unexplained_weight_loss", "malignancy", "urgent", 24 * HOUR),
        ("fever", "infection", "urgent", 24 * HOUR),
        ("iv_drug_use", "infection", "urgent", 24 * HOUR),
        ("immunosuppression", "infection", "urgent", 24 * HOUR),
        ("significant_trauma", "fracture", "urgent", 24 * HOUR),
        ("osteoporosis", "fracture", "urgent", 24 * HOUR),
        ("prolonged_corticosteroids", "fracture", "urgent", 24 * HOUR),
    ],
)
def test_red_flag_sends_the_patient_for_urgent_mri_and_referral(
    case: CaseDriver, finding: str, red_flag: str, urgency: str, overdue_after: timedelta
) -> None:
    case.complete("intake", intake())
    case.complete("red_flag_screen", {**NO_RED_FLAGS, finding: True})
    assert case.data()["red_flag"] == red_flag
    assert case.data()["urgency"] == urgency
    assert sorted(case.ready) == ["urgent_mri", "urgent_specialist_referral"]
    assert "conservative_plan" not in case.ready
    assert case.deadlines() == {"urgent_action_overdue": START + overdue_after}
    case.wait_until(overdue_after / timedelta(days=1) - 0.01)
    assert case.reminders() == {}
    case.wait_until(2)
    assert case.reminders() == {"urgent_action_overdue": START + overdue_after}
    case.complete("urgent_mri", {"mri_requested_on": "2026-01-05"})
    case.complete(
        "urgent_specialist_referral",
        {"urgent_referral_date": "2026-01-06", "urgent_specialty": "neurosurgery"},
        actor="coordinator:ana",
    )
    view = case.view
    assert view.status == "ended"
    assert view.end == "urgent_pathway"
    assert view.deadlines == []


def test_first_matching_red_flag_category_wins(case: CaseDriver) -> None:
    case.complete("intake", intake())
    case.complete(
        "red_flag_screen",
        {**NO_RED_FLAGS, "fever": True, "osteoporosis": True, "progressive_motor_deficit": True},
    )
    assert case.data()["red_flag"] == "progressive_deficit"


def test_new_onset_pain_after_50_is_malignancy_whenever_it_began(case: CaseDriver) -> None:
    """ "Age >50 with new onset pain": a first episode at 51, begun 10 weeks ago, is the
    malignancy red flag (the onset date does not make it less new)."""
    case.complete("intake", intake(age=51, symptom_onset="2025-10-27"))
    case.complete("red_flag_screen", {**NO_RED_FLAGS, "new_onset_pain": True})
    assert (case.data()["red_flag"], case.data()["urgency"]) == ("malignancy", "urgent")
    assert "urgent_mri" in case.ready
    (decision,) = case.view.decisions
    assert decision.rule == "rule_malignancy"


def test_a_recurrence_of_known_back_pain_after_50_is_not_a_red_flag(case: CaseDriver) -> None:
    case.complete("intake", intake(age=60, symptom_onset="2025-12-29"))
    case.complete("red_flag_screen", {**NO_RED_FLAGS, "new_onset_pain": False})
    assert case.data()["red_flag"] == "none"
    assert case.ready == ["conservative_plan"]


def test_new_onset_pain_at_50_is_not_yet_the_malignancy_flag(case: CaseDriver) -> None:
    case.complete("intake", intake(age=50))
    case.complete("red_flag_screen", {**NO_RED_FLAGS, "new_onset_pain": True})
    assert case.data()["red_flag"] == "none"


def test_urgent_reminder_is_not_sent_when_both_actions_are_done_in_time(case: CaseDriver) -> None:
    case.complete("intake", intake())
    case.complete("red_flag_screen", {**NO_RED_FLAGS, "fever": True})
    case.complete("urgent_mri", {"mri_requested_on": "2026-01-05"}, day=0.5)
    case.complete(
        "urgent_specialist_referral",
        {"urgent_referral_date": "2026-01-05", "urgent_specialty": "spine"},
        day=0.9,
    )
    case.wait_until(3)
    assert case.reminders() == {}
    assert case.view.end == "urgent_pathway"


# -- conservative care --------------------------------------------------------------------


def test_improved_at_6_weeks_is_discharged_to_self_care(case: CaseDriver) -> None:
    case.screen_clear()
    case.start_conservative()
    assert case.ready == []
    assert set(case.deadlines()) == {"reassessment_due_6_weeks", "referral_escalation_3_months"}
    case.wait_until(41.9)
    assert case.ready == []
    case.wait_until(42)
    assert case.reminders() == {"reassessment_due_6_weeks": START + timedelta(days=42)}
    assert case.ready == ["six_week_reassessment"]
    case.complete(
        "six_week_reassessment",
        {
            "improved": True,
            "function_limited": False,
            "procedure_candidate": False,
            "patient_choice": "conservative",
        },
        day=43,
    )
    case.complete("self_care_discharge", {"self_care_advice_given": True}, day=43)
    view = case.view
    assert (view.status, view.end) == ("ended", "resolved")
    assert view.deadlines == []
    assert view.variances == []
    assert "referral_escalation_3_months" not in case.reminders()


def test_disabling_pain_referred_before_day_14_gets_no_reminder(case: CaseDriver) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    assert case.ready == ["specialist_referral"]
    assert case.deadlines()["referral_due_2_weeks"] == START + timedelta(days=14)
    case.complete("specialist_referral", referral_on(10), day=10, actor="coordinator:ana")
    case.wait_until(30)
    assert "referral_due_2_weeks" not in case.reminders()
    assert "referral_due_2_weeks" not in case.deadlines()


def test_disabling_pain_not_referred_by_day_14_reminds_once(case: CaseDriver) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    case.wait_until(13.99)
    assert case.reminders() == {}
    case.wait_until(20)
    assert case.reminder_events() == [("referral_due_2_weeks", START + timedelta(days=14))]
    assert case.ready == ["specialist_referral"], "the referral stays open"
    case.complete("specialist_referral", referral_on(20), actor="coordinator:ana")
    case.wait_until(41)
    assert [k for k, _ in case.reminder_events()] == ["referral_due_2_weeks"]


def test_procedure_candidate_gets_mri_then_referral_then_treatment_decision(
    case: CaseDriver,
) -> None:
    case.screen_clear()
    case.start_conservative()
    case.complete(
        "six_week_reassessment",
        {
            "improved": False,
            "function_limited": True,
            "procedure_candidate": True,
            "patient_choice": "esi",
        },
        day=42,
    )
    assert case.ready == ["mri_lumbar_spine"]
    case.complete("mri_lumbar_spine", {"performed": True, "nerve_root_compression": True}, day=45)
    assert case.ready == ["specialist_referral"]
    case.complete("specialist_referral", referral_on(47), day=47, actor="coordinator:ana")
    assert case.ready == ["treatment_decision"]
    case.complete("treatment_decision", {"procedure": "esi_image_guided"}, day=60)
    view = case.view
    assert (view.status, view.end) == ("ended", "referred")
    assert view.variances == []


def test_candidate_already_referred_for_disabling_pain_is_not_referred_twice(
    case: CaseDriver,
) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    case.complete("specialist_referral", referral_on(5), day=5, actor="coordinator:ana")
    case.complete(
        "six_week_reassessment",
        {
            "improved": False,
            "function_limited": True,
            "procedure_candidate": True,
            "patient_choice": "surgery",
        },
        day=42,
    )
    case.complete("mri_lumbar_spine", {"performed": True, "nerve_root_compression": True})
    assert case.ready == ["treatment_decision"]
    case.complete("treatment_decision", {"procedure": "discectomy"})
    assert case.view.end == "referred"
    assert [e.step for e in case.events("task_completed")].count("specialist_referral") == 1


def test_not_improved_and_not_a_candidate_is_referred(case: CaseDriver) -> None:
    case.screen_clear()
    case.start_conservative()
    case.complete(
        "six_week_reassessment",
        {
            "improved": False,
            "function_limited": True,
            "procedure_candidate": False,
            "patient_choice": "conservative",
        },
        day=42,
    )
    assert case.ready == ["specialist_referral"]
    case.complete("specialist_referral", referral_on(44), day=44, actor="coordinator:ana")
    view = case.view
    assert (view.status, view.end) == ("ended", "referred")
    assert "mri_lumbar_spine" not in [e.step for e in case.events("task_ready")]


# -- the 3-month limit --------------------------------------------------------------------


def test_three_month_limit_with_onset_in_the_past_escalates_on_the_clinical_date(
    case: CaseDriver,
) -> None:
    case.screen_clear(symptom_onset="2025-11-01")
    case.start_conservative()
    limit = datetime(2026, 2, 1, tzinfo=UTC)  # 2025-11-01 + 3 calendar months
    assert case.deadlines()["referral_escalation_3_months"] == limit
    case.wait_until((limit - START) / timedelta(days=1) - 0.01)
    assert not case.view.escalated
    assert "specialist_referral" not in case.ready
    case.wait_until(27)  # 2026-02-01 09:00, the limit day itself
    view = case.view
    assert view.escalated
    assert case.reminders() == {"referral_escalation_3_months": limit}
    assert case.ready == ["specialist_referral"]
    case.complete("specialist_referral", referral_on(27), actor="coordinator:ana")
    assert case.variances() == [], "a referral on the limit day is not beyond 3 months"


def test_three_month_limit_already_passed_fires_at_once(case: CaseDriver) -> None:
    case.screen_clear(symptom_onset="2025-06-15")
    case.start_conservative(day=1)
    view = case.view
    assert view.escalated
    assert case.reminders() == {"referral_escalation_3_months": datetime(2025, 9, 15, tzinfo=UTC)}
    assert case.ready == ["specialist_referral"]
    escalation = case.events("reminder")[0]
    assert escalation.at == START + timedelta(days=1), "fires when conservative care starts"
    case.complete("specialist_referral", referral_on(2), day=2, actor="coordinator:ana")
    assert case.variances() == ["referral_beyond_3_months"]


def test_escalation_when_disabling_referral_is_still_open(case: CaseDriver) -> None:
    case.screen_clear(symptom_onset="2025-11-01", disabling_pain=True)
    case.start_conservative()
    case.wait_until(30)
    assert set(case.reminders()) == {"referral_due_2_weeks", "referral_escalation_3_months"}
    assert case.view.escalated
    assert case.ready == ["specialist_referral"]


# -- red flag reported mid-way --------------------------------------------------------------


def test_red_flag_reported_mid_way_interrupts_conservative_care(case: CaseDriver) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    case.report_red_flag({"progressive_motor_deficit": True}, day=20)
    assert sorted(case.ready) == ["urgent_mri", "urgent_specialist_referral"]
    assert case.data()["red_flag"] == "progressive_deficit"
    assert set(case.deadlines()) == {"urgent_action_overdue"}
    message = case.events("message")[0]
    assert message.detail["reported"] == ["progressive_motor_deficit"]
    assert "six_week_timer" in message.detail["cancelled_timers"]
    case.wait_until(120)
    kinds = [k for k, _ in case.reminder_events()]
    assert "reassessment_due_6_weeks" not in kinds
    assert "referral_escalation_3_months" not in kinds
    assert kinds == ["referral_due_2_weeks", "urgent_action_overdue"]


def test_cauda_equina_reported_mid_way_is_an_emergency(case: CaseDriver) -> None:
    case.screen_clear()
    case.start_conservative()
    case.report_red_flag({"saddle_anesthesia": True}, day=3)
    assert case.data()["urgency"] == "emergency"
    assert case.deadlines() == {"urgent_action_overdue": START + timedelta(days=3, hours=4)}


def test_red_flag_report_with_nothing_reported_is_refused(case: CaseDriver) -> None:
    case.screen_clear()
    case.start_conservative()
    before = case.view.version
    with pytest.raises(engine.InvalidTaskData, match="at least one"):
        case.report_red_flag({}, day=1)
    with pytest.raises(engine.InvalidTaskData, match="nosebleed"):
        case.report_red_flag({"nosebleed": True}, day=1)
    assert case.view.version == before


def test_a_red_flag_reported_during_intake_counts_at_the_screen(case: CaseDriver) -> None:
    """Reported before intake is even done: the screen takes it, and it cannot be cleared."""
    case.report_red_flag({"saddle_anesthesia": True}, day=0)
    assert case.ready == ["intake"]
    case.screen_clear()
    assert (case.data()["red_flag"], case.data()["urgency"]) == ("cauda_equina", "emergency")
    assert case.reminders() == {}
    assert set(case.ready) == {"urgent_mri", "urgent_specialist_referral"}


def test_a_red_flag_reported_during_the_screen_is_merged_into_it(case: CaseDriver) -> None:
    case.complete("intake", intake(), actor="coordinator:ana")
    case.report_red_flag({"fever": True}, day=0.1)
    case.complete("red_flag_screen", NO_RED_FLAGS)  # entered as no: the report stands
    assert case.data()["red_flag"] == "infection"
    (completed,) = [e for e in case.events("task_completed") if e.step == "red_flag_screen"]
    assert completed.detail["from_report"] == ["fever"]


def _urgent(case: CaseDriver, **finding: bool) -> None:
    case.complete("intake", intake(), actor="coordinator:ana")
    case.complete("red_flag_screen", {**NO_RED_FLAGS, **finding})


def test_cauda_equina_reported_in_the_urgent_branch_starts_a_4_hour_clock(
    case: CaseDriver,
) -> None:
    """Infection (urgent, 24 h), then cauda equina reported 2 hours in: an emergency, with a
    new 4-hour clock from the report and its own reminder, sent once."""
    _urgent(case, fever=True)
    assert set(case.deadlines()) == {"urgent_action_overdue"}
    view = case.report_red_flag({"saddle_anesthesia": True}, day=2 / 24)
    reported_at = case.at_day(2 / 24)
    assert case.deadlines()["emergency_action_overdue"] == reported_at + 4 * HOUR
    assert [d.outputs["urgency"] for d in view.decisions] == ["urgent", "emergency"]
    case.report_red_flag({"bilateral_leg_weakness": True}, day=3 / 24)  # no second clock
    assert case.deadlines()["emergency_action_overdue"] == reported_at + 4 * HOUR
    case.wait_until(1)
    reminders = case.reminder_events()
    assert [kind for kind, _ in reminders].count("emergency_action_overdue") == 1
    assert ("emergency_action_overdue", reported_at + 4 * HOUR) in reminders
    assert case.reminders()["urgent_action_overdue"] == case.at_day(1)


def test_the_emergency_clock_stops_when_the_urgent_actions_are_done(case: CaseDriver) -> None:
    _urgent(case, fever=True)
    case.report_red_flag({"saddle_anesthesia": True}, day=1 / 24)
    case.complete("urgent_mri", {"mri_requested_on": "2026-01-05"}, day=2 / 24)
    case.complete(
        "urgent_specialist_referral",
        {"urgent_referral_date": "2026-01-05", "urgent_specialty": "spine"},
        actor="coordinator:ana",
    )
    case.wait_until(2)
    assert "emergency_action_overdue" not in case.reminders()
    assert case.view.status == "ended"


def test_a_report_no_more_urgent_than_the_branch_starts_no_clock(case: CaseDriver) -> None:
    _urgent(case, saddle_anesthesia=True)  # already an emergency
    case.report_red_flag({"fever": True}, day=0.01)
    assert set(case.deadlines()) == {"urgent_action_overdue"}
    assert [e.detail["reported"] for e in case.events("message")] == [["fever"]]


# -- variances ------------------------------------------------------------------------------


def test_mri_ordered_in_conservative_care_is_a_variance(case: CaseDriver) -> None:
    case.screen_clear()
    case.start_conservative(mri_ordered=True)
    (variance,) = case.view.variances
    assert (variance.code, variance.step) == (
        "mri_before_6_weeks_without_red_flags",
        "conservative_plan",
    )
    assert "6 weeks" in (variance.rule or "")
    assert variance.evidence["source"]


def test_bed_rest_is_a_variance(case: CaseDriver) -> None:
    case.screen_clear()
    case.start_conservative(bed_rest=True)
    assert case.variances() == ["bed_rest_prescribed"]
    assert [e.detail["variance"] for e in case.events("variance")] == ["bed_rest_prescribed"]


def _to_treatment_decision(
    case: CaseDriver,
    *,
    compression: bool,
    function_limited: bool = True,
    patient_choice: str = "surgery",
) -> None:
    case.screen_clear()
    case.start_conservative()
    case.complete(
        "six_week_reassessment",
        {
            "improved": False,
            "function_limited": function_limited,
            "procedure_candidate": True,
            "patient_choice": patient_choice,
        },
        day=42,
    )
    case.complete("mri_lumbar_spine", {"performed": True, "nerve_root_compression": compression})
    case.complete("specialist_referral", referral_on(43), day=43, actor="coordinator:ana")


def test_fusion_is_a_variance(case: CaseDriver) -> None:
    _to_treatment_decision(case, compression=True)
    case.complete("treatment_decision", {"procedure": "fusion"})
    assert case.variances() == ["fusion_for_isolated_disc_herniation"]


@pytest.mark.parametrize("procedure", ["esi_image_guided", "discectomy"])
def test_invasive_treatment_without_imaging_correlation_is_a_variance(
    case: CaseDriver, procedure: str
) -> None:
    _to_treatment_decision(case, compression=False)
    case.complete("treatment_decision", {"procedure": procedure})
    assert case.variances() == ["invasive_without_imaging_correlation"]


def test_continuing_conservative_care_without_compression_is_no_variance(case: CaseDriver) -> None:
    _to_treatment_decision(case, compression=False)
    case.complete("treatment_decision", {"procedure": "continue_conservative"})
    assert case.variances() == []


def test_referral_after_3_months_is_a_variance(case: CaseDriver) -> None:
    case.screen_clear(symptom_onset="2025-11-01")
    case.start_conservative()
    case.complete("specialist_referral", referral_on(40), day=40, actor="coordinator:ana")
    assert case.variances() == ["referral_beyond_3_months"]


# The guideline's pitfalls beyond the first five, each at its boundary.


@pytest.mark.parametrize(("nrs", "variance"), [(6, True), (7, False)])
def test_short_opioids_are_for_severe_pain_only(case: CaseDriver, nrs: int, variance: bool) -> None:
    """ "Short-term opioids judiciously for severe pain only": below 7 of 10 is not severe."""
    case.screen_clear(leg_pain_nrs=nrs)
    case.start_conservative(opioid_short_course=True)
    assert case.variances() == (["opioid_without_severe_pain"] if variance else [])


def test_no_opioid_with_mild_pain_is_no_variance(case: CaseDriver) -> None:
    case.screen_clear(leg_pain_nrs=2)
    case.start_conservative(opioid_short_course=False)
    assert case.variances() == []


def test_a_plan_without_advice_to_stay_active_is_a_variance(case: CaseDriver) -> None:
    """ "Remaining active is more effective than bed rest"."""
    case.screen_clear()
    case.start_conservative(activity_advice=False)
    (variance,) = case.view.variances
    assert variance.code == "activity_advice_not_given"
    assert "remaining active" in variance.evidence["quote"]


def test_a_plan_without_education_on_the_prognosis_is_a_variance(case: CaseDriver) -> None:
    """ "Patient education about the favorable prognosis"."""
    case.screen_clear()
    case.start_conservative(education_given=False)
    (variance,) = case.view.variances
    assert variance.code == "education_not_given"
    assert "favorable prognosis" in variance.evidence["quote"]


@pytest.mark.parametrize(("day", "variance"), [(14, False), (15, True)])
def test_disabling_pain_is_referred_within_2_weeks(
    case: CaseDriver, day: int, variance: bool
) -> None:
    """ "Specialist referral should occur within 2 weeks if pain is disabling": completed on
    day 14 of conservative care it is in time, on day 15 it is not."""
    case.screen_clear(disabling_pain=True)
    case.start_conservative(day=3)
    case.complete("specialist_referral", referral_on(day + 3), day=day + 3, actor="coordinator:ana")
    expected = ["referral_beyond_2_weeks_for_disabling_pain"] if variance else []
    assert case.variances() == expected


def test_a_late_referral_without_disabling_pain_is_no_2_week_variance(case: CaseDriver) -> None:
    case.screen_clear(disabling_pain=False)
    case.start_conservative()
    case.complete("six_week_reassessment", NOT_IMPROVED_NOT_CANDIDATE, day=42)
    case.complete("specialist_referral", referral_on(43), day=43, actor="coordinator:ana")
    assert "referral_beyond_2_weeks_for_disabling_pain" not in case.variances()


@pytest.mark.parametrize(("function_limited", "variance"), [(False, True), (True, False)])
def test_discectomy_needs_symptoms_that_limit_function(
    case: CaseDriver, function_limited: bool, variance: bool
) -> None:
    """Surgery is for "symptoms lasting greater than 6 weeks that significantly limit function"."""
    _to_treatment_decision(case, compression=True, function_limited=function_limited)
    case.complete("treatment_decision", {"procedure": "discectomy"})
    assert case.variances() == (["surgery_without_indication"] if variance else [])


@pytest.mark.parametrize(
    ("procedure", "choice", "variance"),
    [
        ("esi_image_guided", "conservative", True),
        ("discectomy", "conservative", True),
        ("esi_image_guided", "esi", False),
        ("continue_conservative", "conservative", False),
    ],
)
def test_a_procedure_against_the_patients_choice_is_a_variance(
    case: CaseDriver, procedure: str, choice: str, variance: bool
) -> None:
    """ESI "may be considered based on patient choice and clinical appropriateness"."""
    _to_treatment_decision(case, compression=True, patient_choice=choice)
    case.complete("treatment_decision", {"procedure": procedure})
    assert case.variances() == (["procedure_against_patient_choice"] if variance else [])


# -- steps that are not ready, data that is refused ------------------------------------------


def test_a_step_that_is_not_ready_is_refused_and_nothing_changes(case: CaseDriver) -> None:
    case.complete("intake", intake())
    before, events_before = case.view, case.events()
    with pytest.raises(engine.TaskNotReady) as refused:
        case.complete("conservative_plan", {})
    assert refused.value.ready == ["red_flag_screen"]
    assert "red_flag_screen" in str(refused.value)
    assert case.view == before
    assert case.events() == events_before


def test_bad_form_data_is_refused_field_by_field_and_nothing_changes(case: CaseDriver) -> None:
    before = case.view
    with pytest.raises(engine.InvalidTaskData) as refused:
        case.complete(
            "intake",
            {
                "patient_ref": "P-9",
                "side": "up",
                "symptom_onset": "2027-01-01",
                "leg_pain_nrs": 11,
                "disabling_pain": "yes",
                "age": 17,
                "favourite_colour": "blue",
            },
        )
    fields = {e.field for e in refused.value.errors}
    assert fields == {
        "side",
        "symptom_onset",
        "leg_pain_nrs",
        "disabling_pain",
        "age",
        "favourite_colour",
    }
    assert case.view == before
    with pytest.raises(engine.InvalidTaskData, match="age: is required"):
        case.complete("intake", {k: v for k, v in intake().items() if k != "age"})


def test_patient_is_identified_by_reference(case: CaseDriver) -> None:
    case.complete("intake", intake(patient_ref="MRN-778812"), actor="coordinator:ana")
    assert case.view.patient_ref == "MRN-778812"
    completed = case.events("task_completed")[0]
    assert completed.actor == "coordinator:ana"
    assert "MRN-778812" not in str(completed.detail)


def test_every_event_is_tied_to_its_evidence(case: CaseDriver) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    case.wait_until(15)
    for event in case.events():
        if event.type in ("task_ready", "task_completed", "timer_fired", "reminder"):
            assert event.evidence and event.evidence["source"], event
            assert event.evidence["rationale"], event


def test_cancelled_case_stops_its_timers(case: CaseDriver, db: object) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    with case.db.sessions.begin() as session:
        view = engine.cancel_case(
            session,
            case_id=case.id,
            reason="patient moved away",
            clock=case.clock,
            actor="coordinator:ana",
        )
    assert (view.status, view.cancel_reason, view.deadlines) == (
        "cancelled",
        "patient moved away",
        [],
    )
    case.wait_until(60)
    assert case.reminders() == {}
    with pytest.raises(engine.CaseClosed):
        case.complete("specialist_referral", referral_on(60))


# -- clinic time --------------------------------------------------------------------------

SYDNEY = ZoneInfo("Australia/Sydney")
# 08:00 on 2 December 2026 in Sydney (UTC+11) is still 1 December in UTC.
SYDNEY_MORNING = datetime(2026, 12, 2, 8, 0, tzinfo=SYDNEY)


def test_todays_date_at_8_in_sydney_is_not_in_the_future(db: Database) -> None:
    """A Sydney clinic entering today's date before 11:00 local time is not told that it is in
    the future: clinical dates are read in the clinic's zone."""
    case = CaseDriver(db, SYDNEY_MORNING, zone=SYDNEY)
    view = case.complete("intake", intake(symptom_onset="2026-12-02"), actor="coordinator:ana")
    assert "red_flag_screen" in [t.id for t in view.ready_tasks]


def test_the_same_date_read_in_utc_is_in_the_future(db: Database) -> None:
    case = CaseDriver(db, SYDNEY_MORNING)  # a clinic on UTC: it is 1 December there
    with pytest.raises(engine.InvalidTaskData, match="future"):
        case.complete("intake", intake(symptom_onset="2026-12-02"), actor="coordinator:ana")


def test_a_date_anchored_deadline_falls_due_at_local_midnight(db: Database) -> None:
    """The 3-month limit is a clinical date: 00:00 in Sydney on onset + 3 months."""
    case = CaseDriver(db, SYDNEY_MORNING, zone=SYDNEY)
    case.screen_clear(symptom_onset="2026-11-20")
    case.start_conservative()
    due = case.deadlines()["referral_escalation_3_months"]
    assert due == datetime(2027, 2, 20, 0, 0, tzinfo=SYDNEY)
    assert due.astimezone(UTC) == datetime(2027, 2, 19, 13, 0, tzinfo=UTC)


# -- corrections -------------------------------------------------------------------------------


def test_a_corrected_symptom_onset_moves_the_3_month_limit(case: CaseDriver) -> None:
    case.screen_clear(symptom_onset="2025-12-29")
    case.start_conservative()
    assert case.deadlines()["referral_escalation_3_months"] == datetime(2026, 3, 29, tzinfo=UTC)
    case.amend("intake", {"symptom_onset": "2025-12-01"}, day=2)
    assert case.deadlines()["referral_escalation_3_months"] == datetime(2026, 3, 1, tzinfo=UTC)
    (amended,) = case.events("task_amended")
    assert amended.detail["changes"] == {
        "symptom_onset": {"from": "2025-12-29", "to": "2025-12-01"}
    }
    assert amended.actor == "coordinator:ana" and amended.detail["reason"] == "entered wrongly"
    assert [d["deadline"] for d in amended.detail["deadlines_moved"]] == [
        "referral_escalation_3_months"
    ]
    record = {(e.step, e.field): e for e in case.view.record}
    assert record[("intake", "symptom_onset")].value == "2025-12-01"


def test_an_onset_corrected_past_the_limit_escalates_at_once(case: CaseDriver) -> None:
    """Corrected to 4 months ago, the 3-month limit has passed: it fires now."""
    case.screen_clear(symptom_onset="2025-12-29")
    case.start_conservative()
    assert not case.view.escalated
    view = case.amend("intake", {"symptom_onset": "2025-09-01"}, day=1)
    assert view.escalated
    assert "referral_escalation_3_months" in case.reminders()
    assert case.reminders()["referral_escalation_3_months"] == datetime(2025, 12, 1, tzinfo=UTC)
    assert "specialist_referral" in case.ready


def test_a_correction_that_would_change_the_red_flag_decision_is_refused(
    case: CaseDriver,
) -> None:
    case.screen_clear()
    case.start_conservative()
    with pytest.raises(engine.DecisionWouldChange, match="red_flags"):
        case.amend("red_flag_screen", {"fever": True}, actor="clinician:lee")
    assert case.events("task_amended") == []
    assert case.data()["fever"] is False


def test_a_correction_that_would_change_a_path_taken_is_refused(case: CaseDriver) -> None:
    """Pain corrected to disabling after conservative care chose no 2-week referral: the path
    is not rewritten silently; the team acts on it in the open."""
    case.screen_clear(disabling_pain=False)
    case.start_conservative()
    with pytest.raises(engine.DecisionWouldChange, match="Disabling pain"):
        case.amend("intake", {"disabling_pain": True})


def test_a_correction_that_changes_no_decision_is_taken(case: CaseDriver) -> None:
    case.screen_clear(leg_pain_nrs=6)
    case.start_conservative()
    case.amend("intake", {"leg_pain_nrs": 5})
    assert case.data()["leg_pain_nrs"] == 5


def test_only_the_steps_role_corrects_it_and_only_a_completed_step(case: CaseDriver) -> None:
    case.screen_clear()
    with pytest.raises(engine.NotPermitted):
        case.amend("intake", {"leg_pain_nrs": 5}, roles=frozenset({engine.Role.CLINICIAN}))
    with pytest.raises(engine.StepNotCompleted, match="conservative_plan"):
        case.amend("conservative_plan", {"bed_rest": True})
    with pytest.raises(engine.InvalidTaskData, match="changes nothing"):
        case.amend("intake", {"leg_pain_nrs": 6})


def test_an_unrelated_correction_leaves_the_emergency_clock_and_moved_deadlines_alone(
    case: CaseDriver,
) -> None:
    _urgent(case, progressive_motor_deficit=True)
    case.report_red_flag({"saddle_anesthesia": True}, day=1 / 24)
    clock = case.deadlines()["emergency_action_overdue"]
    case.amend("intake", {"side": "right"}, day=2 / 24)
    assert case.deadlines()["emergency_action_overdue"] == clock
    (amended,) = case.events("task_amended")
    assert "deadlines_moved" not in amended.detail


def test_a_deadline_brought_forward_by_hand_stays_as_early_after_a_correction(
    case: CaseDriver,
) -> None:
    case.screen_clear(symptom_onset="2025-12-29")
    case.start_conservative()
    brought = case.at_day(30)
    with case.db.sessions.begin() as session:
        engine.reschedule_deadline(
            session,
            case_id=case.id,
            kind="referral_escalation_3_months",
            due_at=brought,
            reason="seen in clinic: refer sooner",
            clock=case.clock,
            actor="coordinator:ana",
        )
    case.amend("intake", {"leg_pain_nrs": 5}, day=1)  # no date changes
    assert case.deadlines()["referral_escalation_3_months"] == brought
    case.amend("intake", {"symptom_onset": "2026-01-02"}, day=2)  # a later limit: kept earlier
    assert case.deadlines()["referral_escalation_3_months"] == brought
    case.amend("intake", {"symptom_onset": "2025-10-20"}, day=3)  # limit 2026-01-20: sooner
    assert case.deadlines()["referral_escalation_3_months"] == datetime(2026, 1, 20, tzinfo=UTC)


def test_an_unarmed_emergency_clock_cannot_be_set_by_rescheduling(case: CaseDriver) -> None:
    _urgent(case, fever=True)
    with case.db.sessions.begin() as session, pytest.raises(engine.DeadlineNotFound):
        engine.reschedule_deadline(
            session,
            case_id=case.id,
            kind="emergency_action_overdue",
            due_at=case.at_day(1),
            reason="pre-empting",
            clock=case.clock,
            actor="coordinator:ana",
        )


def test_a_report_after_the_emergency_clock_fired_is_still_recorded(case: CaseDriver) -> None:
    _urgent(case, fever=True)
    case.report_red_flag({"saddle_anesthesia": True}, day=0.01)
    case.wait_until(0.5)  # the 4-hour clock has fired, the urgent actions are open
    case.report_red_flag({"bilateral_leg_weakness": True}, day=0.6)
    reports = [e.detail["reported"] for e in case.events("message")]
    assert reports == [["saddle_anesthesia"], ["bilateral_leg_weakness"]]


def test_a_later_correction_of_a_referral_made_in_time_raises_no_2_week_variance(
    case: CaseDriver,
) -> None:
    case.screen_clear(disabling_pain=True)
    case.start_conservative()
    case.complete("specialist_referral", referral_on(10), day=10, actor="coordinator:ana")
    case.amend("specialist_referral", {"specialty": "pain clinic"}, day=20)
    assert case.variances() == []


def test_correcting_the_pain_score_runs_the_plans_rules_again(case: CaseDriver) -> None:
    case.screen_clear(leg_pain_nrs=8)
    case.start_conservative(opioid_short_course=True)
    assert case.variances() == []
    case.amend("intake", {"leg_pain_nrs": 5}, day=1)
    assert case.variances() == ["opioid_without_severe_pain"]
