"""The case's clinical record over HTTP, on SQLite and PostgreSQL: every value entered, as it
now stands, who entered it and when; every decision with its outcome and the rule that
matched; the same values in the timeline. Only the care team reads it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import JSON, bindparam

from tests.api.conftest import Server
from tests.api.test_cases import complete, days_ago, get_case, recent_intake, start, timeline
from tests.data import GOOD_PLAN, NO_RED_FLAGS


def _record(case: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(entry["step"], entry["field"]): entry for entry in case["record"]}


def test_the_case_shows_every_value_entered_with_who_and_when(api: Server) -> None:
    onset = days_ago(10)
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-REC-1", recent_intake(symptom_onset=onset, leg_pain_nrs=8))
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        shown = get_case(ana, case["id"])
    record = _record(shown)
    assert record[("intake", "symptom_onset")]["value"] == onset
    assert record[("intake", "leg_pain_nrs")]["value"] == 8
    assert record[("intake", "patient_ref")]["value"] == "SYN-REC-1"
    assert {e["entered_by"] for k, e in record.items() if k[0] == "intake"} == {"ana"}
    screen = {k[1]: e for k, e in record.items() if k[0] == "red_flag_screen"}
    assert set(screen) == set(NO_RED_FLAGS)
    assert all(e["value"] is False and e["entered_by"] == "lee" for e in screen.values())
    assert record[("conservative_plan", "bed_rest")]["value"] is False
    assert all(e["recorded"] for e in shown["record"])
    # The command's own answer carries the same record.
    assert case["record"] == shown["record"]
    assert shown["decisions"] == [
        {
            "step": "red_flag_decision",
            "decision": "red_flags",
            "outputs": {"red_flag": "none", "urgency": "routine"},
            "rule": "rule_none",
            "rule_text": shown["decisions"][0]["rule_text"],
            "at": shown["decisions"][0]["at"],
        }
    ]
    assert shown["decisions"][0]["rule_text"]


def test_a_red_flag_decision_shows_its_outcome_and_the_rule_that_matched(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-REC-2", recent_intake())
        case = complete(lee, case, "red_flag_screen", {**NO_RED_FLAGS, "saddle_anesthesia": True})
        events = timeline(lee, case["id"])
    (decision,) = case["decisions"]
    assert decision["outputs"] == {"red_flag": "cauda_equina", "urgency": "emergency"}
    assert decision["rule"] == "rule_cauda_equina"
    assert "saddle" in decision["rule_text"].lower() or "emergency" in decision["rule_text"]
    # In the timeline: the values of the screen, then the decision, with its outputs.
    completed = next(
        e for e in events if e["type"] == "task_completed" and e["step"] == "red_flag_screen"
    )
    assert completed["detail"]["values"]["saddle_anesthesia"] is True
    assert completed["actor"] == "lee"
    decided = [e for e in events if e["type"] == "decision"]
    assert len(decided) == 1 and decided[0]["step"] == "red_flag_decision"
    assert decided[0]["detail"]["outputs"] == decision["outputs"]
    assert decided[0]["evidence"]["quote"]
    assert events.index(decided[0]) > events.index(completed)


def test_a_reported_red_flag_is_in_the_record_with_who_reported_it(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-REC-3", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        response = lee.post(
            f"/cases/{case['id']}/messages/red_flag_reported",
            json={"data": {"progressive_motor_deficit": True}},
            headers={"If-Match": f'"{case["version"]}"'},
        )
    assert response.status_code == 200, response.text
    entry = _record(response.json())[("red_flag_reported", "progressive_motor_deficit")]
    assert entry["value"] is True and entry["entered_by"] == "lee"


def test_the_record_is_for_the_care_team_only(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("mo", "modeler") as mo:
        case = start(ana, "SYN-REC-4", recent_intake())
        assert mo.get(f"/cases/{case['id']}").status_code == 403
        assert mo.get(f"/cases/{case['id']}/timeline").status_code == 403


def test_a_step_completed_before_values_were_kept_shows_its_fields_without_values(
    api: Server,
) -> None:
    """Events written by the previous version name the fields only: the record lists them,
    marked as not recorded, rather than inventing or hiding them."""
    from sqlalchemy import text

    import engine

    with api.client("ana", "coordinator") as ana:
        case = start(ana, "SYN-REC-5", recent_intake())
        db = engine.make_engine(api.database)
        with db.begin() as conn:
            rows = conn.execute(
                text("SELECT id, detail FROM case_events WHERE case_id = :c AND type = :t"),
                {"c": case["id"], "t": "task_completed"},
            ).all()
            assert len(rows) == 1
            detail = (
                rows[0].detail if isinstance(rows[0].detail, dict) else json.loads(rows[0].detail)
            )
            old = {"fields": detail["fields"]}
            conn.execute(
                text("UPDATE case_events SET detail = :d WHERE id = :i").bindparams(
                    bindparam("d", type_=JSON)
                ),
                {"d": old, "i": rows[0].id},
            )
        db.dispose()
        shown = get_case(ana, case["id"])
    entries = _record(shown)
    assert entries[("intake", "side")] == {
        **entries[("intake", "side")],
        "value": None,
        "recorded": False,
        "entered_by": "ana",
    }
    assert len([k for k in entries if k[0] == "intake"]) == len(recent_intake()) + 1


def test_coordinators_and_clinicians_add_notes_to_the_timeline(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-NOTE-1", recent_intake())
        first = ana.post(f"/cases/{case['id']}/notes", json={"text": "Called: MRI booked.\nOK"})
        second = lee.post(f"/cases/{case['id']}/notes", json={"text": "Reviewed the screen."})
        after = get_case(ana, case["id"])
        events = timeline(ana, case["id"])
    assert first.status_code == 201, first.text
    assert first.json()["type"] == "note" and first.json()["actor"] == "ana"
    assert first.json()["detail"] == {"text": "Called: MRI booked.\nOK"}
    notes = [(e["actor"], e["detail"]["text"]) for e in events if e["type"] == "note"]
    assert notes == [("ana", "Called: MRI booked.\nOK"), ("lee", "Reviewed the screen.")]
    assert second.status_code == 201
    assert after["version"] == case["version"]  # a note changes nothing of the pathway


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "at least 1"), ("   ", "blank"), ("x" * 4001, "4000"), ("a\x00b", "U+0000")],
    ids=["empty", "blank", "too long", "NUL"],
)
def test_a_note_must_be_plain_text_of_at_most_4000_characters(
    api: Server, text: str, message: str
) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "SYN-NOTE-2", recent_intake())
        response = ana.post(f"/cases/{case['id']}/notes", json={"text": text})
        assert response.status_code == 422, response.text
        (error,) = response.json()["errors"]
        assert error["field"] == "text" and message in error["message"], error
        assert [e for e in timeline(ana, case["id"]) if e["type"] == "note"] == []
        assert ana.post(f"/cases/{case['id']}/notes", json={"text": "y" * 4000}).status_code == 201


def test_notes_are_for_the_care_team_on_cases_that_exist(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("mo", "modeler") as mo:
        case = start(ana, "SYN-NOTE-3", recent_intake())
        assert mo.post(f"/cases/{case['id']}/notes", json={"text": "x"}).status_code == 403
        missing = ana.post("/cases/00000000-0000-0000-0000-000000000000/notes", json={"text": "x"})
        assert missing.status_code == 404
    assert httpx.post(f"{api.url}/cases/{case['id']}/notes", json={"text": "x"}).status_code == 401


def test_new_onset_pain_after_50_is_the_malignancy_flag_over_http(api: Server) -> None:
    """Age 51, a first episode that began 10 weeks ago: malignancy, whatever the onset date."""
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-ONSET-1", recent_intake(age=51, symptom_onset=days_ago(70)))
        case = complete(lee, case, "red_flag_screen", {**NO_RED_FLAGS, "new_onset_pain": True})
        recurrence = start(ana, "SYN-ONSET-2", recent_intake(age=60))
        recurrence = complete(lee, recurrence, "red_flag_screen", NO_RED_FLAGS)
    assert case["decisions"][0]["outputs"] == {"red_flag": "malignancy", "urgency": "urgent"}
    assert {t["id"] for t in case["ready_tasks"]} == {"urgent_mri", "urgent_specialist_referral"}
    assert recurrence["decisions"][0]["outputs"]["red_flag"] == "none"


# -- corrections ---------------------------------------------------------------------------


def _amend(client: Any, case: dict[str, Any], step: str, data: dict[str, Any], **extra: Any) -> Any:
    headers = extra.pop("headers", {"If-Match": f'"{case["version"]}"'})
    body = {"data": data, "reason": "typed the wrong date", **extra}
    return client.post(f"/cases/{case['id']}/tasks/{step}/amend", json=body, headers=headers)


def test_a_coordinator_corrects_the_symptom_onset_and_the_timeline_keeps_both(
    api: Server,
) -> None:
    with (
        api.client("ana", "coordinator") as ana,
        api.client("lee", "clinician") as lee,
        api.client("cy", "coordinator") as cy,
    ):
        case = start(ana, "SYN-AM-1", recent_intake(symptom_onset=days_ago(10)))
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        before = {d["kind"]: d["due_at"] for d in case["deadlines"]}
        response = _amend(cy, case, "intake", {"symptom_onset": days_ago(20)})
        assert response.status_code == 200, response.text
        amended = response.json()
        events = timeline(ana, case["id"])
    entry = _record(amended)[("intake", "symptom_onset")]
    assert (entry["value"], entry["entered_by"]) == (days_ago(20), "cy")
    after = {d["kind"]: d["due_at"] for d in amended["deadlines"]}
    assert after["referral_escalation_3_months"] < before["referral_escalation_3_months"]
    assert after["reassessment_due_6_weeks"] == before["reassessment_due_6_weeks"]
    (event,) = [e for e in events if e["type"] == "task_amended"]
    assert event["actor"] == "cy" and event["detail"]["reason"] == "typed the wrong date"
    assert event["detail"]["changes"] == {
        "symptom_onset": {"from": days_ago(10), "to": days_ago(20)}
    }


def test_an_onset_corrected_to_4_months_ago_escalates_the_case_at_once(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-AM-2", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        assert case["escalated"] is False
        amended = _amend(ana, case, "intake", {"symptom_onset": days_ago(122)}).json()
    assert amended["escalated"] is True
    assert [r["kind"] for r in amended["reminders"]] == ["referral_escalation_3_months"]
    assert "specialist_referral" in {t["id"] for t in amended["ready_tasks"]}


def test_a_correction_that_would_change_the_red_flag_decision_is_409(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-AM-3", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        response = _amend(lee, case, "red_flag_screen", {"saddle_anesthesia": True})
        body = response.json()
        assert response.status_code == 409, response.text
        assert body["type"] == "/problems/decision-would-change"
        assert "red_flags" in body["detail"] and "red_flag_reported" in body["detail"]
        assert get_case(ana, case["id"])["version"] == case["version"]


def test_a_correction_needs_the_steps_role_if_match_and_a_reason(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "SYN-AM-4", recent_intake())
        assert _amend(lee, case, "intake", {"leg_pain_nrs": 3}).status_code == 403
        assert _amend(ana, case, "intake", {"leg_pain_nrs": 3}, headers={}).status_code == 428
        stale = _amend(ana, case, "intake", {"leg_pain_nrs": 3}, headers={"If-Match": '"999"'})
        assert stale.status_code == 409
        assert _amend(ana, case, "intake", {"leg_pain_nrs": 3}, reason="").status_code == 422
        not_done = _amend(lee, case, "red_flag_screen", {"fever": False})
        assert not_done.status_code == 409
        assert not_done.json()["type"] == "/problems/step-not-completed"
        assert _amend(ana, case, "intake", {"leg_pain_nrs": 11}).status_code == 422
        assert get_case(ana, case["id"])["version"] == case["version"]
