"""Cases through the HTTP API on a real server: starting them, reading them, completing their
steps, red-flag messages, deadlines, cancelling, and whole clinical paths to their ends.

The server runs on the real clock. Deadlines in the past come from clinical dates in the past
(a symptom onset 6 months ago makes the 3-month escalation fire as soon as conservative care
starts). The 6-week reassessment is reached the way a care team would bring it forward: by
rescheduling its deadline to now through the API (an audited action), never by faking time.

The helpers at the top are shared with test_access.py and test_worklist.py.
"""

from __future__ import annotations

import calendar
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server, intake
from tests.data import GOOD_PLAN, NO_RED_FLAGS

PATHWAY = "lumbar_radiculopathy"
PROBLEM = "application/problem+json"
CONSERVATIVE_DEADLINES = {
    "referral_due_2_weeks",
    "reassessment_due_6_weeks",
    "referral_escalation_3_months",
}


# -- helpers (also used by the other API test modules) ---------------------------------------


def days_ago(days: int) -> str:
    """A clinical date relative to today (never hard-coded: the server runs on the real clock)."""
    return (date.today() - timedelta(days=days)).isoformat()


def today() -> str:
    return date.today().isoformat()


def utc(text: str) -> datetime:
    """Parse an API timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def recent_intake(**overrides: Any) -> dict[str, Any]:
    """Intake for a patient whose symptoms began 10 days ago (age 44: no new-onset-after-50 flag)."""
    return intake(**{"symptom_onset": days_ago(10), "age": 44, **overrides})


def old_intake(**overrides: Any) -> dict[str, Any]:
    """Intake with symptoms 6 months old: the 3-month referral limit has already passed."""
    return intake(**{"symptom_onset": days_ago(182), "age": 44, **overrides})


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert an RFC 9457 problem with this status and a clear detail; return its body."""
    assert response.status_code == status, response.text[:600]
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and len(body["detail"].strip()) > 10, body
    return body


def etag(case: dict[str, Any]) -> str:
    return f'"{case["version"]}"'


def start(client: httpx.Client, ref: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start a case (intake completed when data is given) and return it."""
    body: dict[str, Any] = {"pathway": PATHWAY, "patient_ref": ref}
    if data is not None:
        body["data"] = data
    response = client.post("/cases", json=body)
    assert response.status_code == 201, response.text[:600]
    case: dict[str, Any] = response.json()
    return case


def complete(
    client: httpx.Client, case: dict[str, Any], task: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Complete a ready step with the version just seen; return the new case state."""
    response = client.post(
        f"/cases/{case['id']}/tasks/{task}/complete",
        json={"data": data},
        headers={"If-Match": etag(case)},
    )
    assert response.status_code == 200, response.text[:600]
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    result: dict[str, Any] = response.json()
    return result


def get_case(client: httpx.Client, case_id: str) -> dict[str, Any]:
    response = client.get(f"/cases/{case_id}")
    assert response.status_code == 200, response.text[:600]
    result: dict[str, Any] = response.json()
    return result


def timeline(client: httpx.Client, case_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/cases/{case_id}/timeline")
    assert response.status_code == 200, response.text[:600]
    events: list[dict[str, Any]] = response.json()
    return events


def ready(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The case's ready tasks by id."""
    return {t["id"]: t for t in case["ready_tasks"]}


def deadlines(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in case["deadlines"]}


def in_conservative_care(admin: httpx.Client, ref: str, data: dict[str, Any]) -> dict[str, Any]:
    """A case screened without red flags whose conservative plan is agreed."""
    case = start(admin, ref, data)
    case = complete(admin, case, "red_flag_screen", NO_RED_FLAGS)
    return complete(admin, case, "conservative_plan", GOOD_PLAN)


SHORTENED = "conservative_care_shortened"


def bring_reassessment_forward(client: httpx.Client, case: dict[str, Any]) -> dict[str, Any]:
    """Move the 6-week reassessment deadline to now, as a clinician who sees the patient early
    would; the engine fires the due timer and the reassessment becomes ready. Conservative
    care was shortened: a variance, recorded with the clinician's reason."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    response = client.post(
        f"/cases/{case['id']}/deadlines/reassessment_due_6_weeks/reschedule",
        json={"due_at": now.isoformat(), "reason": "patient seen early in clinic"},
    )
    assert response.status_code == 200, response.text[:600]
    result: dict[str, Any] = response.json()
    assert "six_week_reassessment" in ready(result), result["ready_tasks"]
    assert [(v["code"], v["step"]) for v in result["variances"]] == [(SHORTENED, "six_week_timer")]
    return result


def pitfalls(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The case's variances but the shortened conservative care the tests cause to get on."""
    return [v for v in case["variances"] if v["code"] != SHORTENED]


def count_cases(client: httpx.Client, **filters: Any) -> int:
    response = client.get("/cases", params=filters)
    assert response.status_code == 200, response.text[:600]
    total: int = response.json()["total"]
    return total


# -- starting a case -------------------------------------------------------------------------


def test_starting_a_case_completes_intake_and_returns_the_case(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "MRN-C-001", "data": recent_intake()},
        )
        assert response.status_code == 201, response.text[:600]
        case = response.json()
        assert response.headers["etag"] == f'"{case["version"]}"'
        assert case["pathway"] == PATHWAY
        assert case["patient_ref"] == "MRN-C-001"
        assert case["status"] == "active"
        assert case["end"] is None
        assert case["escalated"] is False
        assert list(ready(case)) == ["red_flag_screen"]
        screen = ready(case)["red_flag_screen"]
        assert screen["role"] == "clinician"
        assert screen["urgent"] is False
        assert {f["id"] for f in screen["form"]} == set(NO_RED_FLAGS)
        assert all(f["type"] == "boolean" and f["required"] for f in screen["form"])
        assert screen["evidence"]["source"] and screen["evidence"]["quote"]
        events = timeline(ana, case["id"])
        completed = [(e["step"], e["actor"]) for e in events if e["type"] == "task_completed"]
        assert completed == [("intake", "ana")]
        assert get_case(ana, case["id"])["version"] == case["version"]


def test_a_case_started_without_data_waits_for_the_coordinators_intake(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "MRN-C-002")
        assert list(ready(case)) == ["intake"]
        form = {f["id"]: f for f in ready(case)["intake"]["form"]}
        assert ready(case)["intake"]["role"] == "coordinator"
        assert form["symptom_onset"]["type"] == "date" and form["symptom_onset"]["not_future"]
        assert (form["age"]["min"], form["age"]["max"]) == (18, 120)
        # The patient reference comes from the case: intake need not repeat it.
        case = complete(ana, case, "intake", recent_intake())
        assert list(ready(case)) == ["red_flag_screen"]
        assert case["patient_ref"] == "MRN-C-002"


def test_a_retry_with_the_same_idempotency_key_returns_the_same_case(api: Server) -> None:
    body = {"pathway": PATHWAY, "patient_ref": "MRN-C-003", "data": recent_intake()}
    key = {"Idempotency-Key": "intake-form-3f1c"}
    with api.client("ana", "coordinator") as ana:
        first = ana.post("/cases", json=body, headers=key)
        second = ana.post("/cases", json=body, headers=key)
        assert first.status_code == 201, first.text
        assert second.status_code == 201, second.text
        assert second.json()["id"] == first.json()["id"]
        assert second.json()["version"] == first.json()["version"]
        assert count_cases(ana, patient_ref="MRN-C-003") == 1
        started = [e for e in timeline(ana, first.json()["id"]) if e["type"] == "case_started"]
        assert len(started) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(api: Server) -> None:
    key = {"Idempotency-Key": "intake-form-77aa"}
    with api.client("ana", "coordinator") as ana:
        first = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "MRN-C-004", "data": recent_intake()},
            headers=key,
        )
        assert first.status_code == 201, first.text
        reused = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "MRN-C-005", "data": recent_intake()},
            headers=key,
        )
        body = problem(reused, 422)
        assert "intake-form-77aa" in body["detail"]
        assert count_cases(ana, patient_ref="MRN-C-005") == 0
        assert count_cases(ana) == 1


