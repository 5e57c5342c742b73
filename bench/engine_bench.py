"""Engine benchmarks: the cost of advancing a stored case against bare SpiffWorkflow, the size
of stored state, and how fire_due scales with waiting cases. Prints figures and ratios
measured in one run (the machine is shared and noisy: compare ratios, not absolute times).

    .venv/bin/python bench/engine_bench.py [--cases 300] [--waiting 100000] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import (
    TimerConditionalEventDefinitionConverter,
)
from SpiffWorkflow.dmn.serializer.task_spec import BaseBusinessRuleTaskConverter
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, text, update

import engine
from bench.seeding import clone_case
from engine import cases as case_module
from engine import definitions
from engine.diagrams import BusinessRuleTask, ClockedCycle, ClockedDuration, ClockedTimeDate
from engine.runtime.state import load_state
from engine.sandbox import script_engine
from engine.store import case_timers, cases, metadata
from tests.data import GOOD_PLAN as PLAN
from tests.data import NO_RED_FLAGS as SCREEN

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INTAKE = {
    "patient_ref": "P-BENCH",
    "side": "left",
    "symptom_onset": "2025-12-29",
    "leg_pain_nrs": 7,
    "disabling_pain": True,
    "age": 44,
}
REFERRAL = {"referral_date": "2026-01-07", "specialty": "spine surgery"}


def _spiff_serializer() -> BpmnWorkflowSerializer:
    registry = BpmnWorkflowSerializer.configure()
    BaseBusinessRuleTaskConverter(BusinessRuleTask, registry)
    for timer in (ClockedTimeDate, ClockedDuration, ClockedCycle):
        TimerConditionalEventDefinitionConverter(timer, registry)
    return BpmnWorkflowSerializer(registry=registry)


def _prepare_db(url: str) -> Any:
    """An empty database: SQLite as given; on PostgreSQL a fresh database of the bench's own
    beside the one named (which is left untouched)."""
    if url.startswith("postgresql"):
        admin = engine.make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "pathway_engine_bench" WITH (FORCE)'))
            conn.execute(text('CREATE DATABASE "pathway_engine_bench"'))
        admin.dispose()
        url = url.rsplit("/", 1)[0] + "/pathway_engine_bench"
    db = engine.make_engine(url)
    metadata.create_all(db)
    return db


def _case_at_referral(sessions: Any, clock: engine.SimulatedClock) -> str:
    """A case in conservative care with its disabling-pain referral ready and 3 timers."""
    with sessions.begin() as session:
        definitions.deploy_bundled(session, now=START)
        case_id = engine.start_case(
            session, pathway="lumbar_radiculopathy", clock=clock, actor="bench"
        ).id
        for step, data in (
            ("intake", INTAKE),
            ("red_flag_screen", SCREEN),
            ("conservative_plan", PLAN),
        ):
            engine.complete_task(
                session, case_id=case_id, step=step, data=data, clock=clock, actor="bench"
            )
    return case_id


def _median_rate(fn: Callable[[], None], count: int) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / count


def bench_advance(url: str, n: int) -> tuple[float, float, int, int]:
    """Per-op seconds for our stored advance and for bare SpiffWorkflow, and state sizes."""
    db = _prepare_db(url)
    sessions = engine.session_factory(db)
    clock = engine.SimulatedClock(START + timedelta(days=3))
    source = _case_at_referral(sessions, clock)
    ids = clone_case(db, source, n, ref_prefix="P-BENCH-")

    def ours() -> None:
        for case_id in ids:
            with sessions.begin() as session:
                case_module.advance(
                    session,
                    case_id=case_id,
                    clock=clock,
                    actor="bench",
                    action=lambda run: run.complete("specialist_referral", REFERRAL),
                )

    ours_per_op = _median_rate(ours, n)

    serializer = _spiff_serializer()
    with sessions() as session:
        row = session.execute(select(cases).where(cases.c.id == source)).one()
        pathway = definitions.load(session, row.definition_id)
    workflow = load_state(row.state, parsed=pathway.parsed, script_engine=script_engine(clock))
    full_json = serializer.serialize_json(workflow)
    stored = len(row.state)
    samples = [full_json] * n

    def bare() -> None:
        for blob in samples:
            wf = serializer.deserialize_json(blob)
            wf.script_engine = script_engine(clock)
            task = next(
                t
                for t in wf.get_tasks(state=TaskState.READY)
                if t.task_spec.bpmn_id == "specialist_referral"
            )
            task.set_data(**REFERRAL)
            task.run()
            wf.refresh_timers()
            wf.do_engine_steps()
            serializer.serialize_json(wf)

    bare_per_op = _median_rate(bare, n)
    db.dispose()
    print(f"(state without spec, before compression: {len(zlib.decompress(row.state)):d} bytes)")
    return ours_per_op, bare_per_op, stored, len(full_json.encode())


def bench_fire_due(url: str, *, waiting: int, due: int) -> float:
    """Seconds for fire_due to advance ``due`` cases among ``waiting`` others."""
    db = _prepare_db(url)
    sessions = engine.session_factory(db)
    clock = engine.SimulatedClock(START)
    source = _case_at_referral(sessions, clock)
    clone_case(db, source, waiting, ref_prefix="P-WAIT-", due_shift=timedelta(days=365))
    due_ids = clone_case(db, source, due, ref_prefix="P-DUE-")
    with sessions.begin() as session:  # the source itself waits too
        session.execute(
            update(case_timers)
            .where(case_timers.c.case_id == source)
            .values(due_at=START + timedelta(days=400))
        )
    if url.startswith("postgresql"):
        with db.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    now = START + timedelta(days=14, hours=1)  # the 2-week timer of the due cases
    t0 = time.perf_counter()
    with sessions.begin() as session:
        report = engine.fire_due(session, now=now)
    elapsed = time.perf_counter() - t0
    assert len(report.cases) == due, (len(report.cases), due)
    assert set(report.cases) == set(due_ids)
    db.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="cases advanced per measure")
    parser.add_argument("--waiting", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "PATHWAY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()

    print(f"# engine benchmarks ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores)")
    print("\n## advancing a stored case (load, complete a step, run, save)")
    ours, bare, stored, full = bench_advance("sqlite://", args.cases)
    print(f"in-memory SQLite : {ours * 1000:7.2f} ms/op")
    print(f"bare SpiffWorkflow (deserialize, complete, run, serialize): {bare * 1000:7.2f} ms/op")
    print(f"ratio SQLite / bare: {ours / bare:.2f}x   (target <= 2x)")
    try:
        pg_ours, pg_bare, _, _ = bench_advance(args.pg, args.cases)
        print(
            f"PostgreSQL       : {pg_ours * 1000:7.2f} ms/op  "
            f"(ratio to bare in the same run: {pg_ours / pg_bare:.2f}x)"
        )
    except Exception as exc:
        print(f"PostgreSQL       : not measured ({exc.__class__.__name__}: {exc})")

    print("\n## stored state per case")
    print(f"stored (no spec, compressed): {stored:6d} bytes")
    print(f"SpiffWorkflow full JSON     : {full:6d} bytes")
    print(f"ratio: {stored / full:.1%}   (target <= 40%)")

    print(f"\n## fire_due: {args.due} due cases among N waiting")
    for label, url in (
        ("SQLite file", "sqlite:///" + str(Path("/tmp") / "pathway_bench.db")),
        ("PostgreSQL", args.pg),
    ):
        if url.startswith("sqlite"):
            Path(url[len("sqlite:///") :]).unlink(missing_ok=True)
        try:
            small = bench_fire_due(url, waiting=args.due, due=args.due)
            if url.startswith("sqlite"):
                Path(url[len("sqlite:///") :]).unlink(missing_ok=True)
            large = bench_fire_due(url, waiting=args.waiting, due=args.due)
        except Exception as exc:
            print(f"{label}: not measured ({exc.__class__.__name__}: {exc})")
            continue
        print(
            f"{label}: among {args.due:>7,}: {small:6.2f} s   among {args.waiting:>7,}: "
            f"{large:6.2f} s   ratio {large / small:.2f}x   (target <= 1.5x)"
        )


if __name__ == "__main__":
    main()
