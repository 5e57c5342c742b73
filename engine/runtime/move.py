"""Moving one case's workflow from one version of its pathway to another.

A ``Plan`` aligns the task specs of two versions, process by process, with SpiffWorkflow's
``SpecDiff`` (the same element id first, then the same place in the flow). A case can move
when every task it has reached (done, ready, waiting or running) has a counterpart in the new
version; tasks it has only been predicted to reach are predicted again from the new version.

Moving keeps what the case has: every task keeps its id, data and internal data, so a waiting
timer keeps the due time it was given (SpiffWorkflow's own ``migrate_workflow`` resets the
branches of ready and waiting tasks with their internal data cleared, which would restart a
timer from the moment of migration, as Camunda 7 does). Ready and waiting tasks are then
re-predicted from the new version, so a step added ahead of the case appears when its turn
comes.

``blockers`` reads the stored task tree without restoring it, for dry runs over many cases.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.util.diff import SpecDiff
from SpiffWorkflow.util.task import TaskState

from ..diagrams import ParsedPathway
from .state import read_document

# Tasks a case has reached: their step must exist in the version it moves to. A cancelled
# task (a branch the case left, a timer a red flag stopped) is history the timeline keeps;
# one whose step the new version lacks is dropped from the tree.
_REACHED = (
    TaskState.WAITING | TaskState.READY | TaskState.STARTED | TaskState.COMPLETED | TaskState.ERROR
)
_AT = TaskState.WAITING | TaskState.READY | TaskState.STARTED
_RESET = TaskState.READY | TaskState.WAITING
_DROPPED = TaskState.MAYBE | TaskState.LIKELY | TaskState.FUTURE | TaskState.CANCELLED

# Specs SpiffWorkflow adds around the diagram's own elements: named after an element, so a
# reason names the element.
_GENERATED = (".BoundaryEventSplit", ".BoundaryEventJoin", ".EndJoin")


class MigrationRefused(Exception):
    """A case cannot move to the new version; ``reason`` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _element(spec_name: str) -> str:
    """How a reason names a task's step: the element, or what SpiffWorkflow added around it."""
    for suffix in _GENERATED:
        if spec_name.endswith(suffix):
            what = "end" if suffix == ".EndJoin" else "boundary events"
            return f"the {what} of `{spec_name[: -len(suffix)]}`"
    return f"`{spec_name}`"


@dataclass(frozen=True)
class _ProcessPlan:
    """One process's alignment: old spec name -> new spec (None when the new version has
    nothing in its place)."""

    new_spec: Any | None
    alignment: dict[str, Any | None]
    branching: frozenset[str] = frozenset()
    """Old specs that open branches side by side (boundary events, parallel or inclusive
    splits, event gateways) and whose branches the new version changes: a case whose step
    came from one of them would miss a new branch, since the split has run already."""

    def target(self, name: str) -> Any | None:
        return self.alignment.get(name)


class Plan:
    """How the specs of one version map onto another's, for every process in them."""

    def __init__(self, old: ParsedPathway, new: ParsedPathway, *, to_version: int) -> None:
        self.to_version = to_version
        self.new = new
        self.processes: dict[str, _ProcessPlan] = {
            old.spec.name: _align(old.spec, new.spec),
        }
        for name, spec in old.subprocess_specs.items():
            self.processes[name] = _align(spec, new.subprocess_specs.get(name))

    def removed(self) -> dict[str, list[str]]:
        """Old spec names with no counterpart, by process (for messages and tests)."""
        return {
            process: sorted(n for n, t in plan.alignment.items() if t is None)
            for process, plan in self.processes.items()
        }

    def refusal(
        self, process: str, spec_name: str, state: int, parent: str | None = None
    ) -> str | None:
        """Why a task of this spec and state (whose parent task has the spec ``parent``)
        stops the move; None when it does not."""
        plan = self.processes.get(process)
        if plan is not None and plan.new_spec is None:
            return (
                f"inside `{process}`, which version {self.to_version} removes"
                if state & _AT
                else None
            )
        if plan is None or not state & _REACHED:
            return None
        element = _element(spec_name)
        target = plan.target(spec_name)
        if target is None:
            if state & _AT:
                return f"waiting at {element}, which version {self.to_version} removes"
            return (
                f"has passed {element}, which version {self.to_version} removes "
                "(its record would point at a step the version does not have)"
            )
        if state & _AT and parent in plan.branching:
            return (
                f"at {element}, beside which version {self.to_version} adds or removes a "
                "branch (a boundary event or a parallel path) that the case would miss: move "
                "the case once it has left this step"
            )
        if state & _AT and parent is not None:
            came_from = plan.target(parent)
            if came_from is not None and came_from.name not in {i.name for i in target.inputs}:
                # e.g. a boundary event added to, or taken from, the step the case is at:
                # the case's tree has no place for it, and the step could not complete.
                return (
                    f"at {element}, whose place in the flow version {self.to_version} changes "
                    "(what leads to it, or a boundary event on it): move the case once it "
                    "has left this step"
                )
        return None


