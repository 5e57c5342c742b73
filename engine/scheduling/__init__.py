"""Keeping cases on time: firing due timers (``timers``) and delivering the reminders they
raise (``reminders``), with the database as the truth and the queue carrying only ids."""

from .backlog import Backlog, backlog
from .reminders import (
    ReminderMessage,
    ReminderRecord,
    claim,
    enqueue_due,
    list_reminders,
    reap,
    record_delivery,
)
from .timers import FireReport, fire_due, lock_due_cases, next_due

__all__ = [
    "Backlog",
    "FireReport",
    "ReminderMessage",
    "ReminderRecord",
    "backlog",
    "claim",
    "enqueue_due",
    "fire_due",
    "list_reminders",
    "lock_due_cases",
    "next_due",
    "reap",
    "record_delivery",
]
