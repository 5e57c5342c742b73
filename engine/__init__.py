"""The pathway engine: definitions, cases, timers, reminders, the audit log and the simulator.

No web, queue or command-line code lives here; the API, the workers and the CLI use only the
names below. The rooms behind them:

    vocabulary   the domain's words (statuses, event types, roles) as StrEnums
    errors       the error hierarchy, each carrying what a person needs to act
    clock        the injected clock every due decision reads
    inputs       the text taken from people: identifiers, free text, patient references
    settings     the engine's settings (database, data dir, log level)
    store        tables, the database engine and the Alembic migrations
    diagrams     parsing BPMN/DMN with SpiffWorkflow, timers rebound to our clock
    steps, forms what the diagram says of each step: role, form, evidence, reminders
    definitions  deploying and loading versions of a pathway
    changes/     what changed between two versions, in a clinician's words
    validation/  every problem of a diagram before it is deployed
    sandbox/     the restricted runtime for code written into diagrams
    runtime/     one advance of one case's workflow, and its versioned stored state
    cases/       the commands that change a case, and what people read of cases
    scheduling/  firing due timers and delivering the reminders they raise
    coverage     what scenarios reached of a pathway, read from their task trees
    scenarios    the simulator
"""

import logging as _logging

from .cases import (
    MAX_NOTE,
    CasePage,
    CaseSummary,
    CaseView,
    Deadline,
    DecisionView,
    ReadyTask,
    RecordEntry,
    ReminderView,
    VarianceView,
    WorkItem,
    WorkPage,
    add_note,
    amend_task,
    cancel_case,
    claim_task,
    complete_task,
    deliver_message,
    get_case,
    list_cases,
    replay_start,
    reschedule_deadline,
    start_case,
    timeline,
    unclaim_task,
    worklist,
)
from .cases.migration import (
    CaseMove,
    MigrationView,
    migration_status,
    run_migration,
    start_migration,
)
from .cases.migration import (
    preview as preview_migration,
)
from .cases.migration import (
    stop_stale as stop_stale_migrations,
)
from .changes import Change as DefinitionChange
from .changes import DefinitionDiff, diff_definitions
from .changes import render_text as render_diff
from .clock import Clock, SimulatedClock, SystemClock, clinic_today, clinic_zone, zone_named
from .definitions import (
    DefinitionInfo,
    VersionSummary,
    deploy,
    deploy_bundled,
    latest,
    original_files,
)
from .definitions import file_of as definition_file
from .definitions import version as definition_version
from .definitions import versions as definition_versions
from .errors import (
    CaseClosed,
    CaseNotFound,
    DeadlineNotFound,
    DecisionWouldChange,
    DefinitionInvalid,
    DefinitionNotFound,
    DuplicateCase,
    ExecutionFailed,
    FieldError,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidTaskData,
    MessageNotExpected,
    MigrationConflict,
    MigrationInvalid,
    MigrationNotFound,
    NotPermitted,
    PathwayError,
    Problem,
    ScenarioInvalid,
    StepNotCompleted,
    TaskNotReady,
    VersionConflict,
)
from .inputs import (
    PATIENT_REF_MAX,
    free_text_problem,
    identifier_problem,
    json_problem,
    normalise_patient_ref,
)
from .runtime import Event
from .scenarios import (
    PathwayFolder,
    ScenarioResult,
    bundled_folder,
    coverage_report,
    load_scenario,
    run_scenario,
)
from .scheduling import (
    FireReport,
    ReminderMessage,
    ReminderRecord,
    fire_due,
    list_reminders,
    lock_due_cases,
    next_due,
)
from .scheduling import claim as claim_reminder
from .scheduling import enqueue_due as enqueue_due_reminders
from .scheduling import reap as reap_reminders
from .scheduling import record_delivery as record_reminder_delivery
from .settings import EngineSettings, SettingsInvalid, empty_is_unset, get_settings
from .settings import load as load_settings
from .store import current_revision, make_engine, session_factory, upgrade
from .validation import FileReport, check_size, validate_documents, validate_paths
from .vocabulary import CARE_ROLES, CaseStatus, ChangeKind, EventType, ReminderStatus, Role

