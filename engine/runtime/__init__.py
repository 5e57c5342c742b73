"""Running one case's workflow: reading its task tree, acting on it, journaling what happened,
and storing its state in a versioned format."""

from .records import (
    DeadlineBounds,
    Event,
    Journal,
    RaisedReminder,
    RaisedVariance,
    ReadyStep,
    WaitingTimer,
)
from .run import CaseRun
from .state import FORMAT, StateFormatError, dump_state, load_state, load_state_and_memo, migrate
from .tree import TaskTree

__all__ = [
    "FORMAT",
    "CaseRun",
    "DeadlineBounds",
    "Event",
    "Journal",
    "RaisedReminder",
    "RaisedVariance",
    "ReadyStep",
    "StateFormatError",
    "TaskTree",
    "WaitingTimer",
    "dump_state",
    "load_state",
    "load_state_and_memo",
    "migrate",
]
