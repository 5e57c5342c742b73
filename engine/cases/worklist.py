"""Lists across cases: finding cases, and the worklist of ready steps most urgent first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from ..inputs import normalise_patient_ref
from ..store import case_task_roles, case_tasks, cases
from ..vocabulary import CaseStatus, Role


@dataclass(frozen=True)
class CaseSummary:
    """One line of a case list."""

    id: str
    pathway: str
    patient_ref: str | None
    status: str
    version: int
    escalated: bool
    overdue: bool
    end: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CasePage:
    """A page of cases and how many match in all."""

    items: list[CaseSummary]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class WorkItem:
    """A ready step on the worklist."""

    case_id: str
    patient_ref: str | None
    pathway: str
    task: str
    name: str | None
    role: str | None
    urgent: bool
    due_at: datetime | None
    overdue: bool
    ready_at: datetime
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    escalated: bool = False


@dataclass(frozen=True)
class WorkPage:
    """A page of the worklist and how many items match in all."""

    items: list[WorkItem]
    total: int
    limit: int
    offset: int


CLAIMED = ("any", "mine", "unclaimed")
"""The claim filter of a worklist: every item, the caller's claims, or nobody's."""


def _overdue_clause(now: datetime):  # type: ignore[no-untyped-def]
    return exists().where(
        case_tasks.c.case_id == cases.c.id,
        case_tasks.c.due_at.is_not(None),
        case_tasks.c.due_at <= now,
    )


def list_cases(
    session: Session,
    *,
    now: datetime,
    status: str | None = None,
    patient_ref: str | None = None,
    patient_ref_prefix: str | None = None,
    overdue: bool | None = None,
    escalated: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CasePage:
    """Find cases by status, patient (a reference, or its beginning), overdue and escalation,
    newest first."""
    overdue_now = _overdue_clause(now)
    conditions = []
    if status is not None:
        conditions.append(cases.c.status == status)
    if patient_ref is not None:
        try:
            conditions.append(cases.c.patient_ref == normalise_patient_ref(patient_ref))
        except ValueError:  # no reference is spelled so: nothing to look up
            return CasePage([], 0, limit, offset)
    if patient_ref_prefix is not None:
        try:
            prefix = normalise_patient_ref(patient_ref_prefix)
        except ValueError:
            return CasePage([], 0, limit, offset)
        # Compared to the letter: LIKE ignores case on SQLite and not on PostgreSQL.
        conditions.append(func.substr(cases.c.patient_ref, 1, len(prefix)) == prefix)
    if escalated is not None:
        conditions.append(cases.c.escalated == escalated)
    if overdue is not None:
        conditions.append(overdue_now if overdue else ~overdue_now)
    where = and_(*conditions) if conditions else and_(True)
    total = session.scalar(select(func.count()).select_from(cases).where(where)) or 0
    rows = session.execute(
        select(cases, overdue_now.label("overdue"))
        .where(where)
        .order_by(cases.c.created_at.desc(), cases.c.id)
        .limit(limit)
        .offset(offset)
    )
    items = [
        CaseSummary(
            id=r.id,
            pathway=r.pathway,
            patient_ref=r.patient_ref,
            status=r.status,
            version=r.version,
            escalated=r.escalated,
            overdue=bool(r.overdue),
            end=r.end_event,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]
    return CasePage(items, int(total), limit, offset)


def worklist(
    session: Session,
    *,
    now: datetime,
    roles: frozenset[str] | None,
    limit: int = 100,
    offset: int = 0,
    overdue: bool | None = None,
    escalated: bool | None = None,
    pathway: str | None = None,
    claimed: str = "any",
    actor: str | None = None,
) -> WorkPage:
    """Ready steps the roles may do, most urgent first: red-flag branches, then overdue, then
    the earliest deadline, then the longest waiting. ``roles=None`` or admin sees every step.
    Filters: overdue or not, the case escalated or not, a pathway, and ``claimed`` (``mine``:
    claimed by ``actor``; ``unclaimed``; ``any``)."""
    is_overdue = and_(case_tasks.c.due_at.is_not(None), case_tasks.c.due_at <= now)
    conditions = [cases.c.status == CaseStatus.ACTIVE]
    if roles is not None and Role.ADMIN not in roles:
        mine = exists().where(
            case_task_roles.c.case_id == case_tasks.c.case_id,
            case_task_roles.c.task_id == case_tasks.c.task_id,
            case_task_roles.c.role.in_(sorted(roles)),
        )
        conditions.append(or_(case_tasks.c.role.is_(None), mine))
    if overdue is not None:
        conditions.append(is_overdue if overdue else ~is_overdue)
    if escalated is not None:
        conditions.append(cases.c.escalated == escalated)
    if pathway is not None:
        conditions.append(cases.c.pathway == pathway)
    if claimed == "mine":
        conditions.append(case_tasks.c.claimed_by == (actor or ""))
    elif claimed == "unclaimed":
        conditions.append(case_tasks.c.claimed_by.is_(None))
    elif claimed != "any":
        raise ValueError(f"claimed must be one of {', '.join(CLAIMED)}")
    joined = case_tasks.join(cases, cases.c.id == case_tasks.c.case_id)
    where = and_(*conditions)
    total = session.scalar(select(func.count()).select_from(joined).where(where)) or 0
    query = (
        select(case_tasks, cases.c.patient_ref, cases.c.pathway, cases.c.escalated)
        .select_from(joined)
        .where(where)
        .order_by(
            case_tasks.c.urgent.desc(),
            case((is_overdue, 0), else_=1),
            case((case_tasks.c.due_at.is_(None), 1), else_=0),
            case_tasks.c.due_at,
            case_tasks.c.ready_at,
            case_tasks.c.id,
        )
        .limit(limit)
        .offset(offset)
    )
    items = [
        WorkItem(
            case_id=r.case_id,
            patient_ref=r.patient_ref,
            pathway=r.pathway,
            task=r.step,
            name=r.name,
            role=r.role,
            urgent=r.urgent,
            due_at=r.due_at,
            overdue=r.due_at is not None and r.due_at <= now,
            ready_at=r.ready_at,
            claimed_by=r.claimed_by,
            claimed_at=r.claimed_at,
            escalated=r.escalated,
        )
        for r in session.execute(query)
    ]
    return WorkPage(items, int(total), limit, offset)
