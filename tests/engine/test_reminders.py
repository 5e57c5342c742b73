"""Reminder delivery bookkeeping: enqueue once, claim once, retry with backoff, fail after
the limit, and reap what a lost message or a dead worker left behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

import engine
from engine.store import reminder_attempts
from tests.conftest import Database
from tests.pathway.conftest import START, CaseDriver

DAY14 = START + timedelta(days=14)


@pytest.fixture
def raised(db: Database) -> CaseDriver:
    """A case whose 2-week referral reminder has just been raised."""
    case = CaseDriver(db)
    case.screen_clear(disabling_pain=True, patient_ref="MRN-REM-1")
    case.start_conservative()
    case.wait_until(14)
    assert case.reminders() == {"referral_due_2_weeks": DAY14}
    return case


def _status(db: Database, case: CaseDriver) -> dict[str, str]:
    with db.sessions() as session:
        records, _ = engine.list_reminders(session, case_id=case.id)
    return {r.kind: r.status for r in records}


def test_a_raised_reminder_is_enqueued_once_and_claimed_once(
    db: Database, raised: CaseDriver
) -> None:
    with db.sessions.begin() as session:
        ids = engine.enqueue_due_reminders(session, now=DAY14)
    with db.sessions.begin() as session:
        assert engine.enqueue_due_reminders(session, now=DAY14) == [], "already enqueued"
    (reminder_id,) = ids
    with db.sessions.begin() as session:
        message = engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14)
    assert message is not None
    assert (message.kind, message.patient_ref, message.attempt) == (
        "referral_due_2_weeks",
        "MRN-REM-1",
        1,
    )
    assert message.recipients == ("coordinator",)
    assert message.text == "Specialist referral due (2 weeks after conservative care started)"
    assert "Specialist referral" in message.open_steps
    with db.sessions.begin() as session:
        assert engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14) is None
    with db.sessions.begin() as session:
        status = engine.record_reminder_delivery(
            session,
            reminder_id=reminder_id,
            attempt=1,
            outcomes={"email": None},
            now=DAY14,
            max_attempts=8,
            backoff_base=30,
        )
    assert status == "sent"
    assert _status(db, raised) == {"referral_due_2_weeks": "sent"}


def test_a_failing_channel_is_retried_with_backoff_then_fails_at_the_limit(
    db: Database, raised: CaseDriver
) -> None:
    now = DAY14
    for attempt in (1, 2, 3):
        with db.sessions.begin() as session:
            (reminder_id,) = engine.enqueue_due_reminders(session, now=now)
        with db.sessions.begin() as session:
            message = engine.claim_reminder(session, reminder_id=reminder_id, now=now)
            assert message is not None and message.attempt == attempt
            status = engine.record_reminder_delivery(
                session,
                reminder_id=reminder_id,
                attempt=attempt,
                outcomes={"email": None, "webhook": "HTTP 503"},
                now=now,
                max_attempts=3,
                backoff_base=10,
            )
        if attempt < 3:
            assert status == "pending"
            with db.sessions.begin() as session:
                wait = timedelta(seconds=10 * 2 ** (attempt - 1))
                assert (
                    engine.enqueue_due_reminders(session, now=now + wait - timedelta(seconds=1))
                    == []
                ), "not before its backoff"
            now += wait
    assert status == "failed"
    with db.sessions() as session:
        (record,), _ = engine.list_reminders(session, case_id=raised.id, status="failed")
        attempts = session.execute(
            select(reminder_attempts.c.channel, reminder_attempts.c.ok)
        ).all()
    assert record.attempts == 3
    assert record.last_error == "webhook: HTTP 503"
    assert sorted(attempts) == sorted([("email", True)] * 3 + [("webhook", False)] * 3)


def test_a_retry_skips_channels_that_already_delivered(db: Database, raised: CaseDriver) -> None:
    with db.sessions.begin() as session:
        (reminder_id,) = engine.enqueue_due_reminders(session, now=DAY14)
    with db.sessions.begin() as session:
        engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14)
        engine.record_reminder_delivery(
            session,
            reminder_id=reminder_id,
            attempt=1,
            outcomes={"email": None, "webhook": "timeout"},
            now=DAY14,
            max_attempts=8,
            backoff_base=0,
        )
    with db.sessions.begin() as session:
        engine.enqueue_due_reminders(session, now=DAY14)
        message = engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14)
    assert message is not None and message.delivered == frozenset({"email"})


def test_reaper_republishes_what_a_lost_message_or_a_dead_worker_left(
    db: Database, raised: CaseDriver
) -> None:
    with db.sessions.begin() as session:
        (reminder_id,) = engine.enqueue_due_reminders(session, now=DAY14)
    stale = timedelta(minutes=2)
    with db.sessions.begin() as session:
        assert (
            engine.reap_reminders(session, now=DAY14 + timedelta(minutes=1), stale_after=stale) == 0
        )
        assert engine.reap_reminders(session, now=DAY14 + stale, stale_after=stale) == 1
    with db.sessions.begin() as session:
        assert engine.enqueue_due_reminders(session, now=DAY14 + stale) == [reminder_id]
        assert engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14 + stale)
    # The worker dies while sending: the claim goes stale and the reminder is sent again.
    later = DAY14 + 2 * stale
    with db.sessions.begin() as session:
        assert engine.reap_reminders(session, now=later, stale_after=stale) == 1
        assert engine.enqueue_due_reminders(session, now=later) == [reminder_id]
        message = engine.claim_reminder(session, reminder_id=reminder_id, now=later)
    assert message is not None and message.attempt == 2


def test_a_late_result_does_not_overwrite_a_newer_attempt(db: Database, raised: CaseDriver) -> None:
    stale = timedelta(minutes=2)
    with db.sessions.begin() as session:
        (reminder_id,) = engine.enqueue_due_reminders(session, now=DAY14)
        first = engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14)
    later = DAY14 + stale
    with db.sessions.begin() as session:
        engine.reap_reminders(session, now=later, stale_after=stale)
        engine.enqueue_due_reminders(session, now=later)
        second = engine.claim_reminder(session, reminder_id=reminder_id, now=later)
    assert first is not None and second is not None and second.attempt == 2
    with db.sessions.begin() as session:
        late = engine.record_reminder_delivery(
            session,
            reminder_id=reminder_id,
            attempt=1,
            outcomes={"webhook": "timeout"},
            now=later,
            max_attempts=1,
            backoff_base=0,
        )
    assert late == "superseded"
    assert _status(db, raised) == {"referral_due_2_weeks": "sending"}, "attempt 2 still owns it"


def test_cancelling_a_case_stops_a_reminder_already_published(
    db: Database, raised: CaseDriver
) -> None:
    with db.sessions.begin() as session:
        (reminder_id,) = engine.enqueue_due_reminders(session, now=DAY14)
    with db.sessions.begin() as session:
        engine.cancel_case(
            session,
            case_id=raised.id,
            reason="patient moved away",
            clock=raised.clock,
            actor="coordinator:ana",
        )
    with db.sessions.begin() as session:
        assert engine.claim_reminder(session, reminder_id=reminder_id, now=DAY14) is None
    assert _status(db, raised) == {"referral_due_2_weeks": "cancelled"}


def _raise_one(db: Database, ref: str) -> CaseDriver:
    case = CaseDriver(db)
    case.screen_clear(disabling_pain=True, patient_ref=ref)
    case.start_conservative()
    case.wait_until(14)
    return case


def test_a_batch_is_claimed_once_and_each_reminder_recorded_on_its_own(
    db: Database, raised: CaseDriver
) -> None:
    others = [_raise_one(db, f"MRN-REM-{n}") for n in (2, 3)]
    with db.sessions.begin() as session:
        ids = engine.enqueue_due_reminders(session, now=DAY14)
    assert len(ids) == 3
    with db.sessions.begin() as session:
        # The ids out of order and one twice: each is claimed once, in the order given.
        batch = engine.claim_reminders(session, reminder_ids=[ids[2], ids[0], ids[2]], now=DAY14)
    assert [m.id for m in batch] == [ids[2], ids[0]]
    assert {m.patient_ref for m in batch} == {"MRN-REM-1", "MRN-REM-3"}
    with db.sessions.begin() as session:
        # A duplicate of the message claims nothing; the id left out is still there to claim.
        again = engine.claim_reminders(session, reminder_ids=ids, now=DAY14)
    assert [m.id for m in again] == [ids[1]]
    claimed = {m.id: m for m in [*batch, *again]}
    with db.sessions.begin() as session:
        statuses = engine.record_reminder_deliveries(
            session,
            [
                engine.ReminderDelivery(ids[0], claimed[ids[0]].attempt, {"webhook": None}),
                engine.ReminderDelivery(ids[1], claimed[ids[1]].attempt, {"webhook": "HTTP 503"}),
                engine.ReminderDelivery(ids[2], 7, {"webhook": None}),  # not the claimed attempt
            ],
            now=DAY14,
            max_attempts=8,
            backoff_base=30,
        )
    assert statuses == {ids[0]: "sent", ids[1]: "pending", ids[2]: "superseded"}
    with db.sessions() as session:
        records = {
            r.id: r
            for case in (raised, *others)
            for r in engine.list_reminders(session, case_id=case.id)[0]
        }
    assert (records[ids[0]].status, records[ids[0]].sent_at, records[ids[0]].last_error) == (
        "sent",
        DAY14,
        None,
    )
    assert (records[ids[1]].status, records[ids[1]].last_error) == ("pending", "webhook: HTTP 503")
    assert records[ids[1]].next_attempt_at == DAY14 + timedelta(seconds=30)
    assert records[ids[2]].status == "sending", "its claimed attempt still owns it"
