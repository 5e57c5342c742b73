"""Running a case's workflow one advance at a time.

A ``CaseRun`` wraps one loaded workflow for one transaction: it completes a step, delivers a
message or fires due timers, runs SpiffWorkflow's engine steps until nothing more is ready,
and notes in its journal the audit events, reminders, variances and the end it saw on the way.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException

from ..clock import Clock, clinic_today
from ..definitions import Pathway
from ..errors import (
    ExecutionFailed,
    FieldError,
    InvalidTaskData,
    MessageNotExpected,
    NotPermitted,
    TaskNotReady,
)
from ..forms import Form, validate
from ..inputs import normalise_patient_ref
from ..sandbox import expressions
from ..steps import Step
from ..vocabulary import EventType, Role
from . import amendments, deadlines, reports
from .records import DeadlineBounds, Journal
from .tree import TaskTree, due_of

log = logging.getLogger(__name__)

_MAX_ROUNDS = 200


class CaseRun(TaskTree):
    """One advance of one case's workflow."""

    def __init__(
        self,
        *,
        case_id: str,
        workflow: Any,
        pathway: Pathway,
        clock: Clock,
        actor: str | None,
        memo: dict[str, Any] | None = None,
        roles: frozenset[str] | None = None,
        patient_ref: str | None = None,
    ) -> None:
        super().__init__(workflow=workflow, pathway=pathway)
        self.case_id = case_id
        self.roles = roles
        self.case_patient_ref = patient_ref
        self.clock = clock
        self.actor = actor
        self.journal = Journal(clock=clock, memo=memo)
        self.end: str | None = None
        self.patient_ref: str | None = None
        self.interrupted: str | None = None
        self._last_end: str | None = None
        self._completed_in_round = 0
        self.ready_steps_before = self.ready_steps()
        self._announced = {r.task_id for r in self.ready_steps_before}
        self.timers_before = set(self._timer_keys())

    def timers_changed(self) -> bool:
        """Tell whether the waiting timers differ from when the case was loaded."""
        return set(self._timer_keys()) != self.timers_before

    # -- acting --------------------------------------------------------------------------

    def start(self) -> None:
        """Run a new workflow up to its first waiting steps."""
        self.journal.event(
            EventType.CASE_STARTED,
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
        elif (
            isinstance(data, dict)
            and "patient_ref" in form.field_ids()
            and isinstance(data.get("patient_ref"), str)
        ):
            try:
                data = {**data, "patient_ref": normalise_patient_ref(data["patient_ref"])}
            except ValueError as exc:
                raise InvalidTaskData(step_id, [FieldError("patient_ref", str(exc))]) from None
        merged = self.journal.reports.get(step_id, []) if step and step.merges else []
        if merged and isinstance(data, dict):
            # Findings reported before this step was done are answered yes: never cleared here.
            data = {**data, **dict.fromkeys(merged, True)}
        accepted = validate(form, data, task=step_id, today=self._today())
        if self.case_patient_ref and accepted.get("patient_ref", self.case_patient_ref) != (
            self.case_patient_ref
        ):
            raise InvalidTaskData(
                step_id,
                [FieldError("patient_ref", "must be the case's own patient reference")],
            )
        task.set_data(**accepted)
        if step and step.completed_on:
            task.set_data(**{step.completed_on: self._today().isoformat()})
        if isinstance(accepted.get("patient_ref"), str):
            self.patient_ref = accepted["patient_ref"]
        self._changed()
        try:
            task.run()
        except SpiffWorkflowException as exc:
            raise ExecutionFailed(self.case_id, step_id, _reason(exc)) from None
        # The values entered are the case's clinical record (read back by views.record). The
        # patient reference is the case's own (one place to keep it in its one spelling).
        completed = self.journal.event(
            EventType.TASK_COMPLETED,
            step,
            actor=self.actor,
            fields=sorted(accepted),
            values={k: v for k, v in accepted.items() if k != "patient_ref"},  # form order
        )
        if merged:
            completed.detail["from_report"] = merged
            self.journal.reports.pop(step_id, None)
        if step:
            self._check_variances(step, task.data)
        self.run_engine()

    def deliver(self, message: str, data: Any) -> None:
        """Deliver a message (such as red_flag_reported) to the step waiting for it."""
        waiting = [(t, name) for t, name in self.waiting_messages() if name == message]
        if not waiting and reports.deliver_elsewhere(self, message, data):
            self.run_engine()
            return
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
        event = self.journal.event(
            EventType.MESSAGE, step, actor=self.actor, message=message, reported=reported
        )
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
        self.check_roles(step.role if step else None, what)

    def check_roles(self, role: str | None, what: str) -> None:
        """Refuse (NotPermitted) a caller who holds none of the comma-separated roles; no role
        named means anyone, and admin may do anything."""
        if self.roles is None or Role.ADMIN in self.roles:
            return
        allowed = {r.strip() for r in (role or "").split(",") if r.strip()}
        if allowed and not allowed & self.roles:
            raise NotPermitted(what, sorted(allowed))

    def reschedule(self, kind: str, due_at: datetime, reason: str) -> None:
        """Move a deadline within the diagram's limits (see ``deadlines``)."""
        deadlines.reschedule(self, kind, due_at, reason)

    def deadline_bounds(self) -> dict[str, DeadlineBounds]:
        """What each waiting deadline's limits come to, by timer task id (see ``deadlines``)."""
        return deadlines.deadline_bounds(self)

    def amend(self, step_id: str, data: Any, reason: str) -> None:
        """Correct fields of a completed step (see ``amendments``)."""
        amendments.amend(self, step_id, data, reason)

    def fire_due_timers(self) -> None:
        """Run the engine so that every timer due on the clock fires."""
        self.run_engine()

    def cancel(self, reason: str) -> None:
        """Cancel the workflow and record why."""
        self._changed()
        self.workflow.cancel()
        self.journal.event(EventType.CASE_CANCELLED, None, actor=self.actor, reason=reason)

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
            due = due_of(task) or (due_of(task.parent) if task.parent else None)
            self.journal.event(
                EventType.TIMER_FIRED,
                step,
                deadline=step.deadline,
                due_at=due.isoformat() if due else None,
            )
        if step is not None and step.reminder is not None:
            self._raise_reminder(task, step)
        dmn = getattr(spec, "dmnEngine", None)
        if dmn is not None:
            self._record_decision(task, step, dmn)
        if isinstance(spec, EndEvent) and spec.bpmn_id and task.workflow is self.workflow:
            self._last_end = str(spec.bpmn_id)

    def _record_decision(self, task: Any, step: Step | None, dmn: Any) -> None:
        """A decision taken: its outputs, and the rule that matched (evaluated again on the
        same data: the engine keeps only the outputs)."""
        table = dmn.decision_table
        outputs = {o.name: task.data.get(o.name) for o in table.outputs if o.name}
        matched = dmn.decide(task)
        rule = matched[0] if matched else None
        self.journal.event(
            EventType.DECISION,
            step,
            step_id=task.task_spec.bpmn_id,
            decision=(step.decision if step else None) or table.id,
            outputs=outputs,
            rule=rule.id if rule else None,
            rule_text=rule.description or None if rule else None,
        )

    def _raise_reminder(self, task: Any, step: Step) -> None:
        due = None
        ancestor = task
        for _ in range(12):
            if ancestor is None:
                break
            due = due_of(ancestor)
            if due is not None:
                break
            ancestor = ancestor.parent
        self.journal.reminder(step, due_at=due or self.clock.now())

    def _check_variances(self, step: Step, data: dict[str, Any]) -> None:
        for rule in step.variances:
            try:
                hit = expressions.evaluate(rule.condition, names=data, clock=self.clock)
            except expressions.ExpressionFailed as exc:
                raise ExecutionFailed(
                    self.case_id, step.id, f"variance rule {rule.code}: {exc.reason}"
                ) from None
            if hit:
                self.journal.variance(step, code=rule.code, rule=rule.rule, quote=rule.quote)

    def _finish(self) -> None:
        self._changed()
        now_ready = self.ready_tasks()
        for task in now_ready:
            if str(task.id) not in self._announced:
                self.journal.event(
                    EventType.TASK_READY,
                    self.pathway.step(task.task_spec.bpmn_id),
                    step_id=task.task_spec.bpmn_id,
                )
        self._announced = {str(t.id) for t in now_ready}
        if self.workflow.is_completed() and not self.journal.has(EventType.CASE_ENDED):
            # The case's end is the top-level end event that completed the workflow.
            self.end = self._last_end
            self.journal.event(
                EventType.CASE_ENDED, self.pathway.step(self.end), step_id=self.end, end=self.end
            )

    def _today(self) -> date:
        return clinic_today(self.clock)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:500]
