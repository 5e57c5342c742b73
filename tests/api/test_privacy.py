"""No patient data in logs: a case run through the API leaves none of its values in the log.

A dedicated server runs at DEBUG (where libraries leak most: SQL parameters, workflow data,
request bodies), on SQLite and on PostgreSQL. A coordinator and a clinician run a case with
distinctive synthetic values through intake, the red-flag screen, the conservative plan, the
specialist referral, a deadline moved with a reason, a red-flag message and a cancellation;
they find it by patient reference (list filter, worklist) and send bad requests that carry
the same values. Then the server's captured output is searched for every value entered, in
the spellings a log line could give it (ISO, Python repr, URL-encoded): none may appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from tests.api.conftest import SECRET, Server, intake, own_server, stop_server
from tests.data import GOOD_PLAN, NO_RED_FLAGS

PATIENT_REF = "MRN-PRIVACY-7731"
SYMPTOM_ONSET = "2026-08-17"
REFERRAL_DATE = "2026-10-29"
SPECIALTY = "Zygomatic-Spine-Clinic-4242"
RESCHEDULE_REASON = "Patient-Reason-Quokka-5150 asked to move it"
CANCEL_REASON = "Cancel-Reason-Narwhal-6262 moved away"
NOTE_TEXT = "Note-Text-Axolotl-7373 phoned back"
PROBE = "ZZPROBE"  # in every value the hostile inputs below send
PROBE_ID = "zzprobe"  # and in values shaped like ids (lower case, snake case)
# Every value entered, with the other spellings a log line could give it.
SECRETS = {
    PROBE: [PROBE, quote(PROBE), "9999-12-31", "0001-01-01"],
    PROBE_ID: [PROBE_ID],
    PATIENT_REF: [PATIENT_REF, quote(PATIENT_REF), "PRIVACY-7731"],
    SYMPTOM_ONSET: [SYMPTOM_ONSET, "2026, 8, 17", "17/08/2026", "08/17/2026", "20260817"],
    REFERRAL_DATE: [REFERRAL_DATE, "2026, 10, 29", "29/10/2026", "10/29/2026", "20261029"],
    SPECIALTY: [SPECIALTY, "Zygomatic"],
    RESCHEDULE_REASON: [RESCHEDULE_REASON, "Quokka-5150", quote(RESCHEDULE_REASON)],
    CANCEL_REASON: [CANCEL_REASON, "Narwhal-6262", quote(CANCEL_REASON)],
    NOTE_TEXT: [NOTE_TEXT, "Axolotl-7373", quote(NOTE_TEXT)],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def debug_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own, at DEBUG, so its log holds this test's requests and nothing else."""
    server = own_server(request, tmp_path, env={"PATHWAY_LOG_LEVEL": "DEBUG"})
    yield server
    stop_server(server)


