"""Moving one case of a migration onto another version, in the caller's transaction: restore
it, carry its tree over (``runtime.move``), check that no waiting timer's due time moved,
write the ``migrated`` event, save it, and point its rows at the new version."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, update
from sqlalchemy.orm import Session

from .. import definitions
from ..clock import Clock
from ..definitions import DefinitionInfo
from ..runtime import CaseRun
from ..runtime import move as tree
from ..store import case_task_roles, case_tasks, cases
from ..vocabulary import CaseStatus, EventType
from .commands import restore
from .persistence import lock, save

MOVED, SKIPPED = "moved", "skipped"


@dataclass(frozen=True)
class CaseMove:
    """One case of a migration: whether it can move (dry run) or what happened to it."""

    case_id: str
    outcome: str
    reason: str | None = None


def _refresh_ready_rows(session: Session, run: CaseRun) -> None:
    """The ready-step rows keep their ready time; their name, role and roles are the new
    version's."""
    session.execute(delete(case_task_roles).where(case_task_roles.c.case_id == run.case_id))
    roles = []
    for ready in run.ready_steps():
        step = ready.step
        session.execute(
            update(case_tasks)
            .where(case_tasks.c.case_id == run.case_id, case_tasks.c.task_id == ready.task_id)
            .values(name=step.name if step else None, role=step.role if step else None)
        )
        roles += [
            {"case_id": run.case_id, "task_id": ready.task_id, "role": role}
            for role in (step.roles if step else ())
        ]
    if roles:
        session.execute(insert(case_task_roles), roles)


def move_case(
    session: Session,
    *,
    case_id: str,
    old: DefinitionInfo,
    new: DefinitionInfo,
    plan: tree.Plan,
    clock: Clock,
    actor: str | None,
    migration_id: int | None,
) -> CaseMove:
    """Move one case in the caller's transaction; raise ``MigrationRefused`` to leave it."""
    row = lock(session, case_id)._asdict()
    if row["status"] != CaseStatus.ACTIVE:
        return CaseMove(case_id, SKIPPED, f"the case is {row['status']}")
    if row["definition_id"] != old.id:
        return CaseMove(case_id, SKIPPED, f"no longer on version {old.version}")
    run = restore(session, row, clock=clock, actor=actor)
    timers = {t.task_id: t.due_at for t in run.waiting_timers()}
    tree.apply(run.workflow, plan)
    run.pathway = definitions.load(session, new.id, bundle_sha256=new.bundle_sha256)
    run._changed()
    run.timers_before = set()  # the timer rows are rewritten with the new version's names
    moved_timers = [t for t in run.waiting_timers() if timers.get(t.task_id, t.due_at) != t.due_at]
    if moved_timers:  # never expected: apply keeps every task's internal data
        raise tree.MigrationRefused(f"the timer `{moved_timers[0].step}` would change its due time")
    run.journal.event(
        EventType.MIGRATED,
        None,
        actor=actor,
        from_version=old.version,
        to_version=new.version,
        migration=migration_id,
        timers_kept=[
            {"step": t.step, "due_at": t.due_at.isoformat()} for t in run.waiting_timers()
        ],
    )
    run.run_engine()
    save(
        session,
        run=run,
        row=row,
        now=clock.now(),
        patient_ref=row["patient_ref"],
        status=CaseStatus(row["status"]),
    )
    session.execute(update(cases).where(cases.c.id == case_id).values(definition_id=new.id))
    _refresh_ready_rows(session, run)
    return CaseMove(case_id, MOVED)
