"""A driver that walks one case through the pathway on a simulated clock, checking after each
step that the stored case reloads with nothing changed."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pytest
from sqlalchemy import select

import engine
from engine import definitions
from engine.runtime.state import dump_state, load_state, load_state_and_memo
from engine.sandbox import script_engine
from engine.store import cases
from tests.conftest import Database
from tests.data import GOOD_PLAN, NO_RED_FLAGS

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def intake(**overrides: Any) -> dict[str, Any]:
    """Intake data for a synthetic patient."""
    data = {
        "patient_ref": "P-001",
        "side": "left",
        "symptom_onset": "2025-12-29",
        "leg_pain_nrs": 6,
        "disabling_pain": False,
        "age": 44,
    }
    data.update(overrides)
    return data


class CaseDriver:
    """One case on a simulated clock, with the actions a care team takes."""

    def __init__(self, db: Database, start: datetime = START, *, zone: tzinfo = UTC) -> None:
        self.db = db
        self.start = start
        self.clock = engine.SimulatedClock(start, zone=zone)
        with db.sessions.begin() as session:
            engine.deploy_bundled(session, now=start)
            self.id = engine.start_case(
                session, pathway="lumbar_radiculopathy", clock=self.clock, actor="coordinator:ana"
            ).id
        self.check_round_trip()

    # -- time --------------------------------------------------------------------------
    def at_day(self, day: float) -> datetime:
        return self.start + timedelta(days=day)

    def wait_until(self, day: float) -> None:
        """Let simulated time pass to a day, firing each timer at its own due time."""
        until = self.at_day(day)
        while True:
            with self.db.sessions() as session:
                due = engine.next_due(session)
            if due is None or due > until:
                break
            self.clock.set(max(due, self.clock.now()))
            with self.db.sessions.begin() as session:
                report = engine.fire_due(session, now=self.clock.now(), zone=self.clock.zone)
            assert not report.failed, report.failed
            self.check_round_trip()
        self.clock.set(until)

    # -- actions -------------------------------------------------------------------------
    def complete(
        self,
        step: str,
        data: dict[str, Any],
        *,
        day: float | None = None,
        actor: str = "clinician:lee",
    ) -> engine.CaseView:
        if day is not None:
            self.wait_until(day)
        with self.db.sessions.begin() as session:
            view = engine.complete_task(
                session, case_id=self.id, step=step, data=data, clock=self.clock, actor=actor
            )
        self.check_round_trip()
        return view

    def amend(
        self,
        step: str,
        data: dict[str, Any],
        *,
        day: float | None = None,
        actor: str = "coordinator:ana",
        roles: frozenset[str] | None = None,
        reason: str = "entered wrongly",
    ) -> engine.CaseView:
        if day is not None:
            self.wait_until(day)
        with self.db.sessions.begin() as session:
            view = engine.amend_task(
                session,
                case_id=self.id,
                step=step,
                data=data,
                reason=reason,
                clock=self.clock,
                actor=actor,
                roles=roles,
            )
        self.check_round_trip()
        return view

    def report_red_flag(self, data: dict[str, Any], *, day: float) -> engine.CaseView:
        self.wait_until(day)
        with self.db.sessions.begin() as session:
            view = engine.deliver_message(
                session,
                case_id=self.id,
                message="red_flag_reported",
                data=data,
                clock=self.clock,
                actor="clinician:lee",
            )
        self.check_round_trip()
        return view

    def screen_clear(self, **intake_overrides: Any) -> None:
        self.complete("intake", intake(**intake_overrides), actor="coordinator:ana")
        self.complete("red_flag_screen", NO_RED_FLAGS)

    def start_conservative(self, *, day: float = 0, **plan: Any) -> None:
        self.complete("conservative_plan", {**GOOD_PLAN, **plan}, day=day)

    # -- reading -------------------------------------------------------------------------
    @property
    def view(self) -> engine.CaseView:
        with self.db.sessions() as session:
            return engine.get_case(session, self.id, clock=self.clock)

    @property
    def ready(self) -> list[str]:
        return [t.id for t in self.view.ready_tasks]

    def events(self, type_: str | None = None) -> list[engine.Event]:
        with self.db.sessions() as session:
            found = engine.timeline(session, self.id)
        return [e for e in found if type_ is None or e.type == type_]

    def reminders(self) -> dict[str, datetime]:
        """Reminder kind -> due time, for every reminder raised on the case."""
        return {r.kind: r.due_at for r in self.view.reminders}

    def reminder_events(self) -> list[tuple[str, datetime]]:
        return [(e.detail["reminder"], e.at) for e in self.events("reminder")]

    def variances(self) -> list[str]:
        return [v.code for v in self.view.variances]

    def deadlines(self) -> dict[str, datetime]:
        return {d.kind: d.due_at for d in self.view.deadlines}

    def data(self) -> dict[str, Any]:
        """The data the next ready step sees (for checking decision outputs)."""
        with self.db.sessions() as session:
            row = session.execute(select(cases).where(cases.c.id == self.id)).one()
            pathway = definitions.load(session, row.definition_id)
        workflow = load_state(
            row.state, parsed=pathway.parsed, script_engine=script_engine(self.clock)
        )
        from SpiffWorkflow.util.task import TaskState

        ready = workflow.get_tasks(state=TaskState.READY)
        latest = ready[0] if ready else workflow.last_task
        return dict(latest.data)

    def check_round_trip(self) -> None:
        """The stored case reloads and saves again with nothing changed."""
        with self.db.sessions() as session:
            row = session.execute(select(cases).where(cases.c.id == self.id)).one()
            pathway = definitions.load(session, row.definition_id)
        stored = json.loads(zlib.decompress(row.state))
        workflow, memo = load_state_and_memo(
            row.state, parsed=pathway.parsed, script_engine=script_engine(self.clock)
        )
        again = json.loads(zlib.decompress(dump_state(workflow, memo)))
        assert again == stored


@pytest.fixture
def case(db: Database) -> Iterator[CaseDriver]:
    yield CaseDriver(db)
