"""Cases: the commands that change one (``commands``, through ``advance``), how its rows are
written (``persistence``) and keyed requests replayed (``idempotency``), and what people read
of cases (``views`` for one case, ``worklist`` across them)."""

from .commands import (
    advance,
    cancel_case,
    complete_task,
    deliver_message,
    reschedule_deadline,
    start_case,
)
from .idempotency import replay_start
from .views import (
    CaseView,
    Deadline,
    ReadyTask,
    ReminderView,
    VarianceView,
    build_view,
    get_case,
    timeline,
)
from .worklist import CasePage, CaseSummary, WorkItem, list_cases, worklist

__all__ = [
    "CasePage",
    "CaseSummary",
    "CaseView",
    "Deadline",
    "ReadyTask",
    "ReminderView",
    "VarianceView",
    "WorkItem",
    "advance",
    "build_view",
    "cancel_case",
    "complete_task",
    "deliver_message",
    "get_case",
    "list_cases",
    "replay_start",
    "reschedule_deadline",
    "start_case",
    "timeline",
    "worklist",
]
