"""The domain's words, spelled once: case statuses, reminder statuses, event types and roles.

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
