"""The pathway engine: definitions, cases, timers, the audit log and the simulator.

No web, queue or command-line code lives here; the API, the workers and the CLI use only the
names below.
"""

import logging as _logging

from .cases import (
    cancel_case,
    complete_task,
    deliver_message,
    replay_start,
    reschedule_deadline,
    start_case,
)
from .clock import Clock, SimulatedClock, SystemClock
from .definitions import DefinitionInfo, deploy, deploy_bundled, latest, original_files
from .errors import (
    CaseClosed,
    CaseNotFound,
    DeadlineNotFound,
    DefinitionInvalid,
    DefinitionNotFound,
    DuplicateCase,
    ExecutionFailed,
    FieldError,
    IdempotencyKeyReused,
    InvalidTaskData,
    MessageNotExpected,
    NotPermitted,
    PathwayError,
    Problem,
    ScenarioInvalid,
    TaskNotReady,
    VersionConflict,
)
from .execution import Event
from .reminders import ReminderMessage, ReminderRecord, list_reminders
from .reminders import claim as claim_reminder
from .reminders import enqueue_due as enqueue_due_reminders
from .reminders import reap as reap_reminders
from .reminders import record_delivery as record_reminder_delivery
from .scenarios import ScenarioResult, load_scenario, run_scenario
from .settings import Settings, SettingsInvalid, get_settings
from .store import current_revision, make_engine, session_factory, upgrade
from .timers import FireReport, fire_due, lock_due_cases, next_due
from .validation import FileReport, validate_documents, validate_paths
from .views import (
    ACTIVE,
    CANCELLED,
    ENDED,
    CaseView,
    Deadline,
    ReadyTask,
    ReminderView,
    VarianceView,
    get_case,
    timeline,
)
from .vocabulary import CARE_ROLES, CaseStatus, EventType, ReminderStatus, Role
from .worklist import CasePage, CaseSummary, WorkItem, list_cases, worklist

__all__ = [
    "ACTIVE",
    "CANCELLED",
    "CARE_ROLES",
    "ENDED",
    "CaseClosed",
    "CaseNotFound",
    "CasePage",
    "CaseStatus",
    "CaseSummary",
    "CaseView",
    "Clock",
    "Deadline",
    "DeadlineNotFound",
    "DefinitionInfo",
    "DefinitionInvalid",
    "DefinitionNotFound",
    "DuplicateCase",
    "Event",
    "EventType",
    "ExecutionFailed",
    "FieldError",
    "FileReport",
    "FireReport",
    "IdempotencyKeyReused",
    "InvalidTaskData",
    "MessageNotExpected",
    "NotPermitted",
    "PathwayError",
    "Problem",
    "ReadyTask",
    "ReminderMessage",
    "ReminderRecord",
    "ReminderStatus",
    "ReminderView",
    "Role",
    "ScenarioInvalid",
    "ScenarioResult",
    "Settings",
    "SettingsInvalid",
    "SimulatedClock",
    "SystemClock",
    "TaskNotReady",
    "VarianceView",
    "VersionConflict",
    "WorkItem",
    "cancel_case",
    "claim_reminder",
    "complete_task",
    "current_revision",
    "deliver_message",
    "deploy",
    "deploy_bundled",
    "enqueue_due_reminders",
    "fire_due",
    "get_case",
    "get_settings",
    "latest",
    "list_cases",
    "list_reminders",
    "load_scenario",
    "lock_due_cases",
    "make_engine",
    "next_due",
    "original_files",
    "reap_reminders",
    "record_reminder_delivery",
    "replay_start",
    "reschedule_deadline",
    "run_scenario",
    "session_factory",
    "start_case",
    "timeline",
    "upgrade",
    "validate_documents",
    "validate_paths",
    "worklist",
]

# SpiffWorkflow puts task data (patient data) into its log records at DEBUG: never let it.
_logging.getLogger("spiff").setLevel(_logging.WARNING)
