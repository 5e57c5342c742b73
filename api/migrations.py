"""Moving a pathway's running cases between versions: the dry run, the migration (run on a
thread of the server) and its progress. Cases are named by their ids only."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import engine

from .definitions import Modeler, PathwayId, Reader
from .dependencies import Clock, Transaction, error_responses, known_query_only

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(known_query_only)], tags=["definitions"])


class MigrationRequest(BaseModel):
    """Which versions to move running cases between, and whether only to try."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_version: int = Field(alias="from", ge=1, le=1_000_000)
    to_version: int = Field(alias="to", ge=1, le=1_000_000)
    dry_run: bool = False


def _view_dict(view: engine.MigrationView) -> dict[str, Any]:
    return {
        "id": view.id,
        "pathway": view.pathway,
        "from": view.from_version,
        "to": view.to_version,
        "dry_run": view.dry_run,
        "status": view.status,
        "total": view.total,
        "done": view.total - view.counts.get("pending", 0),
        "counts": view.counts,
        "actor": view.actor,
        "created_at": view.created_at.isoformat() if view.created_at else None,
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
        "cases": [
            {"case_id": m.case_id, "outcome": m.outcome, "reason": m.reason} for m in view.cases
        ],
        "href": f"/definitions/{view.pathway}/migrations/{view.id}" if view.id else None,
    }


def _run_in_background(app_state: Any, migration_id: int) -> None:
    def run() -> None:
        try:
            engine.run_migration(app_state.sessions, migration_id, clock=app_state.clock)
        except Exception as exc:  # logged without its text (it may hold row values)
            log.error("migration %d stopped: %s", migration_id, type(exc).__name__)

    threading.Thread(target=run, name=f"migration-{migration_id}", daemon=True).start()


@router.post(
    "/definitions/{pathway}/migrations",
    status_code=202,
    responses=error_responses(404, 409),
)
def migrate(
    request: Request,
    session: Transaction,
    caller: Modeler,
    clock: Clock,
    pathway: PathwayId,
    body: MigrationRequest,
) -> JSONResponse:
    """Move the running cases of one version to another.

    With ``dry_run`` the answer (200) says, for every running case of ``from``, whether it
    can move or why not. Without it the migration starts (202) and moves every case that can,
    each in its own transaction, keeping every waiting timer's due time; follow its ``href``
    for progress and the per-case results.
    """
    if body.dry_run:
        view = engine.preview_migration(
            session, pathway=pathway, from_version=body.from_version, to_version=body.to_version
        )
        return JSONResponse(_view_dict(view), status_code=200)
    migration_id = engine.start_migration(
        session,
        pathway=pathway,
        from_version=body.from_version,
        to_version=body.to_version,
        actor=caller.sub,
        now=clock.now(),
    )
    session.commit()
    view = engine.migration_status(session, migration_id)
    _run_in_background(request.app.state, migration_id)
    href = f"/definitions/{pathway}/migrations/{migration_id}"
    return JSONResponse(_view_dict(view), status_code=202, headers={"Location": href})


@router.get("/definitions/{pathway}/migrations/{migration_id}", responses=error_responses(404))
def migration_progress(
    session: Transaction,
    caller: Reader,
    pathway: PathwayId,
    migration_id: Annotated[int, Path(ge=1, le=2_000_000_000)],
) -> dict[str, Any]:
    """A migration's progress and the result for each case."""
    return _view_dict(engine.migration_status(session, migration_id, pathway=pathway))
