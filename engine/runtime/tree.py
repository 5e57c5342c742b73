"""Reading a case's task tree: the steps people can do now, what they are due by, and the
timers and messages the workflow waits on. Nothing here changes the workflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState

from ..definitions import Pathway
from ..diagrams import due_time
from .records import ReadyStep, WaitingTimer


def timer_definition(spec: Any) -> TimerEventDefinition | None:
    definition = getattr(spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        return definition
    if isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            if isinstance(inner, TimerEventDefinition):
                return inner
    return None


def timer_step(spec: Any, pathway: Pathway) -> str | None:
    """The diagram element a waiting timer belongs to (an event gateway's timer branch)."""
    if isinstance(getattr(spec, "event_definition", None), MultipleEventDefinition):
        for output in spec.outputs:
            step = pathway.step(output.bpmn_id)
            if step is not None and step.timer:
                return step.id
    return str(spec.bpmn_id) if spec.bpmn_id else None


def due_of(task: Any) -> datetime | None:
    return due_time(task.internal_data.get("event_value"))


class TaskTree:
    """A view of one workflow's task tree, rescanned only after the workflow changed."""

    def __init__(self, *, workflow: Any, pathway: Pathway) -> None:
        self.workflow = workflow
        self.pathway = pathway
        self._snapshot: tuple[list[Any], list[Any]] | None = None
        self._changed()

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
                        due = due_of(sibling)
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
                due = due_of(ancestor) or (due_of(ancestor.parent) if ancestor.parent else None)
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
            if timer_definition(task.task_spec) is None:
                continue
            due = due_of(task)
            step = timer_step(task.task_spec, self.pathway)
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
