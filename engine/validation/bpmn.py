"""Checks on a parsed BPMN document beyond its XML schema: what SpiffWorkflow and the
sandbox accept, and what a pathway needs (roles, evidence, reminders, diagram layout).

``check_bpmn`` runs, on each executable process, the checks held here (diagram code, flows and
gateways, timers, tasks, steps, layout, the decisions business rule tasks call), then has
SpiffWorkflow build the process and adds what it refuses, worded by ``validation.spiff``.

Every check is collected, not stop-at-first; each problem names the element, its line and what
to change. Nothing here runs diagram code: expressions are only compiled by the sandbox.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from lxml import etree

from ..diagrams import BPMN_NS, BusinessRuleTaskParser
from ..errors import Problem
from ..steps import ROLES, Step, read_steps
from .problems import (
    FLOW_NODES,
    bpmn_kind,
    code_problem,
    find_by_id,
    label,
    local,
    owner,
    problem,
    text_of,
)
from .properties import property_problems
from .reminders import reminder_checks
from .spiff import clean_message, crash_problem, engine_checks, merge_engine_problems
from .timers import timer_body_problem

# With the helpers that live in validation.problems and validation.spiff: importable from here.
__all__ = [
    "BPMNDI_NS",
    "DMN13_NS",
    "DecisionSource",
    "bpmn_kind",
    "check_bpmn",
    "clean_message",
    "code_problem",
    "crash_problem",
    "decision_refs",
    "find_by_id",
    "label",
    "local",
    "owner",
    "problem",
    "text_of",
]

_B = f"{{{BPMN_NS}}}"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DMN13_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"
_TIMES = ("timeDate", "timeDuration", "timeCycle")
_DRAWN = tuple(f"{_B}{kind}" for kind in sorted({*FLOW_NODES, "sequenceFlow"}))


@dataclass(frozen=True)
class DecisionSource:
    """Where a DMN decision comes from, and whether that file can be deployed."""

    file: str
    root: etree._Element
    usable: bool


def _descendants(process: etree._Element, kind: str) -> Iterator[etree._Element]:
    yield from process.iter(f"{_B}{kind}")


def _expression_checks(file: str, process: etree._Element) -> Iterator[Problem | None]:
    for flow in _descendants(process, "sequenceFlow"):
        condition = text_of(flow.find(f"{_B}conditionExpression"))
        if condition:
            yield code_problem(file, flow, "the condition", condition)
    for kind in ("condition", "loopCardinality", "completionCondition", "loopCondition"):
        for node in _descendants(process, kind):
            if text_of(node):
                yield code_problem(file, owner(node), f"the {kind}", text_of(node))
    for definition in _descendants(process, "timerEventDefinition"):
        event = owner(definition)
        for kind in _TIMES:
            body = definition.find(f"{_B}{kind}")
            text = text_of(body) if body is not None else ""
            yield timer_body_problem(file, event, kind, text)
    for task in _descendants(process, "scriptTask"):
        script = task.find(f"{_B}script")
        if script is not None and text_of(script):
            yield code_problem(file, task, "the script", script.text or "", script=True)


def _flow_checks(file: str, process: etree._Element) -> Iterator[Problem]:
    leaving: dict[str | None, list[etree._Element]] = {}
    for flow in _descendants(process, "sequenceFlow"):
        leaving.setdefault(flow.get("sourceRef"), []).append(flow)
    for kind in ("exclusiveGateway", "inclusiveGateway"):
        for gateway in _descendants(process, kind):
            outgoing = leaving.get(gateway.get("id"), [])
            if len(outgoing) < 2:
                continue
            for flow in outgoing:
                if flow.get("id") != gateway.get("default") and not text_of(
                    flow.find(f"{_B}conditionExpression")
                ):
                    yield problem(
                        file,
                        flow,
                        f"{label(flow)} leaves {label(gateway)} without a condition",
                        "add a condition, or make it the gateway's "
                        "default flow; a gateway has one default flow",
                    )
    for definition in _descendants(process, "timerEventDefinition"):
        event = owner(definition)
        bodies = [definition.find(f"{_B}{kind}") for kind in _TIMES]
        if all(body is None for body in bodies):
            yield problem(
                file,
                event,
                f"{label(event)} has no time definition",
                "add a timeDuration such as P6W, a timeDate or a timeCycle",
            )
        for kind, body in zip(_TIMES, bodies, strict=True):
            if body is not None and not text_of(body):
                yield problem(
                    file,
                    event,
                    f"{label(event)} has an empty {kind}",
                    "write an ISO 8601 value such as P14D, or an expression giving one",
                )
    timed = {
        owner(definition).get("id") for definition in _descendants(process, "timerEventDefinition")
    }
    for gateway in _descendants(process, "eventBasedGateway"):
        targets = {f.get("targetRef") for f in leaving.get(gateway.get("id"), [])}
        timers = targets & timed - {None}
        if len(timers) > 1:
            yield problem(
                file,
                gateway,
                f"{label(gateway)} waits on {len(timers)} timers; the "
                "engine fires only one of them on time (SpiffWorkflow #419)",
                "keep one timer per event-based gateway",
            )


@functools.lru_cache(maxsize=4)
def _callable(process_ids: frozenset[str]) -> str:
    """The processes a call activity may call, as a fix names them (the first ten)."""
    known = sorted(process_ids)
    shown = ", ".join(known[:10]) + (f" and {len(known) - 10:,} more" if known[10:] else "")
    return shown or "(none)"


def _task_checks(
    file: str,
    process: etree._Element,
    process_ids: frozenset[str],
    declared: Mapping[str, set[str]],
) -> Iterator[Problem]:
    for task in _descendants(process, "serviceTask"):
        yield problem(
            file,
            task,
            f"{label(task)} cannot run: there is no service to call",
            "make it a user task, done by a person, or a script task",
        )
    for store in _descendants(process, "dataStoreReference"):
        yield problem(
            file,
            store,
            f"{label(store)} is not supported: the engine keeps a case's data in the case",
            "remove the data store and its references",
        )
    for call in _descendants(process, "callActivity"):
        called = (call.get("calledElement") or "").strip()
        if not called:
            yield problem(
                file,
                call,
                f"{label(call)} does not name the process it calls",
                "set calledElement to the id of a process in this file",
            )
        elif called not in process_ids:
            yield problem(
                file,
                call,
                f"{label(call)} calls process '{called}', which is not in this file",
                f"add process '{called}' to this file, or call one of: {_callable(process_ids)}",
            )
    for kind, attribute in (("message", "messageRef"), ("signal", "signalRef")):
        for node in process.xpath(f".//*[@{attribute}]"):
            ref = node.get(attribute)
            if ref and ref not in declared[kind]:
                event = owner(node)
                yield problem(
                    file,
                    event,
                    f"{label(event)} refers to {kind} '{ref}', which the file does not declare",
                    f"declare it with a bpmn:{kind} element; in "
                    f"bpmn.io, select the event and create the {kind} there",
                )


def _step_checks(
    file: str,
    process: etree._Element,
    steps: Mapping[str, Step],
    step_problems: Mapping[str | None, list[Problem]],
) -> Iterator[Problem]:
    identified = process.xpath("descendant-or-self::*[@id]")  # in C: most elements have none
    ids = {n.get("id") for n in identified}
    for ident in dict.fromkeys(n.get("id") for n in identified):  # in the file's order
        yield from step_problems.get(ident, ())
    for node in identified:
        kind = bpmn_kind(node)
        step = steps.get(node.get("id") or "") if kind else None
        if step is None or step.id not in ids:
            continue
        if kind == "userTask" and not (step.role or "").strip():
            yield problem(
                file,
                node,
                f"{label(node)} has no role",
                "set camunda:candidateGroups to one of " + ", ".join(ROLES),
            )
        is_timer = node.find(f"{_B}timerEventDefinition") is not None
        if kind in ("userTask", "businessRuleTask") or (kind.endswith("Event") and is_timer):
            missing = [
                what
                for what, value in (
                    ("rationale (bpmn:documentation)", step.evidence.rationale),
                    ("guideline source (pathway.evidence.source property)", step.evidence.source),
                )
                if not value
            ]
            if missing:
                yield problem(
                    file,
                    node,
                    f"{label(node)} does not say why it is here: it has "
                    "no " + " and no ".join(missing),
                    "add a bpmn:documentation "
                    "rationale and a camunda property pathway.evidence.source",
                )
        yield from property_problems(file, node, step)
        yield from reminder_checks(file, node, step)
        for rule in step.variances:
            if not rule.condition.strip():
                yield problem(
                    file,
                    node,
                    f"variance '{rule.code}' of {label(node)} has no condition",
                    "write a condition on the step's data",
                )
                continue
            found_code = code_problem(
                file, node, f"the variance condition '{rule.code}'", rule.condition
            )
            if found_code:
                yield found_code


def _layout_checks(file: str, process: etree._Element, drawn: set[str | None]) -> Iterator[Problem]:
    for node in process.iter(*_DRAWN):
        if node.get("id") not in drawn:
            yield problem(
                file,
                node,
                f"no diagram layout for {label(node)}",
                "open and save the file in bpmn.io / Camunda Modeler to add it",
            )


def decision_refs(root: etree._Element) -> list[tuple[etree._Element, str | None]]:
    """Return each business rule task of a BPMN document with the decision it calls."""
    return [
        (task, BusinessRuleTaskParser.get_decision_ref(task))
        for task in root.iter(f"{_B}businessRuleTask")
    ]


def _stub_dmn(decision_id: str) -> etree._Element:
    definitions = etree.Element(f"{{{DMN13_NS}}}definitions", nsmap={None: DMN13_NS})
    decision = etree.SubElement(definitions, f"{{{DMN13_NS}}}decision", id=decision_id)
    etree.SubElement(decision, f"{{{DMN13_NS}}}decisionTable", id=f"{decision_id}_stub_table")
    return definitions


def _decision_checks(
    file: str,
    process: etree._Element,
    decisions: Mapping[str, DecisionSource],
    dmn: dict[str, tuple[str, etree._Element]],
) -> Iterator[Problem]:
    for task, ref in decision_refs(process):
        if not ref:
            yield problem(
                file,
                task,
                f"{label(task)} names no decision",
                "set camunda:decisionRef to the id of a DMN decision",
            )
            continue
        source = decisions.get(ref)
        if source is None:
            yield problem(
                file,
                task,
                f"{label(task)} calls decision '{ref}', which no DMN file given declares",
                f"add the DMN file that declares decision '{ref}', or correct camunda:decisionRef",
            )
        elif not source.usable:
            yield problem(
                file,
                task,
                f"{label(task)} calls decision '{ref}' in {source.file}, which has problems",
                f"fix the problems reported for {source.file}",
            )
        if source is not None and source.usable:
            dmn.setdefault(ref, (source.file, source.root))
        else:  # a stand-in, so the engine parse can go on past this task
            dmn.setdefault(ref, (f"{ref}.dmn", _stub_dmn(ref)))


def check_bpmn(
    root: etree._Element, *, file: str, decisions: Mapping[str, DecisionSource]
) -> tuple[tuple[str, ...], list[Problem]]:
    """Check every executable process of a BPMN document; return their ids and the problems."""
    processes = list(root.iter(f"{_B}process"))
    executable = [p for p in processes if (p.get("isExecutable") or "").strip() == "true"]
    if not executable:
        where = processes[0] if processes else root
        return (), [
            problem(
                file,
                where,
                "no executable process",
                "set isExecutable=true on the process you want to run",
            )
        ]
    process_ids = frozenset(p.get("id") or "" for p in processes)
    # What the processes share is read once: the checks are linear in the file's size.
    steps, found_in_steps = read_steps(root, file=file)
    step_problems: dict[str | None, list[Problem]] = {}  # by element, for each process to pick
    for found in found_in_steps:
        step_problems.setdefault((found.element_id or "").split(".")[0], []).append(found)
    drawn = {
        n.get("bpmnElement")
        for kind in ("BPMNShape", "BPMNEdge")
        for n in root.iter(f"{{{BPMNDI_NS}}}{kind}")
    }
    declared = {
        kind: {n.get("id") or "" for n in root.iter(f"{_B}{kind}")}
        for kind in ("message", "signal")
    }
    own: list[Problem] = [
        problem(
            file,
            store,
            f"{label(store)} is not supported: the engine keeps a case's data in the case",
            "remove the data store and its references",
        )
        for store in root.iter(f"{_B}dataStore")
    ]
    for retrieval in root.iter(f"{_B}correlationPropertyRetrievalExpression"):
        prop = retrieval.getparent()
        for expression in retrieval:  # formalExpression (bpmn-js) or messagePath
            if isinstance(expression.tag, str) and text_of(expression) and prop is not None:
                refused = code_problem(file, prop, "the retrieval expression", text_of(expression))
                own.extend([refused] if refused else [])
    dmn: dict[str, tuple[str, etree._Element]] = {}  # what the processes call, or a stand-in
    for process in executable:
        if not process.get("id"):
            own.append(
                problem(
                    file,
                    process,
                    "an executable process has no id",
                    "give the process an id; it names the pathway",
                )
            )
            continue
        own.extend(_decision_checks(file, process, decisions, dmn))
        own.extend(p for p in _expression_checks(file, process) if p is not None)
        own.extend(_flow_checks(file, process))
        own.extend(_task_checks(file, process, process_ids, declared))
        own.extend(_step_checks(file, process, steps, step_problems))
        own.extend(_layout_checks(file, process, drawn))
    named = [p for p in executable if p.get("id")]
    engine = engine_checks(file, root, named, list(dmn.values()))
    ids = tuple(p.get("id") or "" for p in named)
    return ids, list(dict.fromkeys(merge_engine_problems(engine, own)))
