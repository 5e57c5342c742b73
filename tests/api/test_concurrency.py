"""Fifty people complete the same step of the same case at the same moment.

Each request has its own thread and its own connection, opened beforehand; a barrier lets them
all go at once, so the requests are in flight together (the test checks it) and the server's
threads and the database's case lock decide. Exactly one completion may win: one 200, every
other request a 409, one ``task_completed`` event for the step in the audit trail, and the
case's version up by exactly one. On SQLite and on PostgreSQL.

With the same If-Match version, every loser is a ``version-conflict`` naming the new version.
With ``If-Match: *`` (no version check) only the case lock serializes the racers, so every loser
must find the step no longer ready (``task-not-ready``): a ``version-conflict`` there would mean
two racers ran the step at once and only the final version check stopped the second.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from tests.api.conftest import Server, intake
from tests.data import NO_RED_FLAGS

RACERS = 50


@dataclass
class Attempt:
    status: int
    body: dict[str, Any]
    sent: float
    answered: float


def _start_case(api: Server, patient_ref: str) -> dict[str, Any]:
    with api.client("ana", "coordinator") as ana:
        response = ana.post(
            "/cases",
            json={"pathway": "lumbar_radiculopathy", "patient_ref": patient_ref, "data": intake()},
        )
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    assert [t["id"] for t in case["ready_tasks"]] == ["red_flag_screen"], case
    return case


def race(api: Server, case_id: str, if_match: str) -> list[Attempt]:
    """Send RACERS completions of red_flag_screen together; return what each got."""
    barrier = threading.Barrier(RACERS, timeout=30)
    token = api.token("lee", "clinician")

    def attempt(n: int) -> Attempt:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
            # Open the connection first, so that the race is the completion and not the
            # TCP handshake.
            assert client.get("/healthz").status_code == 200
            barrier.wait()
            sent = time.monotonic()
            response = client.post(
                f"/cases/{case_id}/tasks/red_flag_screen/complete",
                json={"data": NO_RED_FLAGS},
                headers={"If-Match": if_match, "X-Request-ID": f"racer-{n}"},
            )
            answered = time.monotonic()
        return Attempt(response.status_code, response.json(), sent, answered)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(attempt, range(RACERS)))


def max_in_flight(attempts: list[Attempt]) -> int:
    """The most requests that were sent and not yet answered at one moment."""
    moments = sorted([(a.sent, 1) for a in attempts] + [(a.answered, -1) for a in attempts])
    in_flight = most = 0
    for _, change in moments:
        in_flight += change
        most = max(most, in_flight)
    return most


def _check_one_winner(
    api: Server, case: dict[str, Any], attempts: list[Attempt], loser_problem: str
) -> None:
    statuses = Counter(a.status for a in attempts)
    assert statuses == {200: 1, 409: RACERS - 1}, statuses
    # The requests really overlapped: many were in flight at the same moment.
    assert max_in_flight(attempts) >= RACERS // 5, max_in_flight(attempts)

    winner = next(a for a in attempts if a.status == 200)
    assert winner.body["version"] == case["version"] + 1, winner.body
    losers = [a.body for a in attempts if a.status == 409]
    kinds = Counter(body["type"] for body in losers)
    assert kinds == {f"/problems/{loser_problem}": RACERS - 1}, kinds

    with api.client("lee", "clinician") as lee:
        now = lee.get(f"/cases/{case['id']}")
        timeline = lee.get(f"/cases/{case['id']}/timeline").json()
    assert now.status_code == 200, now.text
    assert now.json()["version"] == case["version"] + 1, now.json()
    assert now.headers["etag"] == f'"{case["version"] + 1}"'
    assert [t["id"] for t in now.json()["ready_tasks"]] == ["conservative_plan"]
    completed = [e for e in timeline if e["type"] == "task_completed"]
    assert [e["step"] for e in completed] == ["intake", "red_flag_screen"], completed
    assert completed[1]["actor"] == "lee"


def test_fifty_completions_with_the_same_version_make_one_change(api: Server) -> None:
    case = _start_case(api, "MRN-RACE-1")
    attempts = race(api, case["id"], if_match=f'"{case["version"]}"')
    _check_one_winner(api, case, attempts, "version-conflict")
    losers = [a.body for a in attempts if a.status == 409]
    assert {body["current_version"] for body in losers} == {case["version"] + 1}


def test_fifty_completions_without_a_version_check_still_make_one_change(api: Server) -> None:
    # If-Match: * skips the version check, so only the case lock stands between the racers
    # and a step completed twice: the losers find the step no longer ready.
    case = _start_case(api, "MRN-RACE-2")
    attempts = race(api, case["id"], if_match="*")
    _check_one_winner(api, case, attempts, "task-not-ready")
