"""Idempotent case creation: an ``Idempotency-Key`` names one request, and a retry of it
returns the case the first one started."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import IdempotencyKeyReused
from ..store import idempotency_keys
from .views import CaseView, get_case


def _fingerprint(**request: Any) -> str:
    """What identifies a request: the SHA-256 of its fields."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


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

    The same key with a different request is refused: a key names one request.
    """
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
