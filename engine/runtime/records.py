"""What one advance of a case records: its audit events, the reminders and variances it raised,
and what the engine remembers beside the workflow so that each is raised at most once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import Clock
from ..steps import Step
from ..vocabulary import EventType


@dataclass
class Event:
    """One entry of a case's audit log."""

    type: EventType
    at: datetime
    step: str | None = None
    actor: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True)
class RaisedReminder:
    """A reminder the pathway raised during a run."""

    kind: str
    step: str
    recipients: tuple[str, ...]
    due_at: datetime
    escalate: bool


@dataclass(frozen=True)
class RaisedVariance:
    """A variance detected during a run."""

    code: str
    step: str
    rule: str | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class ReadyStep:
    """A step a person can complete now, with what makes it urgent or due."""

    task_id: str
    step_id: str
    step: Step | None
    urgent: bool
    due_at: datetime | None


@dataclass(frozen=True)
class DeadlineBounds:
    """What the diagram's limits on a deadline (``pathway.deadline.*``) come to on one case,
    as the move of that deadline checks them."""

    latest: datetime | None = None
    """``pathway.deadline.latest`` on this case's data."""
    current: datetime | None = None
    """Its due time, when it may never move later (``pathway.deadline.later`` is ``never``)."""
    earliest: datetime | None = None
    """``pathway.deadline.earliest``: earlier than this is a departure from the guideline."""
    latest_unknown: bool = False
    """True when the latest could not be worked out on this case (every move is refused)."""

    @property
    def latest_at(self) -> datetime | None:
        """The latest time it may move to; None when nothing bounds it or it is unknown."""
        found = [t for t in (self.latest, self.current) if t is not None]
        return None if self.latest_unknown or not found else min(found)


@dataclass(frozen=True)
class WaitingTimer:
    """A timer the workflow is waiting on."""

    task_id: str
    step: str
    deadline: str | None
    due_at: datetime


class Journal:
    """The events, reminders and variances of one run, each reminder kind at most once per
    case and each variance at most once per case and step (across runs, through the memo)."""

    def __init__(self, *, clock: Clock, memo: dict[str, Any] | None = None) -> None:
        memo = memo or {}
        self.clock = clock
        self.events: list[Event] = []
        self.reminders: list[RaisedReminder] = []
        self.variances: list[RaisedVariance] = []
        self._raised_kinds: set[str] = set(memo.get("reminders", ()))
        # Findings reported before the step that merges them was completed, by step id.
        self.reports: dict[str, list[str]] = {
            step: list(flags) for step, flags in (memo.get("reports") or {}).items()
        }
        self._recorded_variances = {(code, step) for code, step in memo.get("variances", ())}

    def memo(self) -> dict[str, Any]:
        """What the engine keeps beside the workflow state: the reminder kinds already raised
        and the variances already recorded (so neither needs a query on the next advance)."""
        memo: dict[str, Any] = {
            "reminders": sorted(self._raised_kinds),
            "variances": sorted([code, step] for code, step in self._recorded_variances),
        }
        if self.reports:
            memo["reports"] = {step: sorted(flags) for step, flags in self.reports.items()}
        return memo

    def add_report(self, step: str, flags: list[str]) -> None:
        """Keep reported findings for the step that merges them when it is completed."""
        self.reports[step] = sorted({*self.reports.get(step, ()), *flags})

    def event(
        self,
        type_: EventType,
        step: Step | None,
        *,
        step_id: str | None = None,
        actor: str | None = None,
        **detail: Any,
    ) -> Event:
        """Append an audit event; a step's evidence goes with it."""
        event = Event(
            type=type_,
            at=self.clock.now(),
            step=step.id if step else step_id,
            actor=actor,
            detail=detail,
            evidence=step.evidence.describe() if step else None,
        )
        self.events.append(event)
        return event

    def has(self, type_: EventType) -> bool:
        """Tell whether this run recorded an event of a type."""
        return any(e.type == type_ for e in self.events)

    def reminder(self, step: Step, *, due_at: datetime) -> None:
        """Raise the step's reminder, unless the case already had one of its kind."""
        rule = step.reminder
        assert rule is not None
        if rule.kind in self._raised_kinds:
            return  # at most once per case and kind
        self._raised_kinds.add(rule.kind)
        self.reminders.append(RaisedReminder(rule.kind, step.id, rule.to, due_at, rule.escalate))
        self.event(
            EventType.REMINDER,
            step,
            reminder=rule.kind,
            to=list(rule.to),
            due_at=due_at.isoformat(),
            escalate=rule.escalate,
        )

    def variance(
        self, step: Step, *, code: str, rule: str | None, quote: str | None = None
    ) -> None:
        """Record a variance, unless the case already has it for this step; its evidence is
        the step's, with the variance's own guideline sentence when it has one."""
        if (code, step.id) in self._recorded_variances:
            return
        self._recorded_variances.add((code, step.id))
        evidence = step.evidence.describe()
        if quote:
            evidence["quote"] = quote
        self.variances.append(RaisedVariance(code, step.id, rule, evidence))
        self.event(EventType.VARIANCE, step, variance=code, rule=rule)
