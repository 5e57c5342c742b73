"""The pathway engine: definitions, cases, timers, the audit log and the simulator.

No web, queue or command-line code lives here; the API, the workers and the CLI use only the
names below.
"""

from .cases import (
    ACTIVE,
    CANCELLED,
    ENDED,
    CaseView,
    Deadline,
    ReadyTask,
    ReminderView,
    VarianceView,
    cancel_case,
    complete_task,
    deliver_message,
    get_case,
    start_case,
    timeline,
)
from .clock import Clock, SimulatedClock, SystemClock
from .definitions import DefinitionInfo, deploy, deploy_bundled, latest, original_files
from .errors import (
    CaseClosed,
    CaseNotFound,
    DeadlineNotFound,
    DefinitionInvalid,
    DefinitionNotFound,
    ExecutionFailed,
    FieldError,
    InvalidTaskData,
    MessageNotExpected,
    PathwayError,
    Problem,
    ScenarioInvalid,
    TaskNotReady,
    VersionConflict,
)
from .execution import Event
from .scenarios import ScenarioResult, load_scenario, run_scenario
from .settings import Settings, get_settings
from .store import current_revision, make_engine, session_factory, upgrade
from .timers import FireReport, due_case_ids, fire_due, next_due
from .validation import FileReport, validate_documents, validate_paths

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "ENDED",
    "CaseClosed",
    "CaseNotFound",
    "CaseView",
    "Clock",
    "Deadline",
    "DeadlineNotFound",
    "DefinitionInfo",
    "DefinitionInvalid",
    "DefinitionNotFound",
    "Event",
    "ExecutionFailed",
    "FieldError",
    "FileReport",
    "FireReport",
    "InvalidTaskData",
    "MessageNotExpected",
    "PathwayError",
    "Problem",
    "ReadyTask",
    "ReminderView",
    "ScenarioInvalid",
    "ScenarioResult",
    "Settings",
    "SimulatedClock",
    "SystemClock",
    "TaskNotReady",
    "VarianceView",
    "VersionConflict",
    "cancel_case",
    "complete_task",
    "current_revision",
    "deliver_message",
    "deploy",
    "deploy_bundled",
    "due_case_ids",
    "fire_due",
    "get_case",
    "get_settings",
    "latest",
    "load_scenario",
    "make_engine",
    "next_due",
    "original_files",
    "run_scenario",
    "session_factory",
    "start_case",
    "timeline",
    "upgrade",
    "validate_documents",
    "validate_paths",
]
