"""Seeding benchmark databases: many cases that are copies of one real engine state.

A case driven through the engine once is copied ``count`` times, with its timer and
ready-task rows (and the ready tasks' roles, which the worklist matches), each copy under its own id and patient reference. On PostgreSQL the copy
runs inside the server (``INSERT ... SELECT`` over ``generate_series``), so a million
timers take seconds rather than minutes; elsewhere rows are copied in batches from Python.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import String

import engine
from engine.store import case_task_roles, case_tasks, case_timers, cases
from tests.data import GOOD_PLAN, NO_RED_FLAGS

# In this order: a ready task's roles refer to its row in case_tasks.
CHILD_TABLES = (case_timers, case_tasks, case_task_roles)


def clone_case(
    db: Engine,
    source: str,
    count: int,
    *,
    ref_prefix: str,
    due_shift: timedelta | None = None,
    batch: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Copy case ``source`` ``count`` times (timers moved by ``due_shift``); return the ids."""
    ids: list[str] = []
    in_server = db.dialect.name == "postgresql"
    rows = None if in_server else _source_rows(db, source)
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        new = [str(uuid.uuid4()) for _ in range(size)]
        if rows is None:
            _copy_in_server(db, source, new, ref_prefix=ref_prefix, first=offset, shift=due_shift)
        else:
            _copy_from_python(db, rows, new, ref_prefix=ref_prefix, first=offset, shift=due_shift)
        ids += new
        if progress is not None:
            progress(len(ids))
    return ids


def _copy_in_server(
    db: Engine,
    source: str,
    new: list[str],
    *,
    ref_prefix: str,
    first: int,
    shift: timedelta | None,
) -> None:
    copied = [c.name for c in cases.columns if c.name not in ("id", "patient_ref")]
    columns = ", ".join(copied)
    with db.begin() as conn:
        # ids[g] pairs each new id with its patient reference number.
        params: dict[str, Any] = {"source": source, "prefix": ref_prefix, "first": first}
        ids = bindparam("ids", new, type_=ARRAY(String))
        conn.execute(
            text(
                f"INSERT INTO cases (id, patient_ref, {columns}) "
                f"SELECT (:ids)[g], :prefix || (:first + g - 1)::text, {columns} "
                "FROM cases, generate_series(1, cardinality(:ids)) AS g WHERE cases.id = :source"
            ).bindparams(ids),
            params,
        )
        for table in CHILD_TABLES:
            kept = [c.name for c in table.columns if c.name not in ("id", "case_id")]
            values = [
                f"{name} + :shift" if name == "due_at" and table is case_timers and shift else name
                for name in kept
            ]
            conn.execute(
                text(
                    f"INSERT INTO {table.name} (case_id, {', '.join(kept)}) "
                    f"SELECT new_id, {', '.join(values)} FROM {table.name}, "
                    f"unnest(:ids) AS new_id WHERE case_id = :source"
                ).bindparams(ids),
                params | ({"shift": shift} if shift else {}),
            )


def _source_rows(db: Engine, source: str) -> tuple[dict[str, Any], dict[Any, list[Any]]]:
    """The source case's row, and its timer, ready-task and role rows without their ids."""
    with db.connect() as conn:
        row = conn.execute(select(cases).where(cases.c.id == source)).one()._asdict()
        children = {
            table: [
                {k: v for k, v in r._asdict().items() if k != "id"}
                for r in conn.execute(select(table).where(table.c.case_id == source))
            ]
            for table in CHILD_TABLES
        }
    return row, children


def _copy_from_python(
    db: Engine,
    source_rows: tuple[dict[str, Any], dict[Any, list[Any]]],
    new: list[str],
    *,
    ref_prefix: str,
    first: int,
    shift: timedelta | None,
) -> None:
    row, children = source_rows
    case_rows = []
    child_rows: dict[Any, list[dict[str, Any]]] = {table: [] for table in CHILD_TABLES}
    for n, new_id in enumerate(new):
        case_rows.append(row | {"id": new_id, "patient_ref": f"{ref_prefix}{first + n}"})
        for table, rows in children.items():
            for child in rows:
                copy = child | {"case_id": new_id}
                if table is case_timers and shift:
                    copy["due_at"] = child["due_at"] + shift
                child_rows[table].append(copy)
    with db.begin() as conn:
        conn.execute(insert(cases), case_rows)
        for table, rows in child_rows.items():
            if rows:
                conn.execute(insert(table), rows)


__all__ = ["clone_case"]


# -- the timer benchmarks' databases ----------------------------------------------------------------------------
def fresh_database(admin_url: str, name: str) -> Engine:
    admin = engine.make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    db = engine.make_engine(admin_url.rsplit("/", 1)[0] + f"/{name}")
    engine.upgrade(db)
    return db


def source_case(db: Engine, *, care_starts: datetime, ref: str) -> str:
    """A disabling-pain case whose conservative care started at ``care_starts``: its 2-week
    referral deadline (with the ``referral_due_2_weeks`` reminder) falls 14 days later."""
    clock = engine.SimulatedClock(care_starts)
    onset = (care_starts - timedelta(days=5)).date().isoformat()
    sessions = engine.session_factory(db)
    with sessions.begin() as session:
        engine.deploy_bundled(session, now=care_starts)
        view = engine.start_case(
            session,
            pathway="lumbar_radiculopathy",
            clock=clock,
            actor="coordinator:bench",
            patient_ref=ref,
            first_step_data={
                "side": "left",
                "symptom_onset": onset,
                "leg_pain_nrs": 7,
                "disabling_pain": True,
                "age": 44,
            },
        )
        for step, data in (("red_flag_screen", NO_RED_FLAGS), ("conservative_plan", GOOD_PLAN)):
            view = engine.complete_task(
                session, case_id=view.id, step=step, data=data, clock=clock, actor="bench"
            )
    return view.id


def analyze(db: Engine) -> None:
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def progress(label: str, total: int) -> Callable[[int], None]:
    started = time.perf_counter()

    def report(done: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"  {label}: {done:,}/{total:,} ({rate:,.0f}/s)", flush=True)

    return report
