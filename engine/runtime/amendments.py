"""Amendments: the role of a step corrects fields of it after it was completed.

What a correction may do, and may not:
- every copy of the old value in the workflow takes the new one, so later steps and rules
  read the corrected data;
- a deadline anchored on a date (a ``timeDate`` timer, such as symptom onset + 3 months)
  follows the corrected data; if its new date has passed it fires at once;
- a decision already taken (a DMN decision, an exclusive gateway's choice) must not change:
  such a correction is refused, naming the decision. Nothing de-escalates by correction: a
  new finding is reported with a message the diagram takes (the refusal names them);
- the timeline keeps the old and the new values, who corrected them and why.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState

from ..clock import clinic_zone
from ..diagrams import DISARMED, ClockedTimeDate, to_utc
from ..errors import DecisionWouldChange, FieldError, InvalidTaskData, StepNotCompleted
from ..forms import validate
from ..vocabulary import EventType
from .tree import timer_definition, timer_step

if TYPE_CHECKING:
    from .run import CaseRun


def amend(run: CaseRun, step_id: str, data: Any, reason: str) -> None:
    """Correct fields of a completed step (see the module's rules), then run the engine."""
    completed = run.workflow.get_tasks(state=TaskState.COMPLETED)
    done = [t for t in completed if t.task_spec.bpmn_id == step_id]
    step = run.pathway.step(step_id)
    if done and step is not None and step.form is None:
        raise InvalidTaskData(step_id, [FieldError("data", "this step has no form to correct")])
    if not done or step is None or step.form is None:
        with_forms = {
            t.task_spec.bpmn_id
            for t in completed
            if (s := run.pathway.step(t.task_spec.bpmn_id)) is not None and s.form is not None
        }
        raise StepNotCompleted(run.case_id, step_id, sorted(with_forms))
    run._check_permitted(step, step_id)
    if not isinstance(data, dict) or not data:
        raise InvalidTaskData(
            step_id, [FieldError("data", "name the fields to correct and their new values")]
        )
    if "patient_ref" in data:
        raise InvalidTaskData(
            step_id, [FieldError("patient_ref", "is the case's own reference, not corrected here")]
        )
    task = done[-1]
    current = {name: task.data[name] for name in step.form.field_ids() if name in task.data}
    accepted = validate(step.form, {**current, **data}, task=step_id, today=run._today())
    changes = {
        name: (current.get(name), accepted.get(name))
        for name in data
        if current.get(name) != accepted.get(name)
    }
    if not changes:
        raise InvalidTaskData(step_id, [FieldError("data", "changes nothing: it is already so")])
    _refuse_changed_decisions(run, changes)
    run._changed()
    for other in run.workflow.get_tasks():
        for name, (old, new) in changes.items():
            if name in other.data and other.data[name] == old:
                other.data[name] = new
    moved = _follow_clinical_dates(run, changes)
    detail: dict[str, Any] = {
        "changes": {name: {"from": old, "to": new} for name, (old, new) in changes.items()},
        "reason": reason,
    }
    if moved:
        detail["deadlines_moved"] = moved
    run.journal.event(EventType.TASK_AMENDED, step, actor=run.actor, **detail)
    # The rules of every completed step that read a corrected field run again on its data.
    for other in run.workflow.get_tasks(state=TaskState.COMPLETED):
        ruled = run.pathway.step(other.task_spec.bpmn_id)
        if ruled is not None and ruled.variances and any(n in other.data for n in changes):
            run._check_variances(ruled, other.data)
    run.run_engine()


def _amended(task: Any, changes: dict[str, tuple[Any, Any]]) -> Any:
    """The task as a decision would see it with the corrected values."""
    data = dict(task.data)
    data.update({name: new for name, (_, new) in changes.items() if name in data})
    return SimpleNamespace(data=data, workflow=task.workflow, task_spec=task.task_spec)


def _refuse_changed_decisions(run: CaseRun, changes: dict[str, tuple[Any, Any]]) -> None:
    messages = tuple(sorted({s.message for s in run.pathway.steps.values() if s.message}))
    for task in run.workflow.get_tasks(state=TaskState.COMPLETED):
        if not any(name in task.data for name in changes):
            continue  # the decision never saw these fields
        spec = task.task_spec
        dmn = getattr(spec, "dmnEngine", None)
        if dmn is not None:
            # The decision as it would be taken now, on the data as it is and as corrected: a
            # rule that reads today() must not make an unrelated correction look like a change.
            outputs = [o.name for o in dmn.decision_table.outputs if o.name]
            as_is, corrected = dmn.result(_amended(task, {})), dmn.result(_amended(task, changes))
            before = {name: as_is.get(name) for name in outputs}
            after = {name: corrected.get(name) for name in outputs}
            if after != before:
                step = run.pathway.step(spec.bpmn_id)
                name = (step.decision if step else None) or spec.bpmn_id
                raise DecisionWouldChange(run.case_id, name, before, after, messages=messages)
        if getattr(spec, "cond_task_specs", None) and hasattr(spec, "default_task_spec"):
            taken = {child.task_spec.name for child in task.children}
            chosen = _choice(run, task, changes)
            if chosen is not None and chosen not in taken and chosen != _choice(run, task, {}):
                label = f"{spec.bpmn_id} ({spec.bpmn_name})" if spec.bpmn_name else spec.bpmn_id
                raise DecisionWouldChange(
                    run.case_id,
                    label,
                    {"path": sorted(taken)},
                    {"path": [chosen]},
                    messages=messages,
                )


def _choice(run: CaseRun, task: Any, changes: dict[str, tuple[Any, Any]]) -> str | None:
    """The branch an exclusive gateway would take on the corrected data."""
    shim = _amended(task, changes)
    for condition, target in task.task_spec.cond_task_specs:
        if condition is not None and condition._matches(shim):
            return str(target)
    default = task.task_spec.default_task_spec
    return str(default) if default is not None else None


def _follow_clinical_dates(
    run: CaseRun, changes: dict[str, tuple[Any, Any]]
) -> list[dict[str, Any]]:
    """Move every waiting date-anchored timer whose date the correction changes.

    The timer's expression is evaluated on the data before and after the correction; only a
    timer whose date differs moves (an unrelated correction, or a timer a report arms, is left
    alone). A timer a person had brought forward keeps the earlier of its time and the new
    date: a correction never makes a deadline later than someone chose to have it.
    """
    moved = []
    zone = clinic_zone(run.clock)
    engine = run.workflow.script_engine

    def due(task: Any, definition: Any) -> str | None:
        value = engine.evaluate(task, definition.expression)
        return None if value is None else to_utc(value, zone=zone).isoformat()

    for task in run.workflow.get_tasks(state=TaskState.WAITING):
        definition = timer_definition(task.task_spec)
        step = run.pathway.step(timer_step(task.task_spec, run.pathway) or "")
        if not isinstance(definition, ClockedTimeDate) or (step and step.escalation):
            continue
        before = due(
            _amended(task, {k: (new, old) for k, (old, new) in changes.items()}), definition
        )
        after = due(task, definition)
        current = task.internal_data.get("event_value")
        if after == before or after is None or current == DISARMED:
            continue
        if current in (None, before):
            chosen = after
        else:  # moved by hand: the earlier of the two
            chosen = min(to_utc(current), to_utc(after)).isoformat()
        if chosen == current:
            continue
        task.internal_data["event_value"] = chosen
        moved.append(
            {
                "deadline": (step.deadline if step else None) or task.task_spec.bpmn_id,
                "from": current,
                "to": chosen,
            }
        )
    return moved
