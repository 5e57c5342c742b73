"""What a reminder says: its subject, plain-text body and link to its case.

The sentence saying what is due is the diagram's (``pathway.reminder.text`` on the event that
raised the reminder, else the event's name), carried in the message: no pathway's wording
lives here. A reminder names the case, the patient reference, what is due and since when, the
open steps and the link, nothing else of the patient; the subject and the logs omit the
patient.
"""

from __future__ import annotations

from datetime import UTC, datetime

import engine


def describe(message: engine.ReminderMessage) -> str:
    """Return the sentence saying what is due: the diagram's text, else the reminder's kind."""
    return " ".join(message.text.split()) or message.kind


def case_link(message: engine.ReminderMessage, *, base_url: str) -> str:
    """Return the link to the reminder's case."""
    return f"{base_url.rstrip('/')}/cases/{message.case_id}"


def iso_utc(moment: datetime) -> str:
    """Return a moment as ISO 8601 in UTC with a ``Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render(message: engine.ReminderMessage, *, base_url: str) -> tuple[str, str]:
    """Return the subject and plain-text body of a reminder."""
    what = describe(message)
    subject = f"[Pathway] {what} - case {message.case_id}"
    open_steps = ", ".join(message.open_steps) if message.open_steps else "(none)"
    body = "\n".join(
        [
            what,
            "",
            f"Case: {message.case_id}",
            f"Patient reference: {message.patient_ref or '(none)'}",
            f"Due since: {iso_utc(message.due_at)}",
            f"Open steps: {open_steps}",
            "",
            f"Open the case: {case_link(message, base_url=base_url)}",
            "",
        ]
    )
    return subject, body
