"""Coverage: which parts of a pathway a set of scenarios reached, and which none did.

A simulated case leaves a *trail* in its task tree (SpiffWorkflow keeps every task of a case,
completed or cancelled, in the tree): ``trail_of`` reads it once the case has run. A task was
reached when the flow arrived at it: it is ready, waiting, running or completed, or it was
cancelled after the task before it completed (a step made ready and then interrupted, a
parallel join another branch went through). A sequence flow was taken when the task at its
end was reached from the task at its start: the parent of a task in the tree is the task the
flow came from. SpiffWorkflow puts a split before an activity with boundary events (its
children are the activity and its boundary events: looked through, and no flow) and a join
after it, but hangs the activity's next task under the activity itself, beside the join. An
exclusive gateway keeps only the branch it chose, and an event-based gateway only the event
that occurred.

Timers count as reached when they fired (their task completed). A timer the flow reached with
a due time that never came is *armed, never fired*; one whose expression gave null (a rule that
does not apply to the case) is *disarmed*, and counts as not reached. An event-based gateway
holds its timer itself: the timer is armed when the gateway waits with a due time.

``coverage`` sets the trails of several scenarios against everything the diagram holds: its
steps (tasks, sub-processes, end events), sequence flows, timers, reminders (``pathway.reminder``)
and variance rules (``pathway.variance.<code>``, reached when a scenario recorded the variance
at that step). The variances a moved deadline records (``pathway.deadline.earlier.variance``)
are not counted: a scenario cannot move a deadline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.util.task import TaskState

from .diagrams import BPMN_NS, DISARMED
from .steps import read_steps

_B = f"{{{BPMN_NS}}}"
STEP_KINDS = (
    "task",
    "userTask",
    "manualTask",
    "scriptTask",
    "businessRuleTask",
    "serviceTask",
    "sendTask",
    "receiveTask",
    "subProcess",
    "transaction",
    "callActivity",
    "endEvent",
)
"""The diagram elements counted as steps."""
CATEGORIES = ("steps", "flows", "timers", "reminders", "variances")

_ARRIVED = (
    TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.COMPLETED | TaskState.ERROR
)


@dataclass(frozen=True)
class Trail:
    """What one simulated case reached, read from its task tree and its variances."""

    reached: frozenset[str]
    """Ids of the diagram elements the flow arrived at."""
    completed: frozenset[str]
    moves: frozenset[tuple[str, str]]
    """(from, to) element ids of each sequence flow taken."""
    armed: frozenset[str]
    """Timers that waited with a due time (fired or not)."""
    disarmed: frozenset[str]
    variances: frozenset[tuple[str, str]]
    """(step, code) of each variance recorded."""


def _arrived(task: Any) -> bool:
    if task.has_state(_ARRIVED):
        return True
    parent = task.parent
    return bool(
        task.state == TaskState.CANCELLED and parent and parent.has_state(TaskState.COMPLETED)
    )


def _source(task: Any) -> str | None:
    """The element whose completion brought the flow to a task, if it came along a flow."""
    parent = task.parent
    while parent is not None and parent.has_state(TaskState.COMPLETED):
        spec = parent.task_spec
        if isinstance(spec, BoundaryEventSplit):
            parent = parent.parent
            continue
        return str(spec.bpmn_id) if spec.bpmn_id else None
    return None


def _timers(task: Any) -> list[tuple[str, Any]]:
    """The timer elements a task waits on, with the due value it holds for them."""
    spec = task.task_spec
    definition = getattr(spec, "event_definition", None)
    value = task.internal_data.get("event_value")
    if isinstance(definition, TimerEventDefinition):
        return [(str(spec.bpmn_id), value)]
    if isinstance(definition, MultipleEventDefinition):
        # An event-based gateway takes its events' definitions, in the order of its outputs.
        return [
            (str(output.bpmn_id), value)
            for inner, output in zip(definition.event_definitions, spec.outputs, strict=False)
            if isinstance(inner, TimerEventDefinition)
        ]
    return []


def trail_of(workflow: Any, *, variances: Iterable[tuple[str, str]] = ()) -> Trail:
    """Read what a case reached from its workflow's task tree (and the variances it recorded)."""
    reached: set[str] = set()
    completed: set[str] = set()
    moves: set[tuple[str, str]] = set()
    armed: set[str] = set()
    disarmed: set[str] = set()
    for flow in [workflow, *workflow.subprocesses.values()]:
        for task in flow.tasks.values():
            spec = task.task_spec
            if not spec.bpmn_id or not _arrived(task):
                continue
            reached.add(str(spec.bpmn_id))
            if task.has_state(TaskState.COMPLETED):
                completed.add(str(spec.bpmn_id))
            attached = isinstance(spec, BoundaryEvent) and isinstance(
                getattr(task.parent, "task_spec", None), BoundaryEventSplit
            )
            source = None if attached else _source(task)
            if source is not None:
                moves.add((source, str(spec.bpmn_id)))
            for timer, value in _timers(task):
                if value == DISARMED:
                    disarmed.add(timer)
                elif value is not None:
                    armed.add(timer)
    return Trail(
        frozenset(reached),
        frozenset(completed),
        frozenset(moves),
        frozenset(armed),
        frozenset(disarmed),
        frozenset(variances),
    )


