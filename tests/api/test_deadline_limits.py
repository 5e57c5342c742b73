"""A case's deadlines carry the dates their limits come to on that case (``latest_at``,
``earliest_at``), and those dates are the ones a move is checked against: a second past the
latest is refused, the latest itself accepted; earlier than the earliest takes a clinician
and records a variance, the earliest itself does not. On SQLite and PostgreSQL."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.api.conftest import Server
from tests.api.test_cases import (
    SHORTENED,
    complete,
    deadlines,
    get_case,
    in_conservative_care,
    problem,
    recent_intake,
    start,
    utc,
)
from tests.data import NO_RED_FLAGS

SECOND = timedelta(seconds=1)


def move(client: httpx.Client, case: dict[str, Any], kind: str, due: datetime) -> httpx.Response:
    return client.post(
        f"/cases/{case['id']}/deadlines/{kind}/reschedule",
        json={"due_at": due.isoformat(), "reason": "the clinic's list"},
    )


def moved(client: httpx.Client, case: dict[str, Any], kind: str, due: datetime) -> dict[str, Any]:
    response = move(client, case, kind, due)
    assert response.status_code == 200, response.text[:600]
    result: dict[str, Any] = response.json()
    return result


def three_months_after(day: date) -> datetime:
    year, month = divmod(day.month - 1 + 3, 12)
    year, month = day.year + year, month + 1
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, min(day.day, last), tzinfo=UTC)


def test_the_3_month_referral_shows_its_latest_date_and_a_move_past_it_is_refused(
    api: Server,
) -> None:
    onset = date.today() - timedelta(days=10)
    kind = "referral_escalation_3_months"
    with api.client("ana", "coordinator") as ana, api.client("root", "admin") as root:
        case = in_conservative_care(root, "MRN-DL-001", recent_intake(symptom_onset=str(onset)))
        deadline = deadlines(case)[kind]
        latest = utc(deadline["latest_at"])
        assert latest == three_months_after(onset)  # onset + 3 months, 00:00 in the clinic
        assert deadline["earliest_at"] is None
        assert get_case(ana, case["id"])["deadlines"] == case["deadlines"]
        # Brought forward, it still may go back as far as the guideline's latest, no further.
        case = moved(ana, case, kind, latest - timedelta(days=20))
        assert utc(deadlines(case)[kind]["latest_at"]) == latest
        body = problem(move(ana, case, kind, latest + SECOND), 422)
        assert body["errors"][0]["field"] == "due_at"
        assert "must not be later than" in body["errors"][0]["message"]
        assert get_case(ana, case["id"])["version"] == case["version"]
        case = moved(ana, case, kind, latest)
    assert utc(deadlines(case)[kind]["due_at"]) == latest


def test_a_deadline_that_may_never_move_later_has_its_due_time_as_latest(api: Server) -> None:
    kind = "urgent_action_overdue"
    with api.client("ana", "coordinator") as ana, api.client("lee", "clinician") as lee:
        case = start(ana, "MRN-DL-002", recent_intake())
        case = complete(lee, case, "red_flag_screen", {**NO_RED_FLAGS, "fever": True})
        deadline = deadlines(case)[kind]
        assert deadline["latest_at"] == deadline["due_at"]
        assert deadline["earliest_at"] is None
        due = utc(deadline["due_at"])
        body = problem(move(ana, case, kind, due + SECOND), 422)
        assert "never moved later" in body["errors"][0]["message"]
        case = moved(ana, case, kind, due - timedelta(hours=6))
        # Moved earlier, the new due time is the latest it may go back to.
        assert utc(deadlines(case)[kind]["latest_at"]) == due - timedelta(hours=6)
        problem(move(ana, case, kind, due - timedelta(hours=6) + SECOND), 422)
        case = moved(ana, case, kind, due - timedelta(hours=6))
    assert utc(deadlines(case)[kind]["due_at"]) == due - timedelta(hours=6)


def test_the_6_week_reassessment_shows_its_earliest_date_and_earlier_is_a_clinicians_variance(
    api: Server,
) -> None:
    kind = "reassessment_due_6_weeks"
    with (
        api.client("ana", "coordinator") as ana,
        api.client("lee", "clinician") as lee,
        api.client("root", "admin") as root,
    ):
        before = datetime.now(UTC).date()
        case = in_conservative_care(root, "MRN-DL-003", recent_intake(disabling_pain=True))
        after = datetime.now(UTC).date()
        deadline = deadlines(case)[kind]
        earliest = utc(deadline["earliest_at"])
        # 6 weeks after the day conservative care started, 00:00 in the clinic (UTC here).
        started = {datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (before, after)}
        assert earliest in {day + timedelta(weeks=6) for day in started}
        assert deadline["latest_at"] is None
        assert earliest <= utc(deadline["due_at"])
        # The 2-week referral has no limits: nothing bounds it.
        unbounded = deadlines(case)["referral_due_2_weeks"]
        assert (unbounded["latest_at"], unbounded["earliest_at"]) == (None, None)
        refused = move(ana, case, kind, earliest - timedelta(minutes=1))
        assert problem(refused, 403)["detail"]
        case = moved(ana, case, kind, earliest)
        assert case["variances"] == []
        case = moved(lee, case, kind, earliest - timedelta(minutes=1))
        (variance,) = case["variances"]
        assert variance["code"] == SHORTENED
        # Its limit stays where the guideline puts it, wherever the deadline now is.
        assert utc(deadlines(case)[kind]["earliest_at"]) == earliest
