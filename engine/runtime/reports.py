"""Reports no catching event waits for: a red flag reported during intake or the screen, or
inside the urgent branch. The diagram says what each may do:

- a step with ``pathway.merges`` (the screen) takes the reports made before it is completed
  into its answers when it is: a reported finding is true there, whatever is entered;
- a timer with ``pathway.escalation.*`` (the emergency clock of the urgent branch) is armed
  when a report raises the case to its urgency, as the named decision classifies the report
  merged with what is known: it falls due that long after the report.

A report that raises nothing is still recorded, with who made it. Nothing de-escalates.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState

from ..diagrams import add_iso_duration
from ..steps import Step
from ..vocabulary import EventType
from .tree import due_of, timer_definition, timer_step

if TYPE_CHECKING:
    from .run import CaseRun

_FINISHED = TaskState.COMPLETED | TaskState.CANCELLED


def deliver_elsewhere(run: CaseRun, message: str, data: Any) -> bool:
    """Take a report that no catching event waits for; False when nothing may take it."""
    source = next((s for s in run.pathway.steps.values() if s.message == message), None)
    if source is None:
        return False
    completed = {t.task_spec.bpmn_id for t in run.workflow.get_tasks(state=TaskState.COMPLETED)}
    merge_into = next(
        (s for s in run.pathway.steps.values() if s.merges == message and s.id not in completed),
        None,
    )
    armed = [
        (task, step)
        for task in run.workflow.get_tasks(state=TaskState.WAITING | TaskState.COMPLETED)
        if timer_definition(task.task_spec) is not None
        and (step := run.pathway.step(timer_step(task.task_spec, run.pathway) or "")) is not None
        and step.escalation is not None
        and step.escalation.message == message
    ]
    if merge_into is None and not armed:
        return False
    run._check_permitted(source, message)
    payload = run._message_payload(message, source, data)
    reported = sorted(k for k, v in payload.items() if v is True)
    event = run.journal.event(
        EventType.MESSAGE, source, actor=run.actor, message=message, reported=reported
    )
    if merge_into is not None:
        run.journal.add_report(merge_into.id, reported)
        event.detail["merged_into"] = merge_into.id
    for task, step in armed:
        if task.state == TaskState.WAITING:  # a clock that has fired is left as it was
            event.detail.update(_escalate(run, task, step, reported))
    return True


def _escalate(run: CaseRun, task: Any, step: Step, reported: list[str]) -> dict[str, Any]:
    """Classify the report with what is known; arm the timer when it reaches its urgency."""
    escalation = step.escalation
    assert escalation is not None
    decided = [
        t
        for t in run.workflow.get_tasks(state=TaskState.COMPLETED)
        if t.task_spec.bpmn_id == escalation.decision
    ]
    dmn = getattr(decided[-1].task_spec, "dmnEngine", None) if decided else None
    if dmn is None:
        return {}
    merged = {**task.data, **dict.fromkeys(reported, True)}
    shim = SimpleNamespace(data=merged, workflow=run.workflow, task_spec=decided[-1].task_spec)
    outputs = dmn.result(shim)
    if outputs.get("urgency") != escalation.urgency or task.data.get("urgency") == (
        escalation.urgency
    ):
        return {}  # not more urgent than the branch already is
    due = add_iso_duration(run.clock.now(), escalation.clock)
    armed = due_of(task)
    if armed is not None and armed <= due:
        return {}  # already armed, as soon or sooner, by an earlier report
    run._changed()
    task.internal_data["event_value"] = due.isoformat()
    for other in run.workflow.get_tasks():
        if other.state & _FINISHED:
            continue  # history stays as it was decided
        other.data.update({k: v for k, v in outputs.items() if k in other.data})
    shim.data = {**merged, **outputs}
    run._record_decision(shim, run.pathway.step(escalation.decision), dmn)
    return {
        "escalated_to": escalation.urgency,
        "deadline": step.deadline or step.id,
        "due_at": due.isoformat(),
    }