def test_a_second_active_case_for_the_patient_is_refused_naming_the_first(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        first = start(ana, "MRN-C-006", recent_intake())
        again = ana.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "MRN-C-006", "data": recent_intake()},
        )
        body = problem(again, 409)
        assert body["existing_case_id"] == first["id"]
        assert first["id"] in body["detail"]
        assert count_cases(ana, patient_ref="MRN-C-006") == 1
        # Once the first case is cancelled, the patient may start again.
        cancelled = ana.post(f"/cases/{first['id']}/cancel", json={"reason": "entered twice"})
        assert cancelled.status_code == 200, cancelled.text
        second = start(ana, "MRN-C-006", recent_intake())
        assert second["id"] != first["id"]
        assert count_cases(ana, patient_ref="MRN-C-006", status="active") == 1


def test_simultaneous_starts_for_one_patient_make_one_case(api: Server) -> None:
    body = {"pathway": PATHWAY, "patient_ref": "MRN-C-007", "data": recent_intake()}
    responses: list[httpx.Response] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        with api.client("ana", "coordinator") as ana:
            barrier.wait()
            responses.append(ana.post("/cases", json=body))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code != 201):
        assert problem(refused, 409)
    with api.client("ana", "coordinator") as ana:
        assert count_cases(ana, patient_ref="MRN-C-007") == 1


def test_an_unknown_pathway_is_404(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases", json={"pathway": "lumbar_stenosis", "patient_ref": "MRN-C-008"}
        )
        body = problem(response, 404)
        assert "lumbar_stenosis" in body["detail"]
        assert count_cases(ana) == 0


def test_refused_intake_lists_every_field_error_and_starts_nothing(api: Server) -> None:
    in_two_days = (date.today() + timedelta(days=2)).isoformat()
    data = {
        "symptom_onset": in_two_days,  # in the future
        "leg_pain_nrs": "seven",  # wrong type
        "disabling_pain": False,
        "age": 12,  # out of range (18-120)
        "smoker": True,  # not a field
        # "side" missing: required
    }
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": "MRN-C-009", "data": data}
        )
        body = problem(response, 422)
        errors = {e["field"]: e["message"] for e in body["errors"]}
        assert set(errors) == {"symptom_onset", "leg_pain_nrs", "age", "smoker", "side"}, errors
        assert "future" in errors["symptom_onset"]
        assert "whole number" in errors["leg_pain_nrs"]
        assert "18" in errors["age"]
        assert "not a field" in errors["smoker"]
        assert "required" in errors["side"]
        for field in errors:
            assert field in body["detail"]
        assert count_cases(ana, patient_ref="MRN-C-009") == 0


def test_intake_cannot_name_another_patient_than_the_case(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases",
            json={
                "pathway": PATHWAY,
                "patient_ref": "MRN-C-010",
                "data": recent_intake(patient_ref="MRN-C-999"),
            },
        )
        body = problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["patient_ref"]
        assert count_cases(ana) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pathway": PATHWAY}, "patient_ref"),
        ({"pathway": PATHWAY, "patient_ref": ""}, "patient_ref"),
        ({"pathway": PATHWAY, "patient_ref": "MRN-C-011", "priority": "high"}, "priority"),
        ({"pathway": PATHWAY, "patient_ref": "MRN-C-011", "data": ["left"]}, "data"),
    ],
    ids=["no-patient", "empty-patient", "unknown-field", "data-not-object"],
)
def test_a_malformed_start_request_is_422_naming_the_field(
    api: Server, body: dict[str, Any], field: str
) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post("/cases", json=body)
        refused = problem(response, 422)
        assert field in {e["field"] for e in refused["errors"]}, refused
        assert count_cases(ana) == 0


# -- reading cases ---------------------------------------------------------------------------