@dataclass(frozen=True)
class Element:
    """One thing coverage counts: a step, a flow, a timer, a reminder or a variance rule."""

    category: str
    id: str
    describe: dict[str, Any]
    """What the report shows of it beside its id (name, condition, expression, rule...)."""
    step: str | None = None
    """A variance rule's step."""
    source: str | None = None
    target: str | None = None


def _timer_body(node: etree._Element) -> str | None:
    definition = node.find(f"{_B}timerEventDefinition")
    if definition is None:
        return None
    for kind in ("timeDuration", "timeDate", "timeCycle"):
        body = definition.find(f"{_B}{kind}")
        if body is not None:
            return " ".join((body.text or "").split())
    return ""


def read_elements(root: etree._Element, *, process_id: str, file: str) -> list[Element]:
    """List what coverage counts in one process of a BPMN document, in the diagram's order."""
    process = next((p for p in root.iter(f"{_B}process") if p.get("id") == process_id), None)
    if process is None:
        raise ValueError(f"{file} has no process '{process_id}'")
    steps, _ = read_steps(root, file=file)
    by_id = {n.get("id"): n for n in process.iter() if isinstance(n.tag, str) and n.get("id")}
    elements: list[Element] = []
    variances: list[Element] = []
    for node in process.iter():
        if not isinstance(node.tag, str) or not node.tag.startswith(_B):
            continue
        kind, ident = etree.QName(node).localname, node.get("id")
        if not ident:
            continue
        name = node.get("name")
        if kind in STEP_KINDS:
            elements.append(Element("steps", ident, {"kind": kind, "name": name}))
        if kind == "sequenceFlow":
            source, target = node.get("sourceRef"), node.get("targetRef")
            condition = node.find(f"{_B}conditionExpression")
            default = by_id.get(source) is not None and by_id[source].get("default") == ident
            text = " ".join((condition.text or "").split()) if condition is not None else None
            describe = {"from": source, "to": target, "name": name, "condition": text}
            describe["default"] = default
            elements.append(Element("flows", ident, describe, source=source, target=target))
        body = _timer_body(node) if kind in ("boundaryEvent", "intermediateCatchEvent") else None
        step = steps.get(ident)
        if body is not None:
            where = node.get("attachedToRef")
            describe = {
                "name": name,
                "event": "boundary" if kind == "boundaryEvent" else "intermediate",
                "attached_to": where,
                "expression": body,
                "deadline": step.deadline if step else None,
            }
            elements.append(Element("timers", ident, describe))
        if step is not None and step.reminder is not None:
            describe = {"name": name, "reminder": step.reminder.kind}
            elements.append(Element("reminders", ident, describe))
        for rule in step.variances if step is not None else ():
            describe = {"step": ident, "rule": rule.rule, "condition": rule.condition}
            variances.append(Element("variances", rule.code, describe, step=ident))
    return elements + variances


@dataclass
class _Tally:
    element: Element
    by: list[str] = field(default_factory=list)
    armed_by: list[str] = field(default_factory=list)
    disarmed_by: list[str] = field(default_factory=list)


def _hit(element: Element, trail: Trail) -> bool:
    if element.category == "flows":
        return (element.source, element.target) in trail.moves
    if element.category == "timers":
        return element.id in trail.completed
    if element.category == "variances":
        return (element.step, element.id) in trail.variances
    return element.id in trail.reached


def coverage(
    elements: list[Element], trails: list[tuple[str, Trail]], *, pathway: str, file: str
) -> dict[str, Any]:
    """Set the trails of named scenarios against a pathway's elements: per category, what at
    least one scenario reached (with which), what none did, the totals and a percentage."""
    tallies = [_Tally(e) for e in elements]
    for label, trail in trails:
        for tally in tallies:
            if _hit(tally.element, trail):
                tally.by.append(label)
            elif tally.element.category == "timers":
                if tally.element.id in trail.armed:
                    tally.armed_by.append(label)
                elif tally.element.id in trail.disarmed:
                    tally.disarmed_by.append(label)
    report: dict[str, Any] = {
        "pathway": pathway,
        "file": file,
        "scenarios": [label for label, _ in trails],
    }
    for category in CATEGORIES:
        mine = [t for t in tallies if t.element.category == category]
        reached = [_item(t, t.by) for t in mine if t.by]
        section: dict[str, Any] = {
            "total": len(mine),
            "reached_count": len(reached),
            "percent": round(100 * len(reached) / len(mine), 1) if mine else None,
            "reached": reached,
        }
        if category == "timers":
            section["armed_not_fired"] = [
                _item(t, t.armed_by) for t in mine if not t.by and t.armed_by
            ]
            section["unreached"] = [
                _item(t, [], disarmed_by=t.disarmed_by) for t in mine if not t.by and not t.armed_by
            ]
        else:
            section["unreached"] = [_item(t, []) for t in mine if not t.by]
        report[category] = section
    return report


def _item(tally: _Tally, by: list[str], *, disarmed_by: list[str] | None = None) -> dict[str, Any]:
    item = {"id": tally.element.id, **tally.element.describe}
    if by:
        item["by"] = by
    if disarmed_by:
        item["disarmed_by"] = disarmed_by
    return item
