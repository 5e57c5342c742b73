"""Notes: free text a coordinator or clinician adds to a case's timeline, with who and when.

A note changes nothing of the case's pathway (its version stays), and like all task data it
is never logged: only its length is.
"""

from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..clock import Clock
from ..errors import FieldError, InvalidTaskData
from ..inputs import free_text_problem
from ..runtime import Event
from ..store import case_events
from ..vocabulary import EventType
from .persistence import lock

log = logging.getLogger(__name__)

MAX_NOTE = 4000
"""The longest note, in characters."""


def add_note(session: Session, *, case_id: str, text: str, clock: Clock, actor: str) -> Event:
    """Add a note to a case's timeline; return the timeline entry."""
    problem = (
        "must not be blank"
        if not text.strip()
        else f"must have at most {MAX_NOTE} characters"
        if len(text) > MAX_NOTE
        else free_text_problem(text)
    )
    if problem is not None:
        raise InvalidTaskData("note", [FieldError("text", problem)])
    lock(session, case_id)  # the case exists, and no change of it interleaves
    event = Event(type=EventType.NOTE, at=clock.now(), actor=actor, detail={"text": text})
    session.execute(
        insert(case_events).values(
            case_id=case_id,
            at=event.at,
            type=event.type,
            step=None,
            actor=actor,
            detail=event.detail,
            evidence=None,
        )
    )
    log.info("case %s: note added (%d characters)", case_id, len(text))
    return event
