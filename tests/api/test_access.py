"""Who may do what: bearer tokens (401), roles (403), and the role x action matrix.

A step is completed only by the role the pathway names for it (admin may do anything);
modelers do not touch cases; without a usable token nothing but the health checks answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.auth import issue_token
from api.settings import ApiSettings
from tests.api.conftest import SECRET, Server
from tests.api.test_cases import (
    PATHWAY,
    complete,
    count_cases,
    etag,
    get_case,
    in_conservative_care,
    problem,
    recent_intake,
    start,
    timeline,
    today,
)
from tests.data import GOOD_PLAN, NO_RED_FLAGS

SETUP = "setup-admin"  # the subject that prepares each case, never a caller under test
CALLERS: dict[str, tuple[str, tuple[str, ...]] | None] = {
    "coordinator": ("ana", ("coordinator",)),
    "clinician": ("lee", ("clinician",)),
    "admin": ("ada", ("admin",)),
    "modeler": ("mo", ("modeler",)),
    "no token": None,
}


def signed(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"sub": "ana", "roles": ["coordinator"], "iat": now, "exp": now + timedelta(hours=1)} | (
        overrides
    )


# -- the role matrix -------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Something a caller tries: ``setup`` prepares a case (as admin), ``call`` tries it."""

    setup: Callable[[httpx.Client, str], dict[str, Any] | None]
    call: Callable[[httpx.Client, dict[str, Any] | None, str], httpx.Response]
    step_role: str | None = None  # the role the pathway names, for steps and messages


def _nothing(admin: httpx.Client, ref: str) -> None:
    return None


def _started(admin: httpx.Client, ref: str) -> dict[str, Any]:
    return start(admin, ref, recent_intake())


def _awaiting_intake(admin: httpx.Client, ref: str) -> dict[str, Any]:
    return start(admin, ref)


def _conservative(admin: httpx.Client, ref: str) -> dict[str, Any]:
    return in_conservative_care(admin, ref, recent_intake(disabling_pain=True))


def _urgent(admin: httpx.Client, ref: str) -> dict[str, Any]:
    case = start(admin, ref, recent_intake())
    return complete(admin, case, "red_flag_screen", {**NO_RED_FLAGS, "osteoporosis": True})


def _complete(task: str, data: dict[str, Any]) -> Callable[..., httpx.Response]:
    def call(client: httpx.Client, case: dict[str, Any] | None, ref: str) -> httpx.Response:
        assert case is not None
        return client.post(
            f"/cases/{case['id']}/tasks/{task}/complete",
            json={"data": data},
            headers={"If-Match": etag(case)},
        )

    return call


def _case_path(suffix: str) -> Callable[..., httpx.Response]:
    def call(client: httpx.Client, case: dict[str, Any] | None, ref: str) -> httpx.Response:
        assert case is not None
        return client.get(f"/cases/{case['id']}{suffix}")

    return call


ACTIONS: dict[str, Action] = {
    "start a case with intake": Action(
        _nothing,
        lambda c, case, ref: c.post(
            "/cases", json={"pathway": PATHWAY, "patient_ref": ref, "data": recent_intake()}
        ),
        step_role="coordinator",
    ),
    "list cases": Action(_started, lambda c, case, ref: c.get("/cases")),
    "read a case": Action(_started, _case_path("")),
    "read a timeline": Action(_started, _case_path("/timeline")),
    "read the worklist": Action(_started, lambda c, case, ref: c.get("/worklist")),
    "complete intake": Action(
        _awaiting_intake, _complete("intake", recent_intake()), step_role="coordinator"
    ),
    "complete the red-flag screen": Action(
        _started, _complete("red_flag_screen", NO_RED_FLAGS), step_role="clinician"
    ),
    "complete the specialist referral": Action(
        _conservative,
        _complete("specialist_referral", {"referral_date": today(), "specialty": "spine"}),
        step_role="coordinator",
    ),
    "complete the urgent referral": Action(
        _urgent,
        _complete(
            "urgent_specialist_referral",
            {"urgent_referral_date": today(), "urgent_specialty": "spinal surgery"},
        ),
        step_role="coordinator",
    ),
    "report a red flag": Action(
        _conservative,
        lambda c, case, ref: c.post(
            f"/cases/{case['id']}/messages/red_flag_reported",  # type: ignore[index]
            json={"data": {"saddle_anesthesia": True}},
        ),
        step_role="clinician",
    ),
    "reschedule a deadline": Action(
        _conservative,
        lambda c, case, ref: c.post(
            f"/cases/{case['id']}/deadlines/reassessment_due_6_weeks/reschedule",  # type: ignore[index]
            json={
                "due_at": (datetime.now(UTC) + timedelta(days=60)).isoformat(),
                "reason": "clinic closed that week",
            },
        ),
    ),
    "cancel a case": Action(
        _started,
        lambda c, case, ref: c.post(
            f"/cases/{case['id']}/cancel",  # type: ignore[index]
            json={"reason": "registered in error"},
        ),
    ),
}

