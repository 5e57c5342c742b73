"""Idempotent case creation: an ``Idempotency-Key`` names one request, and a retry of it
returns the case the first one started."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import IdempotencyKeyInUse, IdempotencyKeyReused
from ..store import idempotency_keys
from .views import CaseView, get_case


def _fingerprint(**request: Any) -> str:
    """What identifies a request: the SHA-256 of its fields."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


WAIT_SECONDS = 2.0
"""How long a retry waits for the first request with its key before it is told to retry.
Short, because the wait holds one of the server's few request threads; the first request
normally answers in tens of milliseconds."""


def _wait_for_earlier(session: Session, *, principal: str, idempotency_key: str) -> None:
    """Hold the key for the rest of the transaction, first waiting (bounded) for a request
    that holds it: a retry sent while the first is still running then finds its case.

    On PostgreSQL a transaction-scoped advisory lock on the key's hash, taken before any row
    lock (so it cannot deadlock with the case's), and read committed (the default, which the
    service runs at) lets the statements after the wait see the first request's commit.
    SQLite needs none: a transaction there takes the database's write lock at its first
    statement (BEGIN IMMEDIATE), so a retry already waits for the first one's commit, up to
    the database's busy timeout.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    previous = session.scalar(select(func.current_setting("lock_timeout")))
    session.execute(select(func.set_config("lock_timeout", f"{int(WAIT_SECONDS * 1000)}ms", True)))
    try:
        session.execute(
            select(
                func.pg_advisory_xact_lock(
                    func.hashtextextended(f"{principal}\n{idempotency_key}", 0)
                )
            )
        )
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise IdempotencyKeyInUse(idempotency_key, waited_seconds=WAIT_SECONDS) from None
        raise
    session.execute(select(func.set_config("lock_timeout", previous, True)))


def replay_start(
    session: Session,
    *,
    actor: str | None,
    idempotency_key: str,
    pathway: str,
    patient_ref: str | None,
    first_step_data: dict[str, Any] | None,
    clock: Clock,
) -> CaseView | None:
    """Return the case an earlier identical request with this key started, if there was one.

    The same key with a different request is refused: a key names one request. While the
    first request with the key is still running, this waits for it (at most WAIT_SECONDS).
    """
    _wait_for_earlier(session, principal=actor or "", idempotency_key=idempotency_key)
    seen = session.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.principal == (actor or ""), idempotency_keys.c.key == idempotency_key
        )
    ).first()
    if seen is None:
        return None
    if seen.request_sha256 != _fingerprint(
        pathway=pathway, patient_ref=patient_ref, data=first_step_data
    ):
        raise IdempotencyKeyReused(idempotency_key)
    return get_case(session, seen.case_id, clock=clock)


def remember(
    session: Session,
    *,
    actor: str | None,
    idempotency_key: str,
    pathway: str,
    patient_ref: str | None,
    first_step_data: dict[str, Any] | None,
    case_id: str,
    now: datetime,
) -> None:
    """Record which case a keyed request started, for ``replay_start`` to find."""
    session.execute(
        insert(idempotency_keys).values(
            principal=actor or "",
            key=idempotency_key,
            request_sha256=_fingerprint(
                pathway=pathway, patient_ref=patient_ref, data=first_step_data
            ),
            case_id=case_id,
            created_at=now,
        )
    )