class _Alignment(SpecDiff):  # type: ignore[misc]
    """SpecDiff's alignment without its attribute comparison (which serializes every spec;
    a move does not need to know what changed inside an aligned spec)."""

    def _compare_task_specs(self, spec: Any, candidate: Any) -> list[str]:
        return []


def _align(old_spec: Any, new_spec: Any | None) -> _ProcessPlan:
    if new_spec is None:
        return _ProcessPlan(None, dict.fromkeys(old_spec.task_specs))
    diff = _Alignment(None, old_spec, new_spec)
    alignment: dict[str, Any | None] = {}
    for name, spec in old_spec.task_specs.items():
        if spec in diff.alignment:
            alignment[name] = diff.alignment[spec]
        else:  # SpecDiff walks from the start event; a spec it did not reach keeps its id
            alignment[name] = new_spec.task_specs.get(name)
    branching = frozenset(
        name
        for name, spec in old_spec.task_specs.items()
        if (target := alignment[name]) is not None
        and len(spec.outputs) + len(target.outputs) > 2
        and not _chooses_one(spec)
        and {o.name for o in spec.outputs} != {o.name for o in target.outputs}
    )
    return _ProcessPlan(new_spec, alignment, branching)


def _chooses_one(spec: Any) -> bool:
    """An exclusive gateway has taken its one branch: new branches beside it do not matter
    to a case that has passed it."""
    return "ExclusiveGateway" in type(spec).__name__


_plans: dict[tuple[str, str], Plan] = {}
_plans_lock = threading.Lock()


def plan_for(
    old: ParsedPathway, new: ParsedPathway, *, key: tuple[str, str], to_version: int
) -> Plan:
    """The plan between two parsed versions, computed once per pair of content hashes."""
    with _plans_lock:
        found = _plans.get(key)
    if found is None:
        found = Plan(old, new, to_version=to_version)
        with _plans_lock:
            if len(_plans) > 64:
                _plans.clear()
            _plans[key] = found
    return found


def _tasks_of(document: dict[str, Any], top: str) -> Iterator[tuple[str, str, int, str | None]]:
    """Each stored task: its process, spec, state and its parent task's spec."""
    for process, tasks in [
        (top, document["tasks"]),
        *((sub["spec"], sub["tasks"]) for sub in document.get("subprocesses", {}).values()),
    ]:
        for task in tasks.values():
            parent = tasks.get(task.get("parent") or "")
            yield process, task["task_spec"], task["state"], parent and parent["task_spec"]


def blockers(blob: bytes, plan: Plan, *, top: str) -> list[str]:
    """Why a stored case cannot move, read from its stored tree without restoring it."""
    reasons: list[str] = []
    for process, spec_name, state, parent in _tasks_of(read_document(blob), top):
        reason = plan.refusal(process, spec_name, state, parent)
        if reason is not None and reason not in reasons:
            reasons.append(reason)
    return reasons


def _workflows(workflow: Any) -> Iterator[Any]:
    yield workflow
    yield from workflow.subprocesses.values()


def _reset_keeping(task: Any) -> None:
    """Re-predict a ready or waiting task's branch from its (new) spec, keeping the task's
    own data and internal data: a waiting timer keeps its due time."""
    internal, data = task.internal_data, task.data
    task._drop_children(force=True)
    task._set_state(TaskState.FUTURE)
    task.internal_data, task.data = internal, data
    task.task_spec._predict(task, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
    task.task_spec._update(task)


def apply(workflow: Any, plan: Plan) -> None:
    """Move a restored workflow onto the plan's new version, in place.

    Raises ``MigrationRefused`` (nothing worth keeping has changed: the caller discards the
    workflow) when a task the case has reached has no counterpart in the new version, or the
    step it is at has another place in the new version's flow.
    """
    top = workflow.spec.name
    refusals = [
        reason
        for wf in _workflows(workflow)
        for task in wf.tasks.values()
        if (
            reason := plan.refusal(
                top if wf is workflow else wf.spec.name,
                task.task_spec.name,
                task.state,
                task.parent.task_spec.name if task.parent is not None else None,
            )
        )
    ]
    if refusals:
        raise MigrationRefused("; ".join(dict.fromkeys(refusals)))
    for wf in _workflows(workflow):
        process = plan.processes[top if wf is workflow else wf.spec.name]
        wf.spec = process.new_spec
        stale = []
        for task in wf.tasks.values():
            target = process.target(task.task_spec.name)
            if target is None:
                stale.append(task)
            else:
                task.task_spec = target
        for task in list(wf.get_tasks(state=_RESET, skip_subprocesses=True)):
            if task.id in wf.tasks:
                _reset_keeping(task)
        for task in stale:
            if task.id in wf.tasks and task.has_state(_DROPPED):
                wf._remove_task(task.id)
        if wf.last_task is not None and wf.last_task.id not in wf.tasks:
            wf.last_task = None
    if workflow is not None:
        workflow.subprocess_specs = plan.new.subprocess_specs
