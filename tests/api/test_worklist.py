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
    timeline,
    today,
    utc,
)
from tests.data import NO_RED_FLAGS


def worklist(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/worklist", params=params)
    assert response.status_code == 200, response.text[:600]
    page = response.json()
    items: list[dict[str, Any]] = page["items"]
    assert page["total"] >= len(items)
    return items


def ready_ids(case: dict[str, Any]) -> list[str]:
    return [t["id"] for t in case["ready_tasks"]]


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


# -- filters, paging and claims ----------------------------------------------------------------


def test_the_worklist_filters_by_role_overdue_escalated_and_pathway(api: Server) -> None:
    with (
        api.client("setup-admin", "admin") as setup,
        api.client("bo", "coordinator", "clinician") as bo,
        api.client("ana", "coordinator") as ana,
    ):
        _cases(setup)
        clinician = set(lines(worklist(bo, role="clinician")))
        assert clinician == set(lines(worklist(setup, role="clinician")))
        assert ("MRN-W-A", "red_flag_screen") in clinician
        assert not clinician & set(lines(worklist(setup, role="coordinator")))
        assert lines(worklist(setup, overdue=True)) == [("MRN-W-E", "specialist_referral")]
        assert ("MRN-W-E", "specialist_referral") not in lines(worklist(setup, overdue=False))
        escalated = worklist(setup, escalated=True)
        assert lines(escalated) == [("MRN-W-E", "specialist_referral")]
        assert escalated[0]["escalated"] is True
        assert worklist(setup, pathway="no_such_pathway") == []
        assert len(worklist(setup, pathway="lumbar_radiculopathy")) == len(worklist(setup))
        # A role the caller does not hold is refused, not an empty (or a full) list.
        assert problem(ana.get("/worklist", params={"role": "clinician"}), 403)["detail"]


def test_the_worklist_is_paged_with_a_total(api: Server) -> None:
    with api.client("setup-admin", "admin") as setup:
        _cases(setup)
        everything = worklist(setup)
        pages = [setup.get("/worklist", params={"limit": 2, "offset": o}).json() for o in (0, 2, 4)]
    assert [p["total"] for p in pages] == [len(everything)] * 3
    assert [i for p in pages for i in p["items"]] == everything


def test_claiming_a_step_shows_who_holds_it_and_is_in_the_timeline(api: Server) -> None:
    with (
        api.client("setup-admin", "admin") as setup,
        api.client("ana", "coordinator") as ana,
        api.client("cy", "coordinator") as cy,
        api.client("lee", "clinician") as lee,
    ):
        case = in_conservative_care(setup, "MRN-CL-1", recent_intake(disabling_pain=True))
        path = f"/cases/{case['id']}/tasks/specialist_referral"
        claimed = ana.post(f"{path}/claim")
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["claimed_by"] == "ana"
        [item] = worklist(ana, claimed="mine")
        assert (item["task"], item["claimed_by"]) == ("specialist_referral", "ana")
        assert worklist(ana, claimed="unclaimed") == []
        assert worklist(cy, claimed="mine") == []
        # Not the clinician's step: a clinician cannot claim it.
        assert problem(lee.post(f"{path}/claim"), 403)["detail"]
        # A signpost, not a lock: another coordinator completes it; the timeline shows both.
        done = complete(
            cy, case, "specialist_referral", {"referral_date": today(), "specialty": "spine"}
        )
        events = [
            (e["type"], e["actor"])
            for e in timeline(ana, case["id"])
            if e["step"] == "specialist_referral"
        ]
        assert ("task_claimed", "ana") in events and ("task_completed", "cy") in events
        assert "specialist_referral" not in ready(done)
        # Nothing left to claim.
        assert problem(ana.post(f"{path}/claim"), 409)["ready_tasks"] == ready_ids(done)


def test_a_claim_can_be_taken_over_and_released_with_the_timeline_saying_so(api: Server) -> None:
    with (
        api.client("setup-admin", "admin") as setup,
        api.client("ana", "coordinator") as ana,
        api.client("cy", "coordinator") as cy,
    ):
        case = in_conservative_care(setup, "MRN-CL-2", recent_intake(disabling_pain=True))
        path = f"/cases/{case['id']}/tasks/specialist_referral"
        assert ana.post(f"{path}/claim").status_code == 200
        taken = cy.post(f"{path}/claim").json()
        assert taken["claimed_by"] == "cy"
        released = cy.post(f"{path}/unclaim").json()
        assert released["claimed_by"] is None
        [item] = worklist(ana, claimed="unclaimed")
        assert item["claimed_by"] is None
        claims = [
            (e["type"], e["actor"], e["detail"])
            for e in timeline(ana, case["id"])
            if e["type"] in ("task_claimed", "task_unclaimed")
        ]
    assert claims == [
        ("task_claimed", "ana", {}),
        ("task_claimed", "cy", {"previous": "ana"}),
        ("task_unclaimed", "cy", {"previous": "cy"}),
    ]


def test_cases_can_be_found_by_the_beginning_of_a_reference(api: Server) -> None:
    with api.client("setup-admin", "admin") as setup:
        for ref in ("MRN-100_1", "MRN-1001", "MRN-2001", "XMRN-100"):
            start(setup, ref)

        def found(prefix: str) -> list[str]:
            page = setup.get("/cases", params={"patient_ref_prefix": prefix}).json()
            return sorted(item["patient_ref"] for item in page["items"])

        assert found("MRN-1") == ["MRN-1001", "MRN-100_1"]
        assert found("MRN-100_") == ["MRN-100_1"]  # _ is a character, not a wildcard
        assert found("ＭＲＮ-2") == ["MRN-2001"]  # the same spelling rules as a reference
        assert found("%") == []
