"""Moving a pathway's running cases from one version to another.

``preview`` is the dry run: for every running case of the old version, whether it can move
or why not, read from the stored task trees without restoring them. ``start_migration``
records a migration and the cases it will try; ``run_migration`` moves them one by one, each
in its own transaction (a case that cannot move is left exactly as it was and reported),
keeping every waiting timer's due time and writing a ``migrated`` event into the case's
timeline. Running it again moves nothing more: only cases still on the old version are
tried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .. import definitions
from ..clock import Clock
from ..definitions import DefinitionInfo
from ..errors import DefinitionNotFound, MigrationConflict, MigrationInvalid, MigrationNotFound
from ..runtime import move as tree
from ..store import (
    cases,
    definition_migrations,
    migration_cases,
)
from ..vocabulary import CaseStatus
from .moving import MOVED, SKIPPED, CaseMove, move_case

log = logging.getLogger(__name__)

REFUSED, FAILED, PENDING = "refused", "failed", "pending"
RUNNING = "running"

STALE = timedelta(minutes=2)
"""A running migration that has not shown progress for this long has stopped (its process
died): it is marked interrupted, and running it again moves the rest."""
HEARTBEAT = 10.0
"""Seconds between a running migration's signs of life."""


@dataclass(frozen=True)
class MigrationView:
    """A migration (or a dry run): its versions, progress and per-case results."""

    id: int | None
    pathway: str
    from_version: int
    to_version: int
    dry_run: bool
    status: str
    total: int
    counts: dict[str, int]
    cases: list[CaseMove] = field(default_factory=list)
    actor: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


def _version(session: Session, pathway: str, version: int) -> DefinitionInfo:
    definitions.latest(session, pathway)  # DefinitionNotFound (404) for an unknown pathway
    try:
        return definitions.version(session, pathway, version)
    except DefinitionNotFound:
        raise MigrationInvalid(f"{pathway} has no version {version}") from None


def _plan(session: Session, old: DefinitionInfo, new: DefinitionInfo) -> tree.Plan:
    if old.id == new.id:
        raise MigrationInvalid("the versions to migrate from and to are the same")
    before = definitions.load(session, old.id, bundle_sha256=old.bundle_sha256)
    after = definitions.load(session, new.id, bundle_sha256=new.bundle_sha256)
    return tree.plan_for(
        before.parsed,
        after.parsed,
        key=(old.bundle_sha256, new.bundle_sha256),
        to_version=new.version,
    )


def _running(old: DefinitionInfo, *columns: Any) -> Any:
    return (
        select(*(columns or (cases.c.id, cases.c.state)))
        .where(cases.c.definition_id == old.id, cases.c.status == CaseStatus.ACTIVE)
        .order_by(cases.c.created_at, cases.c.id)
    )


def preview(session: Session, *, pathway: str, from_version: int, to_version: int) -> MigrationView:
    """The dry run: every running case of ``from_version``, and whether it can move."""
    old, new = (_version(session, pathway, v) for v in (from_version, to_version))
    plan = _plan(session, old, new)
    moves = []
    for row in session.execute(_running(old).execution_options(yield_per=500)):
        reasons = tree.blockers(row.state, plan, top=pathway)
        moves.append(
            CaseMove(row.id, REFUSED if reasons else "can_move", "; ".join(reasons) or None)
        )
    counts = {"can_move": 0, REFUSED: 0}
    for move in moves:
        counts[move.outcome] += 1
    return MigrationView(
        None, pathway, from_version, to_version, True, "previewed", len(moves), counts, moves
    )


def start_migration(
    session: Session,
    *,
    pathway: str,
    from_version: int,
    to_version: int,
    actor: str | None,
    now: datetime,
) -> int:
    """Record a migration and the running cases it will try; return its id."""
    old, new = (_version(session, pathway, v) for v in (from_version, to_version))
    _plan(session, old, new)  # the versions must be different and load
    stop_stale(session, now=now, pathway=pathway)
    running = session.scalar(
        select(definition_migrations.c.id).where(
            definition_migrations.c.pathway == pathway,
            definition_migrations.c.status == RUNNING,
        )
    )
    if running is not None:
        raise MigrationConflict(pathway, int(running))
    case_ids = list(session.scalars(_running(old, cases.c.id)))
    try:
        with session.begin_nested():
            migration_id = session.scalar(
                insert(definition_migrations)
                .values(
                    pathway=pathway,
                    from_definition_id=old.id,
                    to_definition_id=new.id,
                    from_version=old.version,
                    to_version=new.version,
                    status=RUNNING,
                    total=len(case_ids),
                    actor=actor,
                    created_at=now,
                    heartbeat_at=now,
                )
                .returning(definition_migrations.c.id)
            )
    except IntegrityError:  # another request started one at the same moment
        raise MigrationConflict(pathway, None) from None
    assert migration_id is not None
    if case_ids:
        session.execute(
            insert(migration_cases),
            [{"migration_id": migration_id, "case_id": c, "outcome": PENDING} for c in case_ids],
        )
    log.info(
        "migration %d of %s v%d -> v%d: %d cases",
        migration_id,
        pathway,
        old.version,
        new.version,
        len(case_ids),
    )
    return int(migration_id)


