"""A first walk through the API on a real server."""

from __future__ import annotations

from tests.api.conftest import Server, intake
from tests.data import NO_RED_FLAGS


def test_a_coordinator_starts_a_case_and_a_clinician_screens_it(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        created = ana.post(
            "/cases",
            json={"pathway": "lumbar_radiculopathy", "patient_ref": "MRN-1", "data": intake()},
        )
        assert created.status_code == 201, created.text
        case = created.json()
        assert [t["id"] for t in case["ready_tasks"]] == ["red_flag_screen"]
        assert created.headers["etag"] == f'"{case["version"]}"'
        screened = lee.post(
            f"/cases/{case['id']}/tasks/red_flag_screen/complete",
            json={"data": NO_RED_FLAGS},
            headers={"If-Match": created.headers["etag"]},
        )
        assert screened.status_code == 200, screened.text
        assert [t["id"] for t in screened.json()["ready_tasks"]] == ["conservative_plan"]
        timeline = lee.get(f"/cases/{case['id']}/timeline").json()
        completed = [e for e in timeline if e["type"] == "task_completed"]
        assert [(e["step"], e["actor"]) for e in completed] == [
            ("intake", "ana"),
            ("red_flag_screen", "lee"),
        ]


def test_reminders_are_listed_with_their_delivery_status(api: Server) -> None:
    from datetime import date, timedelta

    onset = (date.today() - timedelta(days=200)).isoformat()
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = ana.post(
            "/cases",
            json={
                "pathway": "lumbar_radiculopathy",
                "patient_ref": "MRN-REM-9",
                "data": intake(symptom_onset=onset),
            },
        ).json()
        lee.post(
            f"/cases/{case['id']}/tasks/red_flag_screen/complete",
            json={"data": NO_RED_FLAGS},
            headers={"If-Match": '"1"'},
        )
        from tests.data import GOOD_PLAN

        lee.post(
            f"/cases/{case['id']}/tasks/conservative_plan/complete",
            json={"data": GOOD_PLAN},
            headers={"If-Match": '"2"'},
        )
        listed = ana.get("/reminders", params={"case_id": case["id"]})
        assert listed.status_code == 200, listed.text
        (item,) = listed.json()["items"]
        assert (item["kind"], item["status"], item["attempts"]) == (
            "referral_escalation_3_months",
            "pending",
            0,
        )
        assert ana.get("/reminders", params={"status": "failed"}).json()["total"] == 0
        assert ana.get("/reminders", params={"status": "lost"}).status_code == 422
    with api.client("mo", "modeler") as mo:
        assert mo.get("/reminders").status_code == 403