# What each role gets for each action.
MATRIX = """
action                            coordinator clinician admin modeler no-token
start a case with intake          201         403       201   403     401
list cases                        200         200       200   403     401
read a case                       200         200       200   403     401
read a timeline                   200         200       200   403     401
read the worklist                 200         200       200   403     401
complete intake                   200         403       200   403     401
complete the red-flag screen      403         200       200   403     401
complete the specialist referral  200         403       200   403     401
complete the urgent referral      200         403       200   403     401
report a red flag                 200         200       200   403     401
reschedule a deadline             200         200       200   403     401
cancel a case                     200         200       200   403     401
"""


def _matrix() -> list[Any]:
    lines = [line for line in MATRIX.strip().splitlines()[1:] if line.strip()]
    params = []
    for line in lines:
        *words, c1, c2, c3, c4, c5 = line.split()
        action = " ".join(words)
        assert action in ACTIONS, action
        for role, status in zip(CALLERS, (c1, c2, c3, c4, c5), strict=True):
            params.append(pytest.param(action, role, int(status), id=f"{action}-{role}"))
    return params


@pytest.mark.parametrize(("action", "role", "expected"), _matrix())
def test_role_matrix(api: Server, action: str, role: str, expected: int) -> None:
    todo = ACTIONS[action]
    ref = "MRN-A-" + "-".join(w[:4] for w in action.split()) + "-" + role.replace(" ", "")[:5]
    caller = CALLERS[role]
    with api.client(SETUP, "admin") as admin:
        case = todo.setup(admin, ref)
        before = timeline(admin, case["id"]) if case else []
        client = api.client(caller[0], *caller[1]) if caller else api.client()
        with client:
            response = todo.call(client, case, ref)
        assert response.status_code == expected, response.text[:600]
        if expected < 400:
            if case is not None and response.request.method == "POST":
                # A change is audited under the caller's own name.
                assert caller is not None
                new_events = timeline(admin, case["id"])[len(before) :]
                actors = [e["actor"] for e in new_events if e["actor"]]
                assert actors and set(actors) == {caller[0]}, new_events
            return
        body = problem(response, expected)
        if expected == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
        if expected == 403 and role != "modeler" and todo.step_role:
            assert todo.step_role in body["detail"], body
        if role == "modeler":
            assert "coordinator" in body["detail"] and "clinician" in body["detail"]
        # A refused request changes nothing.
        if case is None:
            assert count_cases(admin, patient_ref=ref) == 0
        else:
            unchanged = get_case(admin, case["id"])
            assert unchanged["version"] == case["version"]
            assert unchanged["status"] == case["status"]
            assert len(timeline(admin, case["id"])) == len(before)


# -- tokens ----------------------------------------------------------------------------------


def test_health_checks_answer_without_a_token(api: Server) -> None:
    with api.client() as anonymous:
        for path, status in (("/healthz", "ok"), ("/readyz", "ready")):
            response = anonymous.get(path)
            assert response.status_code == 200, response.text[:600]
            assert response.json() == {"status": status}


def test_without_a_token_the_api_asks_for_one(api: Server) -> None:
    with api.client() as anonymous:
        response = anonymous.get("/cases")
        body = problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Bearer" in body["detail"]


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (
            lambda: "Bearer " + signed(valid_claims(exp=datetime.now(UTC) - timedelta(hours=1))),
            "expired",
        ),
        (lambda: "Bearer " + signed(valid_claims(), key="another-secret-" + "0" * 40), "not valid"),
        (lambda: "Bearer " + signed(valid_claims(), key=None, algorithm="none"), "not valid"),  # type: ignore[arg-type]
        (lambda: "Bearer not-a-jwt-at-all", "not valid"),
        (
            lambda: "Bearer " + signed({k: v for k, v in valid_claims().items() if k != "exp"}),
            "exp",
        ),
        (
            lambda: "Bearer " + signed({k: v for k, v in valid_claims().items() if k != "sub"}),
            "sub",
        ),
        (lambda: "Basic " + "YW5hOnNlY3JldA==", "Bearer"),
        (lambda: "Bearer", "Bearer"),
    ],
    ids=["expired", "wrong-secret", "alg-none", "garbage", "no-exp", "no-sub", "basic", "empty"],
)
def test_an_unusable_token_is_401(api: Server, header: Callable[[], str], detail: str) -> None:
    value = header()
    with api.client() as anonymous:
        response = anonymous.get("/cases", headers={"Authorization": value})
        body = problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert detail in body["detail"]
        assert "items" not in body
    api.log_through(body["request_id"])  # the refusal is logged...
    token = value.partition(" ")[2].strip()
    if len(token) > 20:
        assert token not in api.log_text()  # ...but the credential never is


