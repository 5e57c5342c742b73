"""The worklist: ready steps across cases that the caller's roles may do, most urgent first
(red-flag branches, then overdue, then the earliest due time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.api.conftest import Server
from tests.api.test_cases import (
    complete,
    get_case,
    in_conservative_care,
    old_intake,
    problem,
    ready,
    recent_intake,
    start,
    today,
    utc,
)
from tests.data import NO_RED_FLAGS


def worklist(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/worklist", params=params)
    assert response.status_code == 200, response.text[:600]
    items: list[dict[str, Any]] = response.json()
    return items


def lines(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["patient_ref"], item["task"]) for item in items]


def _cases(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    """Cases in several states, created in an order that is neither the urgency order nor its
    reverse: B (referral due in 14 days), A (awaiting its red-flag screen, no due time),
    C (red flag: urgent branch), E (3-month limit passed: referral overdue), D (referral due in
    30 days), F (cancelled)."""
    made = {}
    made["B"] = in_conservative_care(admin, "MRN-W-B", recent_intake(disabling_pain=True))
    made["A"] = start(admin, "MRN-W-A", recent_intake())
    made["C"] = complete(
        admin,
        start(admin, "MRN-W-C", recent_intake()),
        "red_flag_screen",
        {**NO_RED_FLAGS, "fever": True},
    )
    made["E"] = in_conservative_care(admin, "MRN-W-E", old_intake())
    d = in_conservative_care(admin, "MRN-W-D", recent_intake(disabling_pain=True))
    moved = admin.post(
        f"/cases/{d['id']}/deadlines/referral_due_2_weeks/reschedule",
        json={
            "due_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
            "reason": "patient travelling",
        },
    )
    assert moved.status_code == 200, moved.text[:600]
    made["D"] = moved.json()
    made["F"] = start(admin, "MRN-W-F", recent_intake())
    cancelled = admin.post(f"/cases/{made['F']['id']}/cancel", json={"reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text[:600]
    return made


URGENCY_ORDER = [
    # red-flag branch first (the two urgent steps share a due time)
    {("MRN-W-C", "urgent_mri"), ("MRN-W-C", "urgent_specialist_referral")},
    {("MRN-W-E", "specialist_referral")},  # then overdue
    {("MRN-W-B", "specialist_referral")},  # then the earliest due time
    {("MRN-W-D", "specialist_referral")},
    {("MRN-W-A", "red_flag_screen")},  # no due time last
]


def _in_order(found: list[tuple[str, str]], groups: list[set[tuple[str, str]]]) -> None:
    position = 0
    for group in groups:
        chunk = set(found[position : position + len(group)])
        assert chunk == group, f"expected {group} at position {position}: {found}"
        position += len(group)
    assert position == len(found), found


def test_admin_sees_every_ready_step_most_urgent_first(api: Server) -> None:
    with api.client("setup-admin", "admin") as setup, api.client("ada", "admin") as ada:
        cases = _cases(setup)
        items = worklist(ada)
        _in_order(lines(items), URGENCY_ORDER)
        by_line = {(i["patient_ref"], i["task"]): i for i in items}
        urgent = by_line[("MRN-W-C", "urgent_mri")]
        assert urgent["urgent"] is True and urgent["overdue"] is False
        assert urgent["case_id"] == cases["C"]["id"]
        assert utc(urgent["due_at"]) == utc(ready(cases["C"])["urgent_mri"]["due_at"])
        late = by_line[("MRN-W-E", "specialist_referral")]
        assert late["overdue"] is True and late["urgent"] is False
        assert utc(late["due_at"]) < datetime.now(UTC)
        assert late["case_id"] == cases["E"]["id"]
        for ref in ("B", "D"):
            item = by_line[(f"MRN-W-{ref}", "specialist_referral")]
            assert item["overdue"] is False
            assert utc(item["due_at"]) == utc(ready(cases[ref])["specialist_referral"]["due_at"])
        screen = by_line[("MRN-W-A", "red_flag_screen")]
        assert screen["due_at"] is None and screen["overdue"] is False
        assert screen["role"] == "clinician"
        assert "MRN-W-F" not in {i["patient_ref"] for i in items}  # cancelled


def test_a_coordinator_sees_only_coordinator_steps(api: Server) -> None:
    with api.client("setup-admin", "admin") as setup, api.client("ana", "coordinator") as ana:
        _cases(setup)
        items = worklist(ana)
        assert {i["role"] for i in items} == {"coordinator"}
        assert lines(items) == [
            ("MRN-W-C", "urgent_specialist_referral"),
            ("MRN-W-E", "specialist_referral"),
            ("MRN-W-B", "specialist_referral"),
            ("MRN-W-D", "specialist_referral"),
        ]


def test_a_clinician_sees_only_clinician_steps(api: Server) -> None:
    with api.client("setup-admin", "admin") as setup, api.client("lee", "clinician") as lee:
        _cases(setup)
        items = worklist(lee)
        assert lines(items) == [("MRN-W-C", "urgent_mri"), ("MRN-W-A", "red_flag_screen")]
        assert {i["role"] for i in items} == {"clinician"}


def test_someone_with_both_roles_sees_both_in_one_order(api: Server) -> None:
    with (
        api.client("setup-admin", "admin") as setup,
        api.client("sam", "coordinator", "clinician") as sam,
    ):
        _cases(setup)
        _in_order(lines(worklist(sam)), URGENCY_ORDER)
        top = worklist(sam, limit=3)
        _in_order(lines(top), URGENCY_ORDER[:2])


def test_the_worklist_follows_the_cases(api: Server) -> None:
    with (
        api.client("setup-admin", "admin") as setup,
        api.client("ana", "coordinator") as ana,
        api.client("lee", "clinician") as lee,
    ):
        first = in_conservative_care(setup, "MRN-W-G", recent_intake(disabling_pain=True))
        second = in_conservative_care(setup, "MRN-W-H", recent_intake(disabling_pain=True))
        assert lines(worklist(ana)) == [
            ("MRN-W-G", "specialist_referral"),
            ("MRN-W-H", "specialist_referral"),
        ]
        # A completed step leaves the worklist.
        complete(
            ana, first, "specialist_referral", {"referral_date": today(), "specialty": "spine"}
        )
        assert lines(worklist(ana)) == [("MRN-W-H", "specialist_referral")]
        # A red flag on the second case puts its urgent steps on both lists, at the top.
        reported = lee.post(
            f"/cases/{second['id']}/messages/red_flag_reported",
            json={"data": {"bilateral_leg_weakness": True}},
        )
        assert reported.status_code == 200, reported.text[:600]
        assert lines(worklist(ana)) == [("MRN-W-H", "urgent_specialist_referral")]
        assert lines(worklist(lee)) == [("MRN-W-H", "urgent_mri")]
        assert all(i["urgent"] for i in worklist(lee))
        # Ending the case empties it from every list.
        case = get_case(lee, second["id"])
        case = complete(lee, case, "urgent_mri", {"mri_requested_on": today()})
        complete(
            ana,
            case,
            "urgent_specialist_referral",
            {"urgent_referral_date": today(), "urgent_specialty": "neurosurgery"},
        )
        assert worklist(ana) == [] and worklist(lee) == []


def test_worklist_limit_is_checked(api: Server) -> None:
    with api.client("ana", "coordinator") as ana:
        for limit in (0, 501):
            body = problem(ana.get("/worklist", params={"limit": limit}), 422)
            assert "limit" in body["errors"][0]["field"]
