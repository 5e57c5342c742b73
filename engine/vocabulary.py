"""The domain's words, spelled once: case statuses, reminder statuses, event types, kinds of
change between pathway versions, and roles.

Each is a ``StrEnum``: a member *is* its string, so it is stored, compared and serialized as
the word itself, and FastAPI shows each as an enum in the OpenAPI document. Nowhere else
spells these words as bare strings.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    """Where a case stands."""

    ACTIVE = "active"
    ENDED = "ended"
    CANCELLED = "cancelled"


class ReminderStatus(StrEnum):
    """Where a reminder's delivery stands (see ``engine.scheduling.reminders``)."""

    PENDING = "pending"
    ENQUEUED = "enqueued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EventType(StrEnum):
    """The kinds of entry in a case's audit timeline."""

    CASE_STARTED = "case_started"
    TASK_READY = "task_ready"
    TASK_COMPLETED = "task_completed"
    TASK_AMENDED = "task_amended"
    TASK_CLAIMED = "task_claimed"
    TASK_UNCLAIMED = "task_unclaimed"
    DECISION = "decision"
    TIMER_FIRED = "timer_fired"
    REMINDER = "reminder"
    MESSAGE = "message"
    VARIANCE = "variance"
    DEADLINE_RESCHEDULED = "deadline_rescheduled"
    PATIENT_REF_NORMALISED = "patient_ref_normalised"
    CASE_CANCELLED = "case_cancelled"
    NOTE = "note"
    CASE_ENDED = "case_ended"
    MIGRATED = "migrated"


class ChangeKind(StrEnum):
    """What changed between two versions of a pathway (see ``engine.changes``)."""

    STEP_ADDED = "step_added"
    STEP_REMOVED = "step_removed"
    STEP_RENAMED = "step_renamed"
    STEP_ID_CHANGED = "step_id_changed"
    STEP_TYPE_CHANGED = "step_type_changed"
    ROLE_CHANGED = "role_changed"
    TIMER_CHANGED = "timer_changed"
    DEADLINE_ADDED = "deadline_added"
    DEADLINE_REMOVED = "deadline_removed"
    DEADLINE_LIMITS_CHANGED = "deadline_limits_changed"
    ESCALATION_CHANGED = "escalation_changed"
    FIELD_ADDED = "field_added"
    FIELD_REMOVED = "field_removed"
    FIELD_RENAMED = "field_renamed"
    FIELD_TYPE_CHANGED = "field_type_changed"
    FIELD_NOW_REQUIRED = "field_now_required"
    FIELD_NOW_OPTIONAL = "field_now_optional"
    FIELD_LIMITS_CHANGED = "field_limits_changed"
    CHOICE_ADDED = "choice_added"
    CHOICE_REMOVED = "choice_removed"
    CHOICE_RENAMED = "choice_renamed"
    DECISION_RULE_ADDED = "decision_rule_added"
    DECISION_RULE_REMOVED = "decision_rule_removed"
    DECISION_RULE_CHANGED = "decision_rule_changed"
    DECISION_TABLE_CHANGED = "decision_table_changed"
    REMINDER_ADDED = "reminder_added"
    REMINDER_REMOVED = "reminder_removed"
    REMINDER_RENAMED = "reminder_renamed"
    REMINDER_CHANGED = "reminder_changed"
    VARIANCE_ADDED = "variance_added"
    VARIANCE_REMOVED = "variance_removed"
    VARIANCE_RENAMED = "variance_renamed"
    VARIANCE_CHANGED = "variance_changed"
    MESSAGE_ADDED = "message_added"
    MESSAGE_REMOVED = "message_removed"
    CONDITION_CHANGED = "condition_changed"
    EVIDENCE_CHANGED = "evidence_changed"
    PROPERTY_CHANGED = "property_changed"


class Role(StrEnum):
    """Who a person is to Pathway: the ``roles`` of a token and a step's candidate groups."""

    COORDINATOR = "coordinator"
    CLINICIAN = "clinician"
    MODELER = "modeler"
    ADMIN = "admin"


# The roles that may read and move cases (they hold patient data); modelers may not.
CARE_ROLES = frozenset({Role.COORDINATOR, Role.CLINICIAN, Role.ADMIN})

# What the simulator's timeline shows (the rest are bookkeeping a scenario's author does not
# act on), in the order a reader meets them.
SIMULATED_EVENTS = (
    EventType.TASK_READY,
    EventType.TASK_COMPLETED,
    EventType.DECISION,
    EventType.TIMER_FIRED,
    EventType.REMINDER,
    EventType.MESSAGE,
    EventType.VARIANCE,
    EventType.CASE_ENDED,
)