def test_an_unauthenticated_request_is_refused_before_its_body_is_read(api: Server) -> None:
    with api.client() as anonymous:
        response = anonymous.post("/cases", json={"patient": "no pathway"})
        problem(response, 401)
        response = anonymous.post(
            "/cases/anything/tasks/intake/complete",
            json={"data": {}},  # no If-Match either
        )
        problem(response, 401)


def test_a_token_with_several_roles_may_do_the_steps_of_each(api: Server) -> None:
    with api.client("sam", "coordinator", "clinician") as sam:
        case = start(sam, "MRN-A-9001", recent_intake(disabling_pain=True))
        for task, data in (
            ("red_flag_screen", NO_RED_FLAGS),
            ("conservative_plan", GOOD_PLAN),
            ("specialist_referral", {"referral_date": today(), "specialty": "spine"}),
        ):
            response = sam.post(
                f"/cases/{case['id']}/tasks/{task}/complete",
                json={"data": data},
                headers={"If-Match": etag(case)},
            )
            assert response.status_code == 200, response.text[:600]
            case = response.json()
        completed = [e for e in timeline(sam, case["id"]) if e["type"] == "task_completed"]
        assert {e["actor"] for e in completed} == {"sam"} and len(completed) == 4


@pytest.mark.parametrize("sub", ["", "   "], ids=["empty", "blank"])
def test_a_token_without_a_person_in_sub_is_401(api: Server, sub: str) -> None:
    """The audit log names who did each change (the token's sub): a token that names nobody
    must not be able to act. (`pathway token` refuses to issue one; the verifier accepts it.)"""
    token = signed(valid_claims(sub=sub, roles=["admin"]))
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as nobody:
        response = nobody.post(
            "/cases",
            json={"pathway": PATHWAY, "patient_ref": "MRN-A-9002", "data": recent_intake()},
        )
        problem(response, 401)
    with api.client("ada", "admin") as ada:
        assert count_cases(ada) == 0


@pytest.mark.parametrize(
    "roles",
    [None, 7, {"admin": False}],
    ids=["null", "number", "mapping"],
)
def test_a_roles_claim_that_is_not_a_list_of_roles_grants_nothing(api: Server, roles: Any) -> None:
    """A validly signed token whose roles claim is not a list (or a space-separated string) of
    role names is refused cleanly as problem+json, never a 500 and never admin rights."""
    token = signed(valid_claims(roles=roles))
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as odd:
        response = odd.get("/cases")
        assert response.status_code in (401, 403), response.text
        problem(response, response.status_code)


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        (lambda: valid_claims(exp=str(int(time.time()) + 3600)), "exp is not a time"),
        (lambda: valid_claims(exp=1e308), "lives longer than 24 hours"),
        (
            lambda: valid_claims(exp=datetime.now(UTC) + timedelta(hours=25)),
            "lives longer than 24 hours",
        ),
        (
            lambda: valid_claims(
                iat=datetime.now(UTC) - timedelta(hours=30),
                exp=datetime.now(UTC) + timedelta(hours=1),
            ),
            "lives longer than 24 hours",
        ),
        (lambda: valid_claims(iat="2026-12-01"), "iat"),
    ],
    ids=["string-exp", "exp-1e308", "25-hours", "issued-30-hours-ago", "string-iat"],
)
def test_a_token_that_never_expires_or_lives_too_long_is_401(
    api: Server, claims: Callable[[], dict[str, Any]], detail: str
) -> None:
    """PyJWT reads a string or an astronomically large exp as a time far away: such a token
    would never expire. Tokens live at most PATHWAY_JWT_MAX_HOURS (24) from their iat."""
    token = signed(claims())
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as caller:
        body = problem(caller.get("/worklist"), 401)
    assert detail in body["detail"]


def test_a_token_within_its_lifetime_is_accepted(api: Server) -> None:
    token = signed(valid_claims(exp=datetime.now(UTC) + timedelta(hours=23)))
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as caller:
        assert caller.get("/worklist").status_code == 200


def test_pathway_token_refuses_a_lifetime_the_service_would_refuse(tmp_path: Path) -> None:
    settings = ApiSettings(data_dir=tmp_path, jwt_secret=SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most 24"):
        issue_token(settings, sub="ana", roles=["coordinator"], hours=48)
    assert issue_token(settings, sub="ana", roles=["coordinator"], hours=24)