__all__ = [  # noqa: RUF022  (grouped by who uses them, not sorted)
    # the domain's words, errors and time
    "CARE_ROLES",
    "CaseStatus",
    "ChangeKind",
    "EventType",
    "ReminderStatus",
    "Role",
    "Clock",
    "SimulatedClock",
    "SystemClock",
    "clinic_today",
    "clinic_zone",
    "zone_named",
    # the text taken from people (API, CLI)
    "PATIENT_REF_MAX",
    "identifier_problem",
    "free_text_problem",
    "json_problem",
    "normalise_patient_ref",
    "PathwayError",
    "CaseClosed",
    "CaseNotFound",
    "DeadlineNotFound",
    "DecisionWouldChange",
    "StepNotCompleted",
    "DefinitionInvalid",
    "DefinitionNotFound",
    "DuplicateCase",
    "ExecutionFailed",
    "FieldError",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "InvalidTaskData",
    "MessageNotExpected",
    "MigrationConflict",
    "MigrationInvalid",
    "MigrationNotFound",
    "NotPermitted",
    "Problem",
    "ScenarioInvalid",
    "TaskNotReady",
    "VersionConflict",
    # commands: what changes a case (API)
    "start_case",
    "replay_start",
    "complete_task",
    "deliver_message",
    "reschedule_deadline",
    "cancel_case",
    "add_note",
    "amend_task",
    "claim_task",
    "unclaim_task",
    "MAX_NOTE",
    # queries: what people read (API)
    "get_case",
    "timeline",
    "list_cases",
    "worklist",
    "CaseView",
    "ReadyTask",
    "Deadline",
    "RecordEntry",
    "DecisionView",
    "ReminderView",
    "VarianceView",
    "Event",
    "CasePage",
    "CaseSummary",
    "WorkItem",
    "WorkPage",
    # scheduling: due timers and reminder delivery (workers)
    "fire_due",
    "lock_due_cases",
    "next_due",
    "FireReport",
    "enqueue_due_reminders",
    "claim_reminder",
    "record_reminder_delivery",
    "reap_reminders",
    "list_reminders",
    "ReminderMessage",
    "ReminderRecord",
    # definitions: deploying and validating pathways (API, CLI)
    "deploy",
    "deploy_bundled",
    "latest",
    "original_files",
    "DefinitionInfo",
    "VersionSummary",
    "definition_file",
    "definition_version",
    "definition_versions",
    # migrations: moving running cases between versions (API, CLI)
    "CaseMove",
    "MigrationView",
    "stop_stale_migrations",
    "migration_status",
    "preview_migration",
    "run_migration",
    "start_migration",
    "validate_documents",
    "validate_paths",
    "check_size",
    "FileReport",
    "diff_definitions",
    "render_diff",
    "DefinitionDiff",
    "DefinitionChange",
    # the simulator (CLI, tests)
    "load_scenario",
    "run_scenario",
    "ScenarioResult",
    "PathwayFolder",
    "bundled_folder",
    "coverage_report",
    # the database and settings (API, workers, CLI, tests)
    "make_engine",
    "session_factory",
    "upgrade",
    "current_revision",
    "EngineSettings",
    "SettingsInvalid",
    "empty_is_unset",
    "get_settings",
    "load_settings",
]

# SpiffWorkflow puts task data (patient data) into its log records at DEBUG, and SQLAlchemy
# logs every statement at INFO: never let either, whatever level the service runs at. (The
# database engine also hides bound parameters from its errors: see store.make_engine.)
_logging.getLogger("spiff").setLevel(_logging.WARNING)
_logging.getLogger("sqlalchemy").setLevel(_logging.WARNING)
