"""Claims: a coordinator or clinician says "I am working this step", so that two people do
not work the same one. A signpost, not a lock: anyone of the step's role may still complete
it, and the timeline shows who claimed, who released and who completed."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import NotPermitted, TaskNotReady
from ..store import case_events, case_task_roles, case_tasks
from ..vocabulary import EventType, Role
from .persistence import lock

log = logging.getLogger(__name__)


def _ready_row(session: Session, *, case_id: str, step: str) -> tuple[str, str | None]:
    rows = session.execute(
        select(case_tasks.c.task_id, case_tasks.c.step, case_tasks.c.claimed_by).where(
            case_tasks.c.case_id == case_id
        )
    ).all()
    for row in rows:
        if row.step == step:
            return row.task_id, row.claimed_by
    raise TaskNotReady(case_id, step, sorted({r.step for r in rows}))


def _check_role(
    session: Session, *, case_id: str, task_id: str, step: str, roles: frozenset[str] | None
) -> None:
    if roles is None or Role.ADMIN in roles:
        return
    allowed = set(
        session.scalars(
            select(case_task_roles.c.role).where(
                case_task_roles.c.case_id == case_id, case_task_roles.c.task_id == task_id
            )
        )
    )
    if allowed and not allowed & roles:
        raise NotPermitted(step, sorted(allowed))


def _set_claim(
    session: Session,
    *,
    case_id: str,
    step: str,
    actor: str,
    roles: frozenset[str] | None,
    clock: Clock,
    claim: bool,
) -> tuple[str | None, datetime | None]:
    lock(session, case_id)  # the case exists; no change of it interleaves
    task_id, previous = _ready_row(session, case_id=case_id, step=step)
    _check_role(session, case_id=case_id, task_id=task_id, step=step, roles=roles)
    now = clock.now()
    holder, since = (actor, now) if claim else (None, None)
    session.execute(
        update(case_tasks)
        .where(case_tasks.c.case_id == case_id, case_tasks.c.task_id == task_id)
        .values(claimed_by=holder, claimed_at=since)
    )
    session.execute(
        insert(case_events).values(
            case_id=case_id,
            at=now,
            type=EventType.TASK_CLAIMED if claim else EventType.TASK_UNCLAIMED,
            step=step,
            actor=actor,
            detail={"previous": previous} if previous and previous != holder else {},
            evidence=None,
        )
    )
    log.info("case %s: step %s %s", case_id, step, "claimed" if claim else "released")
    return holder, since


def claim_task(
    session: Session,
    *,
    case_id: str,
    step: str,
    actor: str,
    roles: frozenset[str] | None,
    clock: Clock,
) -> tuple[str | None, datetime | None]:
    """Claim a ready step for the caller (of its role); return who holds it and since when.
    Claiming a step someone else holds takes it over, and the timeline says from whom."""
    return _set_claim(
        session, case_id=case_id, step=step, actor=actor, roles=roles, clock=clock, claim=True
    )


def unclaim_task(
    session: Session,
    *,
    case_id: str,
    step: str,
    actor: str,
    roles: frozenset[str] | None,
    clock: Clock,
) -> tuple[str | None, datetime | None]:
    """Release the claim on a ready step (anyone of its role may, as a hand-over)."""
    return _set_claim(
        session, case_id=case_id, step=step, actor=actor, roles=roles, clock=clock, claim=False
    )
