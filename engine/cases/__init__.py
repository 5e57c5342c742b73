"""Cases: the commands that change one (``commands``, through ``advance``), how its rows are
written (``persistence``) and keyed requests replayed (``idempotency``), and what people read
of cases (``views`` for one case, ``worklist`` across them)."""

from .claims import claim_task, unclaim_task
from .commands import (
    advance,
    amend_task,
    cancel_case,
    complete_task,
    deliver_message,
    reschedule_deadline,
    start_case,
)
from .idempotency import replay_start
from .notes import MAX_NOTE, add_note
from .views import (
    CaseView,
    Deadline,
    DecisionView,
    ReadyTask,
    RecordEntry,
    ReminderView,
    VarianceView,
    build_view,
    get_case,
    timeline,
)
from .worklist import CasePage, CaseSummary, WorkItem, WorkPage, list_cases, worklist

__all__ = [
    "MAX_NOTE",
    "CasePage",
    "CaseSummary",
    "CaseView",
    "Deadline",
    "DecisionView",
    "ReadyTask",
    "RecordEntry",
    "ReminderView",
    "VarianceView",
    "WorkItem",
    "WorkPage",
    "add_note",
    "advance",
    "amend_task",
    "build_view",
    "cancel_case",
    "claim_task",
    "complete_task",
    "deliver_message",
    "get_case",
    "list_cases",
    "replay_start",
    "reschedule_deadline",
    "start_case",
    "timeline",
    "unclaim_task",
    "worklist",
]
