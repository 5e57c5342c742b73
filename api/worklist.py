"""The routes across cases: the worklist and claims on its steps, and reminders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

import engine

from .auth import Forbidden
from .dependencies import (
    Caller,
    CaseId,
    Clock,
    StepId,
    Transaction,
    error_responses,
    known_query_only,
)
from .schemas import (
    ClaimOut,
    Identifier,
    ReminderPageOut,
    WorkPageOut,
)

router = APIRouter(dependencies=[Depends(known_query_only)])


@router.get(
    "/reminders", response_model=ReminderPageOut, tags=["reminders"], responses=error_responses()
)
def reminders(
    caller: Caller,
    session: Transaction,
    case_id: Annotated[Identifier | None, Query(max_length=36)] = None,
    kind: Annotated[Identifier | None, Query(max_length=200)] = None,
    status: engine.ReminderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ReminderPageOut:
    """Reminders by case, kind and delivery status, newest first, with attempts and the
    last error of a failed one."""
    records, total = engine.list_reminders(
        session, case_id=case_id, kind=kind, status=status, limit=limit, offset=offset
    )
    return ReminderPageOut.model_validate(
        {"items": records, "total": total, "limit": limit, "offset": offset}
    )


@router.get("/worklist", response_model=WorkPageOut, tags=["worklist"], responses=error_responses())
def worklist(
    caller: Caller,
    session: Transaction,
    clock: Clock,
    role: engine.Role | None = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    pathway: Annotated[Identifier | None, Query(max_length=200)] = None,
    claimed: Literal["any", "mine", "unclaimed"] = "any",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkPageOut:
    """Ready steps the caller's roles may do (or one of them: ``role``), most urgent first:
    red-flag branches, then overdue, then the earliest deadline; with who holds each, and
    filters for overdue, escalated, pathway and claims (``mine``, ``unclaimed``, ``any``)."""
    if engine.Role.ADMIN in caller.roles:
        roles = None if role is None else frozenset({role})
    elif role is None:
        roles = caller.roles & engine.CARE_ROLES
    elif role in caller.roles:
        roles = frozenset({role})
    else:
        raise Forbidden(
            f"you do not hold the role {role}: your roles are {', '.join(sorted(caller.roles))}"
        )
    page = engine.worklist(
        session,
        now=clock.now(),
        roles=roles,
        limit=limit,
        offset=offset,
        overdue=overdue,
        escalated=escalated,
        pathway=pathway,
        claimed=claimed,
        actor=caller.sub,
    )
    return WorkPageOut.model_validate(page)


def _claim_answer(case_id: str, task: str, held: tuple[str | None, datetime | None]) -> ClaimOut:
    return ClaimOut(case_id=case_id, task=task, claimed_by=held[0], claimed_at=held[1])


@router.post(
    "/cases/{case_id}/tasks/{task_id}/claim",
    response_model=ClaimOut,
    tags=["worklist"],
    responses=error_responses(404, 409),
)
def claim(
    case_id: CaseId, task_id: StepId, caller: Caller, session: Transaction, clock: Clock
) -> ClaimOut:
    """Say you are working a ready step (a signpost, not a lock; in the timeline)."""
    held = engine.claim_task(
        session, case_id=case_id, step=task_id, actor=caller.sub, roles=caller.roles, clock=clock
    )
    return _claim_answer(case_id, task_id, held)


@router.post(
    "/cases/{case_id}/tasks/{task_id}/unclaim",
    response_model=ClaimOut,
    tags=["worklist"],
    responses=error_responses(404, 409),
)
def unclaim(
    case_id: CaseId, task_id: StepId, caller: Caller, session: Transaction, clock: Clock
) -> ClaimOut:
    """Release the claim on a ready step (in the timeline)."""
    held = engine.unclaim_task(
        session, case_id=case_id, step=task_id, actor=caller.sub, roles=caller.roles, clock=clock
    )
    return _claim_answer(case_id, task_id, held)