def test_a_case_shows_its_ready_tasks_deadlines_and_version(api: Server) -> None:
    with api.client("root", "admin") as root, api.client("ana", "coordinator") as ana:
        started = datetime.now(UTC)
        case = in_conservative_care(root, "MRN-C-020", recent_intake(disabling_pain=True))
        response = ana.get(f"/cases/{case['id']}")
        assert response.status_code == 200, response.text[:600]
        shown = response.json()
        assert response.headers["etag"] == f'"{shown["version"]}"'
        assert shown["version"] == case["version"] == 3
        referral = ready(shown)["specialist_referral"]
        assert referral["name"] and referral["role"] == "coordinator"
        assert {f["id"] for f in referral["form"]} == {"referral_date", "specialty"}
        assert referral["evidence"]["quote"] and "2 weeks" in referral["evidence"]["quote"]
        assert referral["urgent"] is False and referral["overdue"] is False
        # Disabling pain: the referral is due 14 days after conservative care starts.
        due = utc(referral["due_at"]) - started
        assert timedelta(days=13, hours=23) < due < timedelta(days=14, hours=1)
        found = deadlines(shown)
        assert set(found) == CONSERVATIVE_DEADLINES
        assert all(d["status"] == "waiting" for d in found.values())
        six_weeks = utc(found["reassessment_due_6_weeks"]["due_at"]) - started
        assert timedelta(weeks=6) - timedelta(hours=1) < six_weeks < timedelta(weeks=6, hours=1)
        # The 3-month limit is a clinical date: symptom onset + 3 months, at midnight UTC.
        limit = utc(found["referral_escalation_3_months"]["due_at"])
        assert (limit.hour, limit.minute) == (0, 0)
        assert timedelta(days=78) < limit.date() - date.today() < timedelta(days=84)
        assert shown["reminders"] == [] and shown["variances"] == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/cases/{id}", {}),
        ("GET", "/cases/{id}/timeline", {}),
        ("POST", "/cases/{id}/tasks/red_flag_screen/complete", {"headers": {"If-Match": '"1"'}}),
        ("POST", "/cases/{id}/messages/red_flag_reported", {"json": {"data": {"fever": True}}}),
        (
            "POST",
            "/cases/{id}/deadlines/reassessment_due_6_weeks/reschedule",
            {"json": {"due_at": "2030-01-01T00:00:00+00:00", "reason": "moved"}},
        ),
        ("POST", "/cases/{id}/cancel", {"json": {"reason": "duplicate"}}),
    ],
    ids=["case", "timeline", "complete", "message", "reschedule", "cancel"],
)
def test_an_unknown_case_is_404(
    api: Server, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    missing = "3f0c2d4e-0000-4000-8000-000000000404"
    kwargs = {"json": {"data": NO_RED_FLAGS}, **kwargs}
    with api.client("root", "admin") as root:
        response = root.request(method, path.format(id=missing), **kwargs)
        body = problem(response, 404)
        assert missing in body["detail"]


def test_the_timeline_says_who_did_what_when_and_why(api: Server) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-021", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        events = timeline(ana, case["id"])
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert events[0]["type"] == "case_started" and events[0]["actor"] == "ana"
    completed = [e for e in events if e["type"] == "task_completed"]
    assert [(e["step"], e["actor"]) for e in completed] == [
        ("intake", "ana"),
        ("red_flag_screen", "lee"),
        ("conservative_plan", "lee"),
    ]
    times = [utc(e["at"]) for e in events]
    assert times == sorted(times)
    assert all(before <= t <= after for t in times)
    for event in completed:
        assert event["evidence"]["rationale"], event
        assert event["evidence"]["source"], event
    plan = completed[-1]
    assert "bed_rest" in plan["detail"]["fields"]
    assert {e["step"] for e in events if e["type"] == "task_ready"} >= {
        "intake",
        "red_flag_screen",
        "conservative_plan",
    }


# -- listing cases ---------------------------------------------------------------------------


def test_cases_can_be_found_by_status_patient_overdue_and_escalation(api: Server) -> None:
    with api.client("root", "admin") as root:
        late = in_conservative_care(root, "MRN-C-030", old_intake())
        fresh = start(root, "MRN-C-031", recent_intake())
        other = start(root, "MRN-C-032", recent_intake())
        gone = start(root, "MRN-C-033", recent_intake())
        assert root.post(f"/cases/{gone['id']}/cancel", json={"reason": "moved"}).is_success

        def ids(**filters: Any) -> set[str]:
            response = root.get("/cases", params=filters)
            assert response.status_code == 200, response.text[:600]
            page = response.json()
            assert page["total"] == len(page["items"])
            return {item["id"] for item in page["items"]}

        assert ids() == {late["id"], fresh["id"], other["id"], gone["id"]}
        assert ids(status="active") == {late["id"], fresh["id"], other["id"]}
        assert ids(status="cancelled") == {gone["id"]}
        assert ids(status="ended") == set()
        assert ids(patient_ref="MRN-C-031") == {fresh["id"]}
        assert ids(overdue="true") == {late["id"]}
        assert ids(escalated="true") == {late["id"]}
        assert ids(escalated="false", status="active") == {fresh["id"], other["id"]}
        assert ids(overdue="false", patient_ref="MRN-C-030") == set()
        # The patient reference in a query string never reaches the server log.
        searched = root.get("/cases", params={"patient_ref": "MRN-C-031"})
        log = api.log_through(searched.headers["x-request-id"])
        assert "MRN-C-031" not in log
        [summary] = root.get("/cases", params={"overdue": "true"}).json()["items"]
        assert summary["escalated"] is True and summary["overdue"] is True
        assert summary["patient_ref"] == "MRN-C-030" and summary["status"] == "active"


def test_case_lists_are_paged_with_a_total(api: Server) -> None:
    with api.client("root", "admin") as root:
        made = {start(root, f"MRN-C-04{n}", recent_intake())["id"] for n in range(5)}
        seen: list[str] = []
        for offset in (0, 2, 4):
            response = root.get("/cases", params={"limit": 2, "offset": offset})
            assert response.status_code == 200, response.text[:600]
            page = response.json()
            assert (page["total"], page["limit"], page["offset"]) == (5, 2, offset)
            assert len(page["items"]) == (2 if offset < 4 else 1)
            seen += [item["id"] for item in page["items"]]
        assert len(seen) == 5 and set(seen) == made
        beyond = root.get("/cases", params={"limit": 2, "offset": 10}).json()
        assert beyond["items"] == [] and beyond["total"] == 5


@pytest.mark.parametrize(
    "params",
    [{"status": "open"}, {"limit": 0}, {"limit": 1000}, {"offset": -1}, {"overdue": "maybe"}],
    ids=["status", "limit-0", "limit-1000", "offset", "overdue"],
)
def test_bad_list_filters_are_422(api: Server, params: dict[str, Any]) -> None:
    with api.client("ana", "coordinator") as ana:
        body = problem(ana.get("/cases", params=params), 422)
        assert any(next(iter(params)) in e["field"] for e in body["errors"]), body


@pytest.mark.parametrize(
    ("method", "path", "params", "unknown"),
    [
        ("GET", "/cases", {"statsu": "active"}, "statsu"),
        ("GET", "/cases", {"status": "active", "patient": "SYN-1"}, "patient"),
        ("GET", "/worklist", {"rol": "clinician"}, "rol"),
        ("GET", "/reminders", {"case": "x", "kind": "y"}, "case"),
        ("POST", "/cases", {"dry_run": "true"}, "dry_run"),
    ],
)
def test_a_query_parameter_a_route_does_not_take_is_422_naming_it(
    api: Server, method: str, path: str, params: dict[str, str], unknown: str
) -> None:
    """A mistyped filter must not quietly return everything (or, on a change, be ignored)."""
    with api.client("ana", "coordinator") as ana:
        ana.post("/cases", json={"pathway": PATHWAY, "patient_ref": "SYN-Q"})
        body = {"pathway": PATHWAY, "patient_ref": "SYN-Q2"} if method == "POST" else None
        response = ana.request(method, path, params=params, json=body)
        errors = problem(response, 422)["errors"]
        assert [e["field"] for e in errors] == [f"query.{unknown}"], errors
        assert "is not a parameter" in errors[0]["message"]
        assert ana.get("/cases").json()["total"] == 1  # the refused POST started nothing


# -- completing steps ------------------------------------------------------------------------


def test_a_stale_version_is_409_with_the_current_version_and_changes_nothing(
    api: Server,
) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-050", recent_intake())
        stale = dict(case)
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        response = lee.post(
            f"/cases/{case['id']}/tasks/conservative_plan/complete",
            json={"data": GOOD_PLAN},
            headers={"If-Match": etag(stale)},
        )
        body = problem(response, 409)
        assert body["current_version"] == case["version"]
        assert str(case["version"]) in body["detail"]
        after = get_case(lee, case["id"])
        assert after["version"] == case["version"]
        assert list(ready(after)) == ["conservative_plan"]


def test_completing_a_step_needs_if_match(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-051", recent_intake())
        response = lee.post(
            f"/cases/{case['id']}/tasks/red_flag_screen/complete", json={"data": NO_RED_FLAGS}
        )
        body = problem(response, 428)
        assert "If-Match" in body["detail"]
        assert get_case(lee, case["id"])["version"] == case["version"]


@pytest.mark.parametrize("value", ["version-one", '"1"x', "1.0", '"-1"'])
def test_a_garbage_if_match_is_400(api: Server, value: str) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-052", recent_intake())
        response = lee.post(
            f"/cases/{case['id']}/tasks/red_flag_screen/complete",
            json={"data": NO_RED_FLAGS},
            headers={"If-Match": value},
        )
        body = problem(response, 400)
        assert "If-Match" in body["detail"]
        assert get_case(lee, case["id"])["version"] == case["version"]


def test_a_step_that_is_not_ready_is_409_listing_the_ready_ones(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-053", recent_intake())
        for task in ("conservative_plan", "six_week_reassessment", "no_such_step"):
            response = lee.post(
                f"/cases/{case['id']}/tasks/{task}/complete",
                json={"data": GOOD_PLAN},
                headers={"If-Match": etag(case)},
            )
            body = problem(response, 409)
            assert body["ready_tasks"] == ["red_flag_screen"]
            assert task in body["detail"] and "red_flag_screen" in body["detail"]
        assert get_case(lee, case["id"])["version"] == case["version"]


def test_refused_step_data_lists_every_field_error_and_changes_nothing(api: Server) -> None:
    data = {key: value for key, value in NO_RED_FLAGS.items() if key != "saddle_anesthesia"}
    data["fever"] = "no"  # wrong type
    data["back_pain"] = True  # not a field
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-054", recent_intake())
        response = lee.post(
            f"/cases/{case['id']}/tasks/red_flag_screen/complete",
            json={"data": data},
            headers={"If-Match": etag(case)},
        )
        body = problem(response, 422)
        errors = {e["field"]: e["message"] for e in body["errors"]}
        assert set(errors) == {"saddle_anesthesia", "fever", "back_pain"}, errors
        assert "required" in errors["saddle_anesthesia"]
        assert "true or false" in errors["fever"]
        assert "not a field" in errors["back_pain"]
        after = get_case(lee, case["id"])
        assert after["version"] == case["version"]
        assert list(ready(after)) == ["red_flag_screen"]
        assert not [
            e
            for e in timeline(lee, case["id"])
            if e["step"] == "red_flag_screen" and e["type"] == "task_completed"
        ]


def test_referral_data_is_checked_for_future_dates_and_lengths(api: Server) -> None:
    with api.client("root", "admin") as root, api.client("ana", "coordinator") as ana:
        case = in_conservative_care(root, "MRN-C-055", recent_intake(disabling_pain=True))
        response = ana.post(
            f"/cases/{case['id']}/tasks/specialist_referral/complete",
            json={
                "data": {
                    "referral_date": (date.today() + timedelta(days=3)).isoformat(),
                    "specialty": "s" * 101,
                }
            },
            headers={"If-Match": etag(case)},
        )
        body = problem(response, 422)
        errors = {e["field"]: e["message"] for e in body["errors"]}
        assert set(errors) == {"referral_date", "specialty"}, errors
        assert "future" in errors["referral_date"]
        assert "100" in errors["specialty"]
        intake_case = start(ana, "MRN-C-056")
        response = ana.post(
            f"/cases/{intake_case['id']}/tasks/intake/complete",
            json={"data": recent_intake(leg_pain_nrs=11, side="both")},
            headers={"If-Match": etag(intake_case)},
        )
        errors = {e["field"]: e["message"] for e in problem(response, 422)["errors"]}
        assert set(errors) == {"leg_pain_nrs", "side"}, errors
        assert "10" in errors["leg_pain_nrs"]
        assert "left" in errors["side"]


def test_two_clinicians_completing_the_same_step_at_once_cannot_both_win(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "MRN-C-057", recent_intake())
    responses: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def screen(sub: str) -> None:
        with api.client(sub, "clinician") as client:
            barrier.wait()
            responses.append(
                client.post(
                    f"/cases/{case['id']}/tasks/red_flag_screen/complete",
                    json={"data": NO_RED_FLAGS},
                    headers={"If-Match": etag(case)},
                )
            )

    threads = [threading.Thread(target=screen, args=(sub,)) for sub in ("lee", "kim")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    problem(next(r for r in responses if r.status_code == 409), 409)
    with api.client("ana", "coordinator") as ana:
        events = timeline(ana, case["id"])
        screens = [
            e for e in events if e["type"] == "task_completed" and e["step"] == "red_flag_screen"
        ]
        assert len(screens) == 1
        assert get_case(ana, case["id"])["version"] == case["version"] + 1


# -- red flags reported during conservative care ---------------------------------------------


def test_a_reported_red_flag_moves_the_case_to_the_urgent_branch(api: Server) -> None:
    with api.client("root", "admin") as root, api.client("lee", "clinician") as lee:
        case = in_conservative_care(root, "MRN-C-060", recent_intake(disabling_pain=True))
        assert set(deadlines(case)) == CONSERVATIVE_DEADLINES
        reported_at = datetime.now(UTC)
        response = lee.post(
            f"/cases/{case['id']}/messages/red_flag_reported",
            json={"data": {"progressive_motor_deficit": True}},
        )
        assert response.status_code == 200, response.text[:600]
        urgent = response.json()
        assert response.headers["etag"] == f'"{urgent["version"]}"'
        tasks = ready(urgent)
        assert set(tasks) == {"urgent_mri", "urgent_specialist_referral"}
        assert all(t["urgent"] for t in tasks.values())
        assert tasks["urgent_mri"]["role"] == "clinician"
        assert tasks["urgent_specialist_referral"]["role"] == "coordinator"
        # Conservative deadlines are gone; the urgent branch keeps its own (24 h: not cauda equina).
        assert set(deadlines(urgent)) == {"urgent_action_overdue"}
        due = utc(deadlines(urgent)["urgent_action_overdue"]["due_at"]) - reported_at
        assert timedelta(hours=23, minutes=59) < due < timedelta(hours=24, minutes=1)
        assert get_case(root, case["id"]) == urgent
        message = next(e for e in timeline(root, case["id"]) if e["type"] == "message")
        assert message["actor"] == "lee"
        assert message["detail"]["reported"] == ["progressive_motor_deficit"]
        assert message["evidence"]["quote"]
        # A further report inside the urgent branch is recorded; as urgent as the branch
        # already is, it starts no other clock.
        again = lee.post(
            f"/cases/{case['id']}/messages/red_flag_reported", json={"data": {"fever": True}}
        )
        assert again.status_code == 200, again.text
        assert set(deadlines(again.json())) == {"urgent_action_overdue"}
        reports = [e for e in timeline(root, case["id"]) if e["type"] == "message"]
        assert [r["detail"]["reported"] for r in reports] == [
            ["progressive_motor_deficit"],
            ["fever"],
        ]


def test_a_red_flag_reported_during_the_screen_counts_when_the_screen_is_done(
    api: Server,
) -> None:
    """The patient calls the coordinator before the clinician has screened: the finding is
    merged into the screen's answers (it cannot be cleared there)."""
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-061", recent_intake())
        response = ana.post(
            f"/cases/{case['id']}/messages/red_flag_reported",
            json={"data": {"progressive_motor_deficit": True}},
        )
        assert response.status_code == 200, response.text
        assert list(ready(response.json())) == ["red_flag_screen"]
        screened = complete(lee, response.json(), "red_flag_screen", NO_RED_FLAGS)
        events = timeline(ana, case["id"])
    assert screened["decisions"][0]["outputs"]["red_flag"] == "progressive_deficit"
    assert set(ready(screened)) == {"urgent_mri", "urgent_specialist_referral"}
    report = next(e for e in events if e["type"] == "message")
    assert (report["actor"], report["detail"]["merged_into"]) == ("ana", "red_flag_screen")
    done = next(
        e for e in events if e["type"] == "task_completed" and e["step"] == "red_flag_screen"
    )
    assert done["detail"]["from_report"] == ["progressive_motor_deficit"]
    assert done["detail"]["values"]["progressive_motor_deficit"] is True


def test_a_red_flag_cannot_be_reported_once_the_case_has_ended(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "MRN-C-062", recent_intake())
        cancelled = ana.post(f"/cases/{case['id']}/cancel", json={"reason": "duplicate"})
        assert cancelled.status_code == 200
        response = ana.post(
            f"/cases/{case['id']}/messages/red_flag_reported", json={"data": {"fever": True}}
        )
    problem(response, 409)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "data"),
        ({"fever": False}, "data"),
        ({"fever": "yes"}, "fever"),
        ({"rash": True}, "rash"),
    ],
    ids=["empty", "nothing-true", "wrong-type", "unknown-field"],
)
def test_a_red_flag_report_must_name_a_finding(
    api: Server, data: dict[str, Any], field: str
) -> None:
    with api.client("root", "admin") as root, api.client("lee", "clinician") as lee:
        case = in_conservative_care(root, "MRN-C-062", recent_intake())
        response = lee.post(f"/cases/{case['id']}/messages/red_flag_reported", json={"data": data})
        body = problem(response, 422)
        assert field in {e["field"] for e in body["errors"]}, body
        after = get_case(lee, case["id"])
        assert after["version"] == case["version"]
        assert list(ready(after)) == list(ready(case))


def test_a_red_flag_cancels_the_pending_conservative_reminders(api: Server) -> None:
    """Spec, step 9: a red flag interrupts conservative care; "pending conservative timers and
    reminders are cancelled" (as cancelling a case cancels its pending reminders)."""
    with api.client("root", "admin") as root, api.client("lee", "clinician") as lee:
        case = in_conservative_care(root, "MRN-C-063", old_intake())
        assert case["escalated"] is True
        [escalation] = case["reminders"]
        assert escalation["kind"] == "referral_escalation_3_months"
        assert escalation["status"] == "pending"
        response = lee.post(
            f"/cases/{case['id']}/messages/red_flag_reported",
            json={"data": {"history_of_cancer": True}},
        )
        assert response.status_code == 200, response.text[:600]
        urgent = response.json()
        assert set(ready(urgent)) == {"urgent_mri", "urgent_specialist_referral"}
        statuses = {r["kind"]: r["status"] for r in urgent["reminders"]}
        assert statuses == {"referral_escalation_3_months": "cancelled"}, urgent["reminders"]


# -- deadlines -------------------------------------------------------------------------------


def test_rescheduling_a_deadline_moves_it_and_is_audited(api: Server) -> None:
    with api.client("root", "admin") as root, api.client("ana", "coordinator") as ana:
        case = in_conservative_care(root, "MRN-C-070", recent_intake(disabling_pain=True))
        previous = deadlines(case)["referral_due_2_weeks"]["due_at"]
        new_due = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
        response = ana.post(
            f"/cases/{case['id']}/deadlines/referral_due_2_weeks/reschedule",
            json={"due_at": new_due.isoformat(), "reason": "patient abroad until next month"},
        )
        assert response.status_code == 200, response.text[:600]
        moved = get_case(ana, case["id"])
        assert moved["version"] == case["version"] + 1
        assert utc(deadlines(moved)["referral_due_2_weeks"]["due_at"]) == new_due
        assert utc(ready(moved)["specialist_referral"]["due_at"]) == new_due
        others = {
            k: v["due_at"] for k, v in deadlines(moved).items() if k != "referral_due_2_weeks"
        }
        assert others == {
            k: v["due_at"] for k, v in deadlines(case).items() if k != "referral_due_2_weeks"
        }
        [event] = [e for e in timeline(ana, case["id"]) if e["type"] == "deadline_rescheduled"]
        assert event["actor"] == "ana"
        assert event["detail"]["reason"] == "patient abroad until next month"
        assert event["detail"]["deadline"] == "referral_due_2_weeks"
        assert utc(event["detail"]["due_at"]) == new_due
        assert utc(event["detail"]["previous_due_at"]) == utc(previous)


@pytest.mark.parametrize(
    "body",
    [{}, {"reason": ""}, {"reason": "   "}],
    ids=["no-reason", "empty-reason", "blank-reason"],
)
def test_rescheduling_needs_a_reason(api: Server, body: dict[str, Any]) -> None:
    with api.client("root", "admin") as root, api.client("ana", "coordinator") as ana:
        case = in_conservative_care(root, "MRN-C-071", recent_intake())
        due = (datetime.now(UTC) + timedelta(days=60)).isoformat()
        response = ana.post(
            f"/cases/{case['id']}/deadlines/reassessment_due_6_weeks/reschedule",
            json={"due_at": due, **body},
        )
        refused = problem(response, 422)
        assert "reason" in {e["field"] for e in refused["errors"]}
        after = get_case(ana, case["id"])
        assert after["version"] == case["version"]
        assert after["deadlines"] == case["deadlines"]


def test_rescheduling_needs_a_due_time_with_a_timezone(api: Server) -> None:
    with api.client("root", "admin") as root:
        case = in_conservative_care(root, "MRN-C-072", recent_intake())
        response = root.post(
            f"/cases/{case['id']}/deadlines/reassessment_due_6_weeks/reschedule",
            json={"due_at": "2030-01-01T09:00:00", "reason": "clinic moved"},
        )
        body = problem(response, 422)
        assert "due_at" in {e["field"] for e in body["errors"]}
        assert get_case(root, case["id"])["deadlines"] == case["deadlines"]


@pytest.mark.parametrize(
    "due_at",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z", "2200-01-01T00:00:00Z"],
    ids=["year-9999-west-of-utc", "year-1", "year-2200"],
)
def test_rescheduling_outside_the_clinical_calendar_is_422(api: Server, due_at: str) -> None:
    """9999-12-31 west of UTC overflowed into a 500; year 1 was taken and fired at once."""
    with api.client("root", "admin") as root:
        case = in_conservative_care(root, "MRN-C-073", recent_intake())
        response = root.post(
            f"/cases/{case['id']}/deadlines/reassessment_due_6_weeks/reschedule",
            json={"due_at": due_at, "reason": "typed in a hurry"},
        )
        body = problem(response, 422)
        [error] = [e for e in body["errors"] if e["field"] == "due_at"]
        assert "between 1900-01-01 and 2199-12-31" in error["message"]
        assert get_case(root, case["id"])["deadlines"] == case["deadlines"]


def test_a_clinical_date_outside_the_calendar_is_422(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases",
            json={
                "pathway": PATHWAY,
                "patient_ref": "MRN-C-074",
                "data": recent_intake(symptom_onset="0001-01-01"),
            },
        )
        body = problem(response, 422)
        [error] = [e for e in body["errors"] if e["field"] == "symptom_onset"]
        assert "between 1900-01-01 and 2199-12-31" in error["message"]
        assert count_cases(ana) == 0


def test_rescheduling_an_unknown_deadline_is_404_listing_the_waiting_ones(api: Server) -> None:
    with api.client("root", "admin") as root:
        case = in_conservative_care(root, "MRN-C-073", recent_intake(disabling_pain=True))
        response = root.post(
            f"/cases/{case['id']}/deadlines/referral_due_3_weeks/reschedule",
            json={"due_at": "2030-01-01T09:00:00+00:00", "reason": "clinic moved"},
        )
        body = problem(response, 404)
        assert "referral_due_3_weeks" in body["detail"]
        for kind in CONSERVATIVE_DEADLINES:
            assert kind in body["detail"]
        assert get_case(root, case["id"])["version"] == case["version"]


# -- cancelling ------------------------------------------------------------------------------


def test_cancelling_a_case_stops_it(api: Server) -> None:
    with api.client("root", "admin") as root, api.client("ana", "coordinator") as ana:
        case = in_conservative_care(root, "MRN-C-080", old_intake())
        assert case["reminders"] and case["deadlines"] and case["ready_tasks"]
        response = ana.post(f"/cases/{case['id']}/cancel", json={"reason": "patient moved away"})
        assert response.status_code == 200, response.text[:600]
        cancelled = get_case(ana, case["id"])
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancel_reason"] == "patient moved away"
        assert cancelled["deadlines"] == [] and cancelled["ready_tasks"] == []
        assert {r["status"] for r in cancelled["reminders"]} == {"cancelled"}
        event = timeline(ana, case["id"])[-1]
        assert event["type"] == "case_cancelled"
        assert (event["actor"], event["detail"]["reason"]) == ("ana", "patient moved away")
        # Nothing more can be done on it.
        refused = [
            ana.post(
                f"/cases/{case['id']}/tasks/specialist_referral/complete",
                json={"data": {"referral_date": today(), "specialty": "spine surgery"}},
                headers={"If-Match": etag(cancelled)},
            ),
            root.post(
                f"/cases/{case['id']}/messages/red_flag_reported", json={"data": {"fever": True}}
            ),
            ana.post(f"/cases/{case['id']}/cancel", json={"reason": "again"}),
        ]
        for response in refused:
            assert "cancelled" in problem(response, 409)["detail"]
        assert get_case(ana, case["id"])["version"] == cancelled["version"]


def test_cancelling_needs_a_reason(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        case = start(ana, "MRN-C-081", recent_intake())
        for body in ({}, {"reason": ""}, {"reason": "  "}):
            refused = problem(ana.post(f"/cases/{case['id']}/cancel", json=body), 422)
            assert "reason" in {e["field"] for e in refused["errors"]}
        assert get_case(ana, case["id"])["status"] == "active"


# -- whole clinical paths --------------------------------------------------------------------


def test_red_flag_at_screening_runs_the_urgent_branch_to_its_end(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-P-001", recent_intake(disabling_pain=True))
        screened_at = datetime.now(UTC)
        case = complete(lee, case, "red_flag_screen", {**NO_RED_FLAGS, "saddle_anesthesia": True})
        assert set(ready(case)) == {"urgent_mri", "urgent_specialist_referral"}
        assert all(t["urgent"] and not t["overdue"] for t in case["ready_tasks"])
        # Cauda equina is an emergency: urgent action is due within 4 hours, no conservative care.
        assert set(deadlines(case)) == {"urgent_action_overdue"}
        due = utc(deadlines(case)["urgent_action_overdue"]["due_at"]) - screened_at
        assert timedelta(hours=3, minutes=59) < due < timedelta(hours=4, minutes=1)
        case = complete(lee, case, "urgent_mri", {"mri_requested_on": today()})
        assert list(ready(case)) == ["urgent_specialist_referral"]
        case = complete(
            ana,
            case,
            "urgent_specialist_referral",
            {"urgent_referral_date": today(), "urgent_specialty": "spinal surgery"},
        )
        assert (case["status"], case["end"]) == ("ended", "urgent_pathway")
        assert case["ready_tasks"] == [] and case["deadlines"] == []
        assert get_case(ana, case["id"])["status"] == "ended"
        events = timeline(ana, case["id"])
        assert (events[-1]["type"], events[-1]["detail"]["end"]) == ("case_ended", "urgent_pathway")
        assert not any(e["step"] == "conservative_plan" for e in events)
        # An ended case takes no more steps.
        again = lee.post(
            f"/cases/{case['id']}/tasks/urgent_mri/complete",
            json={"data": {"mri_requested_on": today()}},
            headers={"If-Match": etag(case)},
        )
        assert "ended" in problem(again, 409)["detail"]


def test_red_flag_reported_mid_way_ends_on_the_urgent_pathway(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-P-002", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        response = lee.post(
            f"/cases/{case['id']}/messages/red_flag_reported",
            json={"data": {"fever": True, "immunosuppression": True}},
        )
        assert response.status_code == 200, response.text[:600]
        case = response.json()
        case = complete(
            ana,
            case,
            "urgent_specialist_referral",
            {"urgent_referral_date": today(), "urgent_specialty": "infectious diseases"},
        )
        case = complete(lee, case, "urgent_mri", {"mri_requested_on": today()})
        assert (case["status"], case["end"]) == ("ended", "urgent_pathway")
        events = timeline(lee, case["id"])
        message = next(e for e in events if e["type"] == "message")
        assert message["detail"]["reported"] == ["fever", "immunosuppression"]
        assert set(message["detail"].get("cancelled_timers", [])) >= {"six_week_timer"}


def test_disabling_pain_is_referred_within_two_weeks_then_referred_at_reassessment(
    api: Server,
) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-P-003", recent_intake(disabling_pain=True, leg_pain_nrs=8))
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        assert list(ready(case)) == ["conservative_plan"]
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        # The referral runs beside conservative care from its first day.
        assert list(ready(case)) == ["specialist_referral"]
        case = complete(
            ana, case, "specialist_referral", {"referral_date": today(), "specialty": "spine"}
        )
        assert case["status"] == "active" and case["ready_tasks"] == []
        assert set(deadlines(case)) == {"reassessment_due_6_weeks"}
        assert case["escalated"] is False and case["reminders"] == []
        # At the reassessment: not improved, not a procedure candidate -> referred (once).
        case = bring_reassessment_forward(lee, case)
        assert list(ready(case)) == ["six_week_reassessment"]
        case = complete(
            lee,
            case,
            "six_week_reassessment",
            {
                "improved": False,
                "function_limited": True,
                "procedure_candidate": False,
                "patient_choice": "conservative",
            },
        )
        assert (case["status"], case["end"]) == ("ended", "referred")
        assert pitfalls(case) == []
        events = timeline(ana, case["id"])
        referrals = [
            e
            for e in events
            if e["step"] == "specialist_referral" and e["type"] == "task_completed"
        ]
        assert len(referrals) == 1 and referrals[0]["actor"] == "ana"
        reminder = next(e for e in events if e["type"] == "reminder")
        assert reminder["detail"]["reminder"] == "reassessment_due_6_weeks"


def test_not_improved_procedure_candidate_is_imaged_referred_and_decided(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-P-004", recent_intake(disabling_pain=False))
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        # No disabling pain: no referral yet, only the clock.
        assert case["ready_tasks"] == []
        assert set(deadlines(case)) == {"reassessment_due_6_weeks", "referral_escalation_3_months"}
        case = bring_reassessment_forward(lee, case)
        case = complete(
            lee,
            case,
            "six_week_reassessment",
            {
                "improved": False,
                "function_limited": True,
                "procedure_candidate": True,
                "patient_choice": "esi",
            },
        )
        assert list(ready(case)) == ["mri_lumbar_spine"]
        case = complete(
            lee, case, "mri_lumbar_spine", {"performed": True, "nerve_root_compression": False}
        )
        assert list(ready(case)) == ["specialist_referral"]
        case = complete(
            ana, case, "specialist_referral", {"referral_date": today(), "specialty": "pain"}
        )
        assert list(ready(case)) == ["treatment_decision"]
        case = complete(lee, case, "treatment_decision", {"procedure": "esi_image_guided"})
        assert (case["status"], case["end"]) == ("ended", "referred")
        # ESI without imaging that shows correlating compression is a recorded variance.
        [variance] = pitfalls(case)
        assert variance["code"] == "invasive_without_imaging_correlation"
        assert variance["step"] == "treatment_decision"
        assert variance["rule"] and variance["evidence"]["source"]
        events = timeline(lee, case["id"])
        assert any(
            e["type"] == "variance" and e["detail"]["variance"] == variance["code"] for e in events
        )


def test_improved_at_reassessment_is_discharged_resolved(api: Server) -> None:
    with api.client("root", "admin") as root, api.client("lee", "clinician") as lee:
        case = in_conservative_care(root, "MRN-P-005", recent_intake())
        case = bring_reassessment_forward(lee, case)
        case = complete(
            lee,
            case,
            "six_week_reassessment",
            {
                "improved": True,
                "function_limited": False,
                "procedure_candidate": False,
                "patient_choice": "conservative",
            },
        )
        assert list(ready(case)) == ["self_care_discharge"]
        case = complete(lee, case, "self_care_discharge", {"self_care_advice_given": True})
        assert (case["status"], case["end"]) == ("ended", "resolved")
        assert case["deadlines"] == [] and pitfalls(case) == []


def test_past_the_three_month_limit_the_referral_is_escalated_and_overdue(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-P-006", old_intake(disabling_pain=False))
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        assert case["escalated"] is False
        case = complete(lee, case, "conservative_plan", GOOD_PLAN)
        assert case["escalated"] is True
        referral = ready(case)["specialist_referral"]
        assert referral["overdue"] is True
        assert utc(referral["due_at"]) < datetime.now(UTC)
        [reminder] = case["reminders"]
        assert reminder["kind"] == "referral_escalation_3_months"
        assert reminder["recipients"] == ["coordinator"]
        assert "referral_escalation_3_months" not in deadlines(case)
        case = complete(
            ana, case, "specialist_referral", {"referral_date": today(), "specialty": "spine"}
        )
        assert [v["code"] for v in case["variances"]] == ["referral_beyond_3_months"]
        assert case["ready_tasks"] == [] and case["status"] == "active"


def test_without_disabling_pain_no_two_week_referral_deadline_applies(api: Server) -> None:
    """Spec step 6: the 14-day referral rule is for disabling pain only. A patient without it
    who is referred after a failed reassessment must not be shown a `referral_due_2_weeks`
    deadline, nor a referral due (and later overdue) 14 days out: the limit that applies is
    3 months after symptom onset."""
    with api.client("root", "admin") as root, api.client("lee", "clinician") as lee:
        case = in_conservative_care(root, "MRN-P-008", recent_intake(disabling_pain=False))
        limit = deadlines(case)["referral_escalation_3_months"]["due_at"]
        case = bring_reassessment_forward(lee, case)
        case = complete(
            lee,
            case,
            "six_week_reassessment",
            {
                "improved": False,
                "function_limited": True,
                "procedure_candidate": False,
                "patient_choice": "conservative",
            },
        )
        assert list(ready(case)) == ["specialist_referral"]
        assert "referral_due_2_weeks" not in deadlines(case), case["deadlines"]
        assert utc(ready(case)["specialist_referral"]["due_at"]) == utc(limit)


def test_guideline_pitfalls_in_the_plan_are_recorded_as_variances(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-P-007", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(
            lee, case, "conservative_plan", {**GOOD_PLAN, "bed_rest": True, "mri_ordered": True}
        )
        codes = {v["code"]: v for v in case["variances"]}
        assert set(codes) == {"bed_rest_prescribed", "mri_before_6_weeks_without_red_flags"}
        for variance in codes.values():
            assert variance["step"] == "conservative_plan"
            assert variance["rule"] and variance["evidence"]["quote"]
        events = [e for e in timeline(ana, case["id"]) if e["type"] == "variance"]
        assert {e["detail"]["variance"] for e in events} == set(codes)
        # A variance is recorded, never a refusal: care goes on.
        assert case["status"] == "active" and "reassessment_due_6_weeks" in deadlines(case)


@pytest.mark.parametrize(("nrs", "expected"), [(6, True), (7, False)])
def test_a_short_opioid_course_below_severe_pain_is_a_variance(
    api: Server, nrs: int, expected: bool
) -> None:
    """ "Short-term opioids judiciously for severe pain only": leg pain 6 of 10 is not severe,
    7 is."""
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, f"MRN-OPI-{nrs}", recent_intake(leg_pain_nrs=nrs))
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(lee, case, "conservative_plan", {**GOOD_PLAN, "opioid_short_course": True})
    codes = [v["code"] for v in case["variances"]]
    assert codes == (["opioid_without_severe_pain"] if expected else [])
    if expected:
        (variance,) = case["variances"]
        assert (
            variance["evidence"]["quote"] == "Short-term opioids judiciously for severe pain only"
        )
        assert "7 of 10" in variance["rule"]


def test_a_plan_without_activity_advice_or_education_records_both_variances(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-ADV-1", recent_intake())
        case = complete(lee, case, "red_flag_screen", NO_RED_FLAGS)
        case = complete(
            lee,
            case,
            "conservative_plan",
            {**GOOD_PLAN, "activity_advice": False, "education_given": False},
        )
    quotes = {v["code"]: v["evidence"]["quote"] for v in case["variances"]}
    assert set(quotes) == {"activity_advice_not_given", "education_not_given"}
    assert "remaining active" in quotes["activity_advice_not_given"]
    assert "favorable prognosis" in quotes["education_not_given"]


# -- the guideline's limits on moving deadlines -----------------------------------------------


def _reschedule(
    client: httpx.Client, case: dict[str, Any], kind: str, due: datetime
) -> httpx.Response:
    return client.post(
        f"/cases/{case['id']}/deadlines/{kind}/reschedule",
        json={"due_at": due.isoformat(), "reason": "clinic asked"},
    )


def test_no_deadline_may_be_moved_into_the_past(api: Server) -> None:
    with api.client("root", "admin") as root:
        case = in_conservative_care(root, "MRN-L-001", recent_intake(disabling_pain=True))
        yesterday = datetime.now(UTC) - timedelta(days=1)
        for kind in ("referral_due_2_weeks", "reassessment_due_6_weeks"):
            body = problem(_reschedule(root, case, kind, yesterday), 422)
            assert body["errors"][0]["field"] == "due_at"
            assert "must not be in the past" in body["errors"][0]["message"]
        after = get_case(root, case["id"])
    assert after["version"] == case["version"] and after["reminders"] == []
    assert deadlines(after) == deadlines(case)


def test_the_3_month_limit_may_come_earlier_but_never_past_onset_plus_3_months(
    api: Server,
) -> None:
    """ "Do not delay specialist referral beyond 3 months for persistent radicular pain"."""
    onset = date.today() - timedelta(days=10)
    year, month = divmod(onset.month - 1 + 3, 12)
    year, month = onset.year + year, month + 1
    last = calendar.monthrange(year, month)[1]
    limit = datetime(year, month, min(onset.day, last), tzinfo=UTC)
    with api.client("ana", "coordinator") as ana, api.client("root", "admin") as root:
        case = in_conservative_care(root, "MRN-L-002", recent_intake(symptom_onset=str(onset)))
        kind = "referral_escalation_3_months"
        assert utc(deadlines(case)[kind]["due_at"]) == limit
        for later in (limit + timedelta(days=1), limit + timedelta(days=240)):
            body = problem(_reschedule(ana, case, kind, later), 422)
            message = body["errors"][0]["message"]
            assert f"must not be later than {limit:%Y-%m-%d} 00:00 UTC" in message, message
            assert "Do not delay specialist referral beyond 3 months" in message
        assert get_case(ana, case["id"])["version"] == case["version"]
        earlier = limit - timedelta(days=30)
        moved = _reschedule(ana, case, kind, earlier)
    assert moved.status_code == 200, moved.text
    assert utc(deadlines(moved.json())[kind]["due_at"]) == earlier


def test_an_urgent_deadline_may_come_earlier_but_never_later(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-L-003", recent_intake())
        case = complete(lee, case, "red_flag_screen", {**NO_RED_FLAGS, "fever": True})
        due = utc(deadlines(case)["urgent_action_overdue"]["due_at"])
        body = problem(
            _reschedule(ana, case, "urgent_action_overdue", due + timedelta(hours=1)), 422
        )
        assert "never moved later" in body["errors"][0]["message"]
        moved = _reschedule(ana, case, "urgent_action_overdue", due - timedelta(hours=12))
    assert moved.status_code == 200, moved.text
    assert utc(deadlines(moved.json())["urgent_action_overdue"]["due_at"]) == due - timedelta(
        hours=12
    )


def test_bringing_the_reassessment_forward_needs_a_clinician_and_is_a_variance(
    api: Server,
) -> None:
    """Conservative care lasts at least 6 weeks: ending it sooner is a clinician's call, with
    a reason, and a recorded departure from the guideline."""
    soon = datetime.now(UTC) + timedelta(days=20)
    with (
        api.client("ana", "coordinator") as ana,
        api.client("lee", "clinician") as lee,
        api.client("root", "admin") as root,
    ):
        case = in_conservative_care(root, "MRN-L-004", recent_intake())
        refused = _reschedule(ana, case, "reassessment_due_6_weeks", soon)
        assert problem(refused, 403)["detail"]
        later = _reschedule(ana, case, "reassessment_due_6_weeks", soon + timedelta(days=40))
        assert later.status_code == 200, later.text  # later is anyone's to agree
        assert later.json()["variances"] == []
        moved = _reschedule(lee, later.json(), "reassessment_due_6_weeks", soon)
    assert moved.status_code == 200, moved.text
    (variance,) = moved.json()["variances"]
    assert (variance["code"], variance["step"]) == (SHORTENED, "six_week_timer")
    assert "at least 6 weeks" in variance["rule"]


def test_cauda_equina_reported_in_the_urgent_branch_starts_a_4_hour_clock(api: Server) -> None:
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-C-064", recent_intake())
        case = complete(lee, case, "red_flag_screen", {**NO_RED_FLAGS, "fever": True})
        reported_at = datetime.now(UTC)
        response = ana.post(
            f"/cases/{case['id']}/messages/red_flag_reported",
            json={"data": {"urinary_retention_or_incontinence": True}},
            headers={"If-Match": etag(case)},
        )
        assert response.status_code == 200, response.text
        raised = response.json()
    due = utc(deadlines(raised)["emergency_action_overdue"]["due_at"]) - reported_at
    assert timedelta(hours=3, minutes=59) < due < timedelta(hours=4, minutes=1)
    assert [d["outputs"]["urgency"] for d in raised["decisions"]] == ["urgent", "emergency"]
    assert set(ready(raised)) == {"urgent_mri", "urgent_specialist_referral"}