def in_weeks(weeks: int) -> str:
    """A due time ahead of the server's real clock."""
    return (datetime.now(UTC) + timedelta(weeks=weeks)).replace(microsecond=0).isoformat()


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _etag(case: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{case["version"]}"'}


def _refused_without_echo(response: httpx.Response, status: int) -> None:
    """A bad request is refused, and the refusal repeats none of the values it carried."""
    assert response.status_code == status, response.text
    for spellings in SECRETS.values():
        for spelling in spellings:
            assert spelling not in response.text, (spelling, response.text)


def run_a_case(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        # Bad requests first, while the patient has no case: each carries the values.
        _refused_without_echo(
            ana.post(
                "/cases",
                json={
                    "pathway": "lumbar_radiculopathy",
                    "patient_ref": PATIENT_REF,
                    "data": intake(symptom_onset=SYMPTOM_ONSET, leg_pain_nrs=11, age=12),
                },
            ),
            422,
        )
        _refused_without_echo(
            ana.post(
                "/cases",
                json={"pathway": "lumbar_radiculopathy", "patient_ref": PATIENT_REF * 5},
            ),
            422,
        )
        _refused_without_echo(
            ana.post(
                "/cases",
                json={"pathway": "no_such_pathway", "patient_ref": PATIENT_REF},
            ),
            404,
        )
        _refused_without_echo(
            ana.post(
                "/cases",
                content=f'{{"pathway": "lumbar_radiculopathy", "patient_ref": "{PATIENT_REF}",',
                headers={"Content-Type": "application/json"},
            ),
            422,
        )

        case = _ok(
            ana.post(
                "/cases",
                json={
                    "pathway": "lumbar_radiculopathy",
                    "patient_ref": PATIENT_REF,
                    "data": intake(symptom_onset=SYMPTOM_ONSET, disabling_pain=True),
                },
            ),
            201,
        )
        case_id = case["id"]
        assert case["patient_ref"] == PATIENT_REF
        # Starting a second case for the same patient is refused (with the existing case's id).
        _refused_without_echo(
            ana.post(
                "/cases",
                json={"pathway": "lumbar_radiculopathy", "patient_ref": PATIENT_REF},
            ),
            409,
        )
        case = _ok(
            lee.post(
                f"/cases/{case_id}/tasks/red_flag_screen/complete",
                json={"data": NO_RED_FLAGS},
                headers=_etag(case),
            )
        )
        case = _ok(
            lee.post(
                f"/cases/{case_id}/tasks/conservative_plan/complete",
                json={"data": GOOD_PLAN},
                headers=_etag(case),
            )
        )
        # A refused referral (date in the future) and then the real one.
        _refused_without_echo(
            ana.post(
                f"/cases/{case_id}/tasks/specialist_referral/complete",
                json={"data": {"referral_date": "2999-01-01", "specialty": SPECIALTY}},
                headers=_etag(case),
            ),
            422,
        )
        case = _ok(
            ana.post(
                f"/cases/{case_id}/tasks/specialist_referral/complete",
                json={"data": {"referral_date": REFERRAL_DATE, "specialty": SPECIALTY}},
                headers=_etag(case),
            )
        )
        assert case["deadlines"], case
        kind = case["deadlines"][0]["kind"]
        case = _ok(
            ana.post(
                f"/cases/{case_id}/deadlines/{kind}/reschedule",
                json={"due_at": in_weeks(7), "reason": RESCHEDULE_REASON},
                headers=_etag(case),
            )
        )
        case = _ok(
            lee.post(
                f"/cases/{case_id}/messages/red_flag_reported",
                json={"data": {"progressive_motor_deficit": True}},
                headers=_etag(case),
            )
        )
        assert {t["id"] for t in case["ready_tasks"]} >= {"urgent_mri"}, case

        # Find the patient: by patient reference, in the worklist, in the timeline.
        page = _ok(ana.get("/cases", params={"patient_ref": PATIENT_REF}))
        assert [item["id"] for item in page["items"]] == [case_id]
        page = _ok(ana.get("/cases", params={"patient_ref": PATIENT_REF, "status": "active"}))
        assert page["total"] == 1
        _refused_without_echo(ana.get("/cases", params={"patient_ref": PATIENT_REF * 5}), 422)
        assert case_id in {item["case_id"] for item in ana.get("/worklist").json()["items"]}
        timeline = lee.get(f"/cases/{case_id}/timeline")
        assert timeline.status_code == 200, timeline.text
        completed = [e["step"] for e in timeline.json() if e["type"] == "task_completed"]
        assert "specialist_referral" in completed, completed
        _ok(ana.post(f"/cases/{case_id}/notes", json={"text": NOTE_TEXT}), 201)
        _refused_without_echo(
            ana.post(f"/cases/{case_id}/notes", json={"text": NOTE_TEXT + "\x00"}), 422
        )
        # The clinical record shows what was entered (to the care team, never to the log).
        record = _ok(lee.get(f"/cases/{case_id}"))["record"]
        entered = {(e["step"], e["field"]): e["value"] for e in record}
        assert entered[("specialist_referral", "specialty")] == SPECIALTY
        assert entered[("intake", "symptom_onset")] == SYMPTOM_ONSET

        case = _ok(
            ana.post(
                f"/cases/{case_id}/cancel", json={"reason": CANCEL_REASON}, headers=_etag(case)
            )
        )
        assert case["status"] == "cancelled"
        _refused_without_echo(
            ana.post(
                f"/cases/{case_id}/tasks/urgent_mri/complete",
                json={"data": {"specialty": SPECIALTY, "note": PATIENT_REF}},
                headers=_etag(case),
            ),
            409,
        )
        page = _ok(ana.get("/cases", params={"patient_ref": PATIENT_REF, "status": "cancelled"}))
        assert page["total"] == 1


def send_hostile_inputs(api: Server) -> None:
    """What the adversarial probe sent (issue 9): NUL bytes and overlong strings in ids,
    filters, bodies and claims, dates at the calendar's edges, an oversized body, a forged
    request id, patient data where an id belongs. Each is refused, none with a 500."""
    with api.client("ana", "coordinator") as ana:
        case = _ok(
            ana.post("/cases", json={"pathway": "lumbar_radiculopathy", "patient_ref": "SYN-P1"}),
            201,
        )
        refused = [
            ana.get("/cases", params={"patient_ref": f"{PROBE}123\x00"}),
            ana.get(f"/cases/{PROBE}-PATH%00"),
            ana.get(f"/cases/{PROBE}-PATH-{'9' * 40}/timeline"),
            ana.get(f"/cases/{PROBE}-PATH-1"),
            ana.get("/reminders", params={"kind": f"{PROBE}-KIND\x00"}),
            ana.get("/reminders", params={"case_id": f"{PROBE}-CASE-{'x' * 300}"}),
            ana.post(
                "/cases", json={"pathway": "lumbar_radiculopathy", "patient_ref": f"{PROBE}\x00"}
            ),
            ana.post("/cases", json={"pathway": f"{PROBE}-PW", "patient_ref": f"{PROBE}-REF"}),
            ana.post(
                "/cases",
                json={"pathway": "lumbar_radiculopathy", "patient_ref": f"{PROBE}\u200b-1"},
            ),
            ana.post(
                f"/cases/{case['id']}/tasks/{PROBE}-TASK/complete",
                json={"data": {"side": f"{PROBE}-SIDE\x00"}},
                headers={"If-Match": "*"},
            ),
            ana.post(
                f"/cases/{case['id']}/cancel",
                json={"reason": f"{PROBE}-REASON\x00"},
                headers={"If-Match": "*"},
            ),
            ana.post(
                "/cases",
                json={
                    "pathway": "lumbar_radiculopathy",
                    "patient_ref": "SYN-P2",
                    "data": {f"{PROBE}-{i}": i for i in range(2000)},
                },
            ),
            ana.post(
                "/cases",
                json={
                    "pathway": "lumbar_radiculopathy",
                    "patient_ref": "SYN-P3",
                    "data": {"pad": PROBE * 300_000},
                },
            ),
            ana.post(f"/{PROBE}-NOWHERE", json={}),
            # Values shaped like ids where ids belong: a reference typed in lower case.
            ana.get(f"/cases/{PROBE_ID}_mrn_000123"),
            ana.get(f"/cases/{PROBE_ID}_mrn_000123/timeline"),
            ana.post(
                f"/cases/{case['id']}/tasks/{PROBE_ID}_janedoe/complete",
                json={"data": {}},
                headers={"If-Match": "*"},
            ),
            ana.post(
                f"/cases/{case['id']}/messages/{PROBE_ID}_janedoe",
                json={"data": {}},
                headers={"If-Match": "*"},
            ),
            ana.get(f"/patients/{PROBE_ID}.jane.doe"),
        ]
        assert ana.get("/reminders", params={"kind": f"{PROBE_ID}_kind"}).status_code == 200
        for kind in ("referral_escalation_3_months", f"{PROBE}-KIND"):
            for due_at in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z"):
                refused.append(
                    ana.post(
                        f"/cases/{case['id']}/deadlines/{kind}/reschedule",
                        json={"due_at": due_at, "reason": f"{PROBE}-WHY"},
                        headers={"If-Match": "*"},
                    )
                )
        statuses = [r.status_code for r in refused]
        assert all(400 <= s < 500 for s in statuses), f"{list(enumerate(statuses))}"
        for forged in (f"{PROBE}-RID INFO api.access: forged line", f"{PROBE_ID}-mrn-000123"):
            response = ana.get("/worklist", headers={"X-Request-ID": forged})
            assert response.status_code == 200 and response.headers["x-request-id"] != forged
        # A generated id (a UUID, hex) is taken, so a caller can follow its request.
        response = ana.get("/worklist", headers={"X-Request-ID": "0f1e2d3c-4b5a"})
        assert response.headers["x-request-id"] == "0f1e2d3c-4b5a"
    for sub in (f"{PROBE}-SUB\x00", f"{PROBE}-LONG-" + "x" * 300):
        now = datetime.now(UTC)
        token = jwt.encode(
            {"sub": sub, "roles": ["coordinator"], "iat": now, "exp": now + timedelta(hours=1)},
            SECRET,
            "HS256",
        )
        response = httpx.get(f"{api.url}/worklist", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text


def test_no_value_entered_for_a_patient_appears_in_the_server_log(debug_server: Server) -> None:
    run_a_case(debug_server)
    send_hostile_inputs(debug_server)
    with debug_server.client() as anonymous:  # a last request: every earlier one is logged
        marker = anonymous.get("/healthz").headers["x-request-id"]
    log = debug_server.log_through(marker)

    # The log is the server's real output, at DEBUG, with every request in it.
    assert "INFO api.access: POST /cases 201 " in log, log[-3000:]
    assert "INFO api.access: GET /cases 200 " in log, log[-3000:]
    assert "INFO api.access: POST /cases 422 " in log, log[-3000:]
    assert "/reschedule 200 " in log and "/cancel 200 " in log, log[-3000:]
    assert log.count("INFO api.access: ") >= 20, log[-3000:]

    leaks = {
        value: [line for line in log.splitlines() if any(s in line for s in spellings)]
        for value, spellings in SECRETS.items()
    }
    leaks = {value: lines[:5] for value, lines in leaks.items() if lines}
    if leaks:
        pytest.fail(f"patient data in the {debug_server.kind} server log: {leaks}", pytrace=False)