def run_migration(
    sessions: sessionmaker[Session],
    migration_id: int,
    *,
    clock: Clock,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationView:
    """Try every pending case of a migration, each in its own transaction."""
    with sessions() as session:
        head = session.execute(
            select(definition_migrations).where(definition_migrations.c.id == migration_id)
        ).first()
        if head is None:
            raise MigrationNotFound(migration_id)
        old = definitions.info(session, head.from_definition_id)
        new = definitions.info(session, head.to_definition_id)
        plan = _plan(session, old, new)
        pending = list(
            session.scalars(
                select(migration_cases.c.case_id).where(
                    migration_cases.c.migration_id == migration_id,
                    migration_cases.c.outcome == PENDING,
                )
            )
        )
    done = head.total - len(pending)
    finished = False
    beat = time.monotonic()
    try:
        for case_id in pending:
            _move_one(
                sessions,
                migration_id,
                case_id,
                old=old,
                new=new,
                plan=plan,
                clock=clock,
                actor=head.actor,
            )
            done += 1
            if progress is not None:
                progress(done, head.total)
            if time.monotonic() - beat > HEARTBEAT:
                beat = time.monotonic()
                _set_status(sessions, migration_id, RUNNING, clock, heartbeat=True)
        finished = True
    finally:
        # However the loop ends, the migration does not stay "running": a later one may start.
        _set_status(sessions, migration_id, "finished" if finished else "failed", clock)
    with sessions() as session:
        return migration_status(session, migration_id)


def _move_one(
    sessions: sessionmaker[Session],
    migration_id: int,
    case_id: str,
    *,
    old: DefinitionInfo,
    new: DefinitionInfo,
    plan: tree.Plan,
    clock: Clock,
    actor: str | None,
) -> None:
    try:
        with sessions.begin() as session:
            move = move_case(
                session,
                case_id=case_id,
                old=old,
                new=new,
                plan=plan,
                clock=clock,
                actor=actor,
                migration_id=migration_id,
            )
            _record(session, migration_id, move, clock.now())
    except tree.MigrationRefused as exc:
        _record_alone(sessions, migration_id, CaseMove(case_id, REFUSED, exc.reason), clock)
    except (OperationalError, InterfaceError):
        raise  # the database went away: the migration stops here, nothing half-applied
    except Exception as exc:  # one case's failure must not stop the others
        log.warning("migration %d: case %s failed (%s)", migration_id, case_id, type(exc).__name__)
        reason = f"could not be moved ({type(exc).__name__}); it is unchanged"
        _record_alone(sessions, migration_id, CaseMove(case_id, FAILED, reason), clock)


def _set_status(
    sessions: sessionmaker[Session],
    migration_id: int,
    status: str,
    clock: Clock,
    *,
    heartbeat: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status, "heartbeat_at": clock.now()}
    if not heartbeat:
        values["finished_at"] = clock.now()
    try:
        with sessions.begin() as session:
            session.execute(
                update(definition_migrations)
                .where(definition_migrations.c.id == migration_id)
                .values(**values)
            )
    except (OperationalError, InterfaceError):
        if heartbeat:
            raise
        # The database is gone: the row stays "running" until it is seen to be stale.
        log.error("migration %d: its end could not be recorded", migration_id)


def _record(session: Session, migration_id: int, move: CaseMove, now: datetime) -> None:
    session.execute(
        update(migration_cases)
        .where(
            migration_cases.c.migration_id == migration_id,
            migration_cases.c.case_id == move.case_id,
        )
        .values(outcome=move.outcome, reason=move.reason, at=now)
    )


def _record_alone(
    sessions: sessionmaker[Session], migration_id: int, move: CaseMove, clock: Clock
) -> None:
    with sessions.begin() as session:
        _record(session, migration_id, move, clock.now())


def stop_stale(session: Session, *, now: datetime, pathway: str | None = None) -> int:
    """Mark running migrations that have shown no progress for ``STALE`` as interrupted
    (their process stopped; running them again moves the rest); return how many."""
    query = update(definition_migrations).where(
        definition_migrations.c.status == RUNNING,
        func.coalesce(definition_migrations.c.heartbeat_at, definition_migrations.c.created_at)
        < now - STALE,
    )
    if pathway is not None:
        query = query.where(definition_migrations.c.pathway == pathway)
    result = session.execute(query.values(status="interrupted", finished_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def migration_status(
    session: Session, migration_id: int, *, pathway: str | None = None
) -> MigrationView:
    """A migration's progress and per-case results."""
    head = session.execute(
        select(definition_migrations).where(definition_migrations.c.id == migration_id)
    ).first()
    if head is None or (pathway is not None and head.pathway != pathway):
        raise MigrationNotFound(migration_id)
    counts = {MOVED: 0, REFUSED: 0, FAILED: 0, SKIPPED: 0, PENDING: 0}
    for outcome, n in session.execute(
        select(migration_cases.c.outcome, func.count())
        .where(migration_cases.c.migration_id == migration_id)
        .group_by(migration_cases.c.outcome)
    ):
        counts[outcome] = int(n)
    moves = [
        CaseMove(r.case_id, r.outcome, r.reason)
        for r in session.execute(
            select(migration_cases.c.case_id, migration_cases.c.outcome, migration_cases.c.reason)
            .where(migration_cases.c.migration_id == migration_id)
            .order_by(migration_cases.c.case_id)
        )
    ]
    return MigrationView(
        head.id,
        head.pathway,
        head.from_version,
        head.to_version,
        False,
        head.status,
        head.total,
        counts,
        moves,
        head.actor,
        head.created_at,
        head.finished_at,
    )


__all__ = [
    "CaseMove",
    "MigrationView",
    "migration_status",
    "move_case",
    "preview",
    "run_migration",
    "start_migration",
    "stop_stale",
]
