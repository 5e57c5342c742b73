"""Running a case's workflow one advance at a time, and recording what happened.

A ``CaseRun`` wraps one loaded workflow for one transaction: it completes a step, delivers a
message or fires due timers, runs SpiffWorkflow's engine steps until nothing more is ready,
and collects the audit events, reminders, variances and the end it saw on the way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from . import expressions
from .clock import Clock
from .definitions import Pathway
from .diagrams import due_time
from .errors import (
    DeadlineNotFound,
    ExecutionFailed,
    FieldError,
    InvalidTaskData,
    MessageNotExpected,
    NotPermitted,
    TaskNotReady,
)
from .forms import Form, validate
from .steps import Step

log = logging.getLogger(__name__)

_MAX_ROUNDS = 200


@dataclass
class Event:
    """One entry of a case's audit log."""

    type: str
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
class WaitingTimer:
    """A timer the workflow is waiting on."""

    task_id: str
    step: str
    deadline: str | None
    due_at: datetime


def _timer_definition(spec: Any) -> TimerEventDefinition | None:
    definition = getattr(spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        return definition
    if isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            if isinstance(inner, TimerEventDefinition):
                return inner
    return None


def _timer_step(spec: Any, pathway: Pathway) -> str | None:
    """The diagram element a waiting timer belongs to (an event gateway's timer branch)."""
    if isinstance(getattr(spec, "event_definition", None), MultipleEventDefinition):
        for output in spec.outputs:
            step = pathway.step(output.bpmn_id)
            if step is not None and step.timer:
                return step.id
    return str(spec.bpmn_id) if spec.bpmn_id else None


def _due_of(task: Any) -> datetime | None:
    return due_time(task.internal_data.get("event_value"))


class CaseRun:
    """One advance of one case's workflow."""

    def __init__(
        self,
        *,
        case_id: str,
        workflow: Any,
        pathway: Pathway,
        clock: Clock,
        actor: str | None,
        raised_kinds: set[str] | None = None,
        recorded_variances: set[tuple[str, str]] | None = None,
        roles: frozenset[str] | None = None,
        patient_ref: str | None = None,
    ) -> None:
        self.case_id = case_id
        self.roles = roles
        self.case_patient_ref = patient_ref
        self._raised_kinds = set(raised_kinds or ())
        self._recorded_variances = set(recorded_variances or ())
        self.workflow = workflow
        self.pathway = pathway
        self.clock = clock
        self.actor = actor
        self.events: list[Event] = []
        self.reminders: list[RaisedReminder] = []
        self.variances: list[RaisedVariance] = []
        self.end: str | None = None
        self.patient_ref: str | None = None
        self.interrupted: str | None = None
        self._last_end: str | None = None
        self._snapshot: tuple[list[Any], list[Any]] | None = None
        self._changed()
        self._completed_in_round = 0
        self.ready_steps_before = self.ready_steps()
        self._announced = {r.task_id for r in self.ready_steps_before}
        self.timers_before = set(self._timer_keys())

    # -- reading -------------------------------------------------------------------------

    def _scan(self) -> tuple[list[Any], list[Any]]:
        """One walk of the task tree: the ready people's steps and the waiting tasks."""
        if self._snapshot is None:
            ready, waiting = [], []
            for task in self.workflow.get_tasks(state=TaskState.READY | TaskState.WAITING):
                if task.state == TaskState.READY:
                    if task.task_spec.manual:
                        ready.append(task)
                else:
                    waiting.append(task)
            self._snapshot = (ready, waiting)
        return self._snapshot

    def _changed(self) -> None:
        self._snapshot = None
        self._ready_steps: list[ReadyStep] | None = None
        self._timers: list[WaitingTimer] | None = None

    def ready_tasks(self) -> list[Any]:
        """Return the steps a person can complete now, in diagram order."""
        return list(self._scan()[0])

    def _timer_keys(self) -> list[tuple[str, str, datetime]]:
        return [(t.task_id, t.step, t.due_at) for t in self.waiting_timers()]

    def memo(self) -> dict[str, Any]:
        """What the engine keeps beside the workflow state: the reminder kinds already raised
        and the variances already recorded (so neither needs a query on the next advance)."""
        return {
            "reminders": sorted(self._raised_kinds),
            "variances": sorted([code, step] for code, step in self._recorded_variances),
        }

    def timers_changed(self) -> bool:
        """Tell whether the waiting timers differ from when the case was loaded."""
        return set(self._timer_keys()) != self.timers_before

    def ready_step_ids(self) -> list[str]:
        """Return the ids of the ready steps."""
        return [str(t.task_spec.bpmn_id) for t in self.ready_tasks()]

    def ready_steps(self) -> list[ReadyStep]:
        """Return the ready steps with their urgency and the deadline they are due by."""
        if self._ready_steps is not None:
            return list(self._ready_steps)
        out = []
        for task in self.ready_tasks():
            step_id = str(task.task_spec.bpmn_id)
            step = self.pathway.step(step_id)
            urgent = step is not None and (
                step.urgent
                or any(getattr(self.pathway.step(w), "urgent", False) for w in step.within)
            )
            dues = self._guarding_dues(task)
            out.append(ReadyStep(str(task.id), step_id, step, urgent, min(dues) if dues else None))
        self._ready_steps = out
        return list(out)

    def _is_timer(self, task: Any) -> bool:
        step = self.pathway.step(task.task_spec.bpmn_id)
        return step is not None and step.timer

    def _guarding_dues(self, task: Any) -> list[datetime]:
        """Due times of the deadlines that guard a step: timers on its boundary or on an
        enclosing sub-process's boundary, and the timer that made it ready."""
        dues = []
        node = task
        while node is not None:
            parent = node.parent
            if parent is not None and isinstance(parent.task_spec, BoundaryEventSplit):
                for sibling in parent.children:
                    if sibling is not node and self._is_timer(sibling):
                        due = _due_of(sibling)
                        if due is not None:
                            dues.append(due)
            workflow = node.workflow
            if workflow is self.workflow or workflow.parent_task_id is None:
                break
            node = self.workflow.get_task_from_id(workflow.parent_task_id)
        ancestor = task.parent
        for _ in range(3):
            if ancestor is None:
                break
            if self._is_timer(ancestor):
                due = _due_of(ancestor) or (_due_of(ancestor.parent) if ancestor.parent else None)
                if due is not None:
                    dues.append(due)
                break
            ancestor = ancestor.parent
        return dues

    def waiting_timers(self) -> list[WaitingTimer]:
        """Return every timer the workflow waits on, with its due time."""
        if self._timers is not None:
            return list(self._timers)
        timers = []
        for task in self._scan()[1]:
            if _timer_definition(task.task_spec) is None:
                continue
            due = _due_of(task)
            step = _timer_step(task.task_spec, self.pathway)
            if due is None or step is None:
                continue
            info = self.pathway.step(step)
            timers.append(WaitingTimer(str(task.id), step, info.deadline if info else None, due))
        self._timers = timers
        return list(timers)

    def waiting_messages(self) -> list[tuple[Any, str]]:
        """Return the waiting message catch tasks with their message names."""
        found = []
        for task in self._scan()[1]:
            definition = getattr(task.task_spec, "event_definition", None)
            if isinstance(definition, MessageEventDefinition):
                found.append((task, str(definition.name)))
        return found

    # -- acting --------------------------------------------------------------------------

    def _event(
        self,
        type_: str,
        step: Step | None,
        *,
        step_id: str | None = None,
        actor: str | None = None,
        **detail: Any,
    ) -> Event:
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

    def start(self) -> None:
        """Run a new workflow up to its first waiting steps."""
        self._event(
            "case_started",
            None,
            actor=self.actor,
            pathway=self.pathway.info.pathway,
            version=self.pathway.info.version,
        )
        self.run_engine()

    def complete(self, step_id: str, data: Any) -> None:
        """Complete a ready step with form data, then run the engine."""
        matches = [t for t in self.ready_tasks() if t.task_spec.bpmn_id == step_id]
        if not matches:
            raise TaskNotReady(self.case_id, step_id, self.ready_step_ids())
        task = matches[0]
        step = self.pathway.step(step_id)
        self._check_permitted(step, step_id)
        form = step.form if step and step.form else Form()
        if (
            self.case_patient_ref
            and isinstance(data, dict)
            and "patient_ref" in form.field_ids()
            and data.get("patient_ref") is None
        ):
            data = {**data, "patient_ref": self.case_patient_ref}
        accepted = validate(form, data, task=step_id, today=self._today())
        if self.case_patient_ref and accepted.get("patient_ref", self.case_patient_ref) != (
            self.case_patient_ref
        ):
            raise InvalidTaskData(
                step_id,
                [FieldError("patient_ref", "must be the case's own patient reference")],
            )
        task.set_data(**accepted)
        if isinstance(accepted.get("patient_ref"), str):
            self.patient_ref = accepted["patient_ref"]
        self._changed()
        try:
            task.run()
        except SpiffWorkflowException as exc:
            raise ExecutionFailed(self.case_id, step_id, _reason(exc)) from None
        self._event("task_completed", step, actor=self.actor, fields=sorted(accepted))
        if step:
            self._check_variances(step, task.data)
        self.run_engine()

    def deliver(self, message: str, data: Any) -> None:
        """Deliver a message (such as red_flag_reported) to the step waiting for it."""
        waiting = [(t, name) for t, name in self.waiting_messages() if name == message]
        if not waiting:
            hint = "it is only accepted while the case is in a step that listens for it" + (
                "; ready steps: " + ", ".join(self.ready_step_ids()) if self.ready_tasks() else ""
            )
            raise MessageNotExpected(self.case_id, message, hint)
        task, _ = waiting[0]
        step = self.pathway.step(task.task_spec.bpmn_id)
        self._check_permitted(step, message)
        payload = self._message_payload(message, step, data)
        before = {t.step for t in self.waiting_timers()}
        definition = task.task_spec.event_definition
        self._changed()
        try:
            self.workflow.send_event(BpmnEvent(definition, payload))
        except SpiffWorkflowException as exc:
            raise ExecutionFailed(self.case_id, task.task_spec.bpmn_id, _reason(exc)) from None
        self.interrupted = step.interrupts if step else None
        reported = sorted(k for k, v in payload.items() if v is True)
        event = self._event("message", step, actor=self.actor, message=message, reported=reported)
        self.run_engine()
        cancelled = before - {t.step for t in self.waiting_timers()}
        if cancelled:
            event.detail["cancelled_timers"] = sorted(cancelled)

    def _message_payload(self, message: str, step: Step | None, data: Any) -> dict[str, Any]:
        form_step = self.pathway.step(step.message_form) if step and step.message_form else None
        if form_step is None or form_step.form is None:
            if not isinstance(data, dict):
                raise InvalidTaskData(message, [FieldError("data", "must be an object")])
            return dict(data)
        form = form_step.form
        if isinstance(data, dict):
            # Absent yes/no fields of a report count as "no".
            data = {**{f.id: False for f in form.fields if f.type == "boolean"}, **data}
        accepted = validate(form, data, task=message, today=self._today())
        booleans = [f.id for f in form.fields if f.type == "boolean"]
        if (
            booleans
            and len(booleans) == len(form.fields)
            and not any(accepted.get(name) for name in booleans)
        ):
            raise InvalidTaskData(
                message,
                [FieldError("data", "report at least one finding as true: " + ", ".join(booleans))],
            )
        return accepted

    def _check_permitted(self, step: Step | None, what: str) -> None:
        if self.roles is None or "admin" in self.roles:
            return
        allowed = {r.strip() for r in (step.role or "").split(",") if r.strip()} if step else set()
        if allowed and not allowed & self.roles:
            raise NotPermitted(what, sorted(allowed))

    def reschedule(self, kind: str, due_at: datetime, reason: str) -> None:
        """Move the waiting timer(s) of a deadline to a new due time, with the reason."""
        moved = []
        for task in self.workflow.get_tasks(state=TaskState.WAITING):
            if _timer_definition(task.task_spec) is None:
                continue
            step = self.pathway.step(_timer_step(task.task_spec, self.pathway))
            if step is None or kind not in (step.deadline, step.id):
                continue
            value = task.internal_data.get("event_value")
            if isinstance(value, dict):
                previous = value.get("next")
                value["next"] = due_at.isoformat()
            else:
                previous = value
                task.internal_data["event_value"] = due_at.isoformat()
            moved.append((step, previous))
        if not moved:
            raise DeadlineNotFound(
                self.case_id, kind, sorted({t.deadline or t.step for t in self.waiting_timers()})
            )
        for step, previous in moved:
            self._event(
                "deadline_rescheduled",
                step,
                actor=self.actor,
                deadline=kind,
                previous_due_at=previous,
                due_at=due_at.isoformat(),
                reason=reason,
            )
        self.run_engine()

    def fire_due_timers(self) -> None:
        """Run the engine so that every timer due on the clock fires."""
        self.run_engine()

    def cancel(self, reason: str) -> None:
        """Cancel the workflow and record why."""
        self._changed()
        self.workflow.cancel()
        self._event("case_cancelled", None, actor=self.actor, reason=reason)

    def run_engine(self) -> None:
        """Run engine steps and due timers until only people's steps and waits remain."""
        wf = self.workflow
        self._changed()
        try:
            for _ in range(_MAX_ROUNDS):
                # The clock is fixed during a run: a round that completes nothing means the
                # trailing timer refresh of the previous round found nothing new either.
                self._completed_in_round = 0
                wf.refresh_timers()
                wf.do_engine_steps(did_complete_task=self._on_completed)
                if self._completed_in_round == 0:
                    break
            # Events nothing inside the workflow caught (a timer that won its event gateway,
            # an end event's signal) have nowhere else to go: do not let them pile up.
            for event in wf.get_events():
                log.debug(
                    "case %s: uncaught %s event",
                    self.case_id,
                    event.event_definition.__class__.__name__,
                )
        except SpiffWorkflowException as exc:
            step = getattr(getattr(exc, "task", None), "task_spec", None)
            raise ExecutionFailed(
                self.case_id, getattr(step, "bpmn_id", None) or "(engine)", _reason(exc)
            ) from None
        except expressions.ExpressionFailed as exc:
            raise ExecutionFailed(self.case_id, "(expression)", exc.reason) from None
        self._finish()

    def _on_completed(self, task: Any) -> None:
        self._completed_in_round += 1
        spec = task.task_spec
        step = self.pathway.step(spec.bpmn_id)
        if step is not None and step.timer:
            due = _due_of(task) or (_due_of(task.parent) if task.parent else None)
            self._event(
                "timer_fired", step, deadline=step.deadline, due_at=due.isoformat() if due else None
            )
        if step is not None and step.reminder is not None:
            self._raise_reminder(task, step)
        if isinstance(spec, EndEvent) and spec.bpmn_id and task.workflow is self.workflow:
            self._last_end = str(spec.bpmn_id)

    def _raise_reminder(self, task: Any, step: Step) -> None:
        assert step.reminder is not None
        due = None
        ancestor = task
        for _ in range(12):
            if ancestor is None:
                break
            due = _due_of(ancestor)
            if due is not None:
                break
            ancestor = ancestor.parent
        rule = step.reminder
        if rule.kind in self._raised_kinds:
            return  # at most once per case and kind
        self._raised_kinds.add(rule.kind)
        due = due or self.clock.now()
        self.reminders.append(RaisedReminder(rule.kind, step.id, rule.to, due, rule.escalate))
        self._event(
            "reminder",
            step,
            reminder=rule.kind,
            to=list(rule.to),
            due_at=due.isoformat(),
            escalate=rule.escalate,
        )

    def _check_variances(self, step: Step, data: dict[str, Any]) -> None:
        for rule in step.variances:
            try:
                hit = expressions.evaluate(rule.condition, names=data, clock=self.clock)
            except expressions.ExpressionFailed as exc:
                raise ExecutionFailed(
                    self.case_id, step.id, f"variance rule {rule.code}: {exc.reason}"
                ) from None
            if hit and (rule.code, step.id) not in self._recorded_variances:
                self._recorded_variances.add((rule.code, step.id))
                self.variances.append(
                    RaisedVariance(rule.code, step.id, rule.rule, step.evidence.describe())
                )
                self._event("variance", step, variance=rule.code, rule=rule.rule)

    def _finish(self) -> None:
        self._changed()
        now_ready = self.ready_tasks()
        for task in now_ready:
            if str(task.id) not in self._announced:
                self._event(
                    "task_ready",
                    self.pathway.step(task.task_spec.bpmn_id),
                    step_id=task.task_spec.bpmn_id,
                )
        self._announced = {str(t.id) for t in now_ready}
        if self.workflow.is_completed() and not any(e.type == "case_ended" for e in self.events):
            # The case's end is the top-level end event that completed the workflow.
            self.end = self._last_end
            self._event("case_ended", self.pathway.step(self.end), step_id=self.end, end=self.end)

    def _today(self) -> date:
        return self.clock.now().date()


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:500]
