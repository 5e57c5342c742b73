"""Keeping cases on time: firing due timers (``timers``) and delivering the reminders they
raise (``reminders``, ``sending``), with the database as the truth and the queue carrying only ids."""

from .backlog import Backlog, backlog
from .reminders import ReminderRecord, enqueue_due, list_reminders, reap
from .sending import (
    SUPERSEDED,
    Delivery,
    ReminderMessage,
    claim,
    claim_batch,
    record_deliveries,
    record_delivery,
)
from .timers import FireReport, fire_due, lock_due_cases, next_due

__all__ = [
    "SUPERSEDED",
    "Backlog",
    "Delivery",
    "FireReport",
    "ReminderMessage",
    "ReminderRecord",
    "backlog",
    "claim",
    "claim_batch",
    "enqueue_due",
    "fire_due",
    "list_reminders",
    "lock_due_cases",
    "next_due",
    "reap",
    "record_deliveries",
    "record_delivery",
]
