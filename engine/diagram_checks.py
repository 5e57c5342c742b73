"""Checks on a parsed BPMN document beyond its XML schema: what SpiffWorkflow and the
sandbox accept, and what a pathway needs (roles, evidence, diagram layout).

Every check is collected, not stop-at-first; each problem names the element, its line and what
to change. Nothing here runs diagram code: expressions are only compiled by the sandbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from .diagrams import BPMN_NS, BusinessRuleTaskParser, build_specs, is_iso_literal
from .errors import Problem
from .expressions import ExpressionRejected, check_expression, check_script
from .steps import ROLES, read_steps

_B = f"{{{BPMN_NS}}}"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DMN13_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"
_FLOW_NODES = frozenset(
    (
        "task",
        "userTask",
        "manualTask",
        "serviceTask",
        "scriptTask",
        "businessRuleTask",
        "sendTask",
        "receiveTask",
        "callActivity",
        "subProcess",
        "transaction",
        "adHocSubProcess",
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
        "exclusiveGateway",
        "inclusiveGateway",
        "parallelGateway",
        "eventBasedGateway",
        "complexGateway",
    )
)
_TIMES = ("timeDate", "timeDuration", "timeCycle")
_CODE_FIX = "rewrite it with task variables and the sandbox helpers only"


@dataclass(frozen=True)
class DecisionSource:
    """Where a DMN decision comes from, and whether that file can be deployed."""

    file: str
    root: etree._Element
    usable: bool


def local(node: etree._Element) -> str:
    """Return an element's tag without its namespace ('' for comments)."""
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def bpmn_kind(node: etree._Element) -> str:
    """Return the tag of a BPMN element without its namespace ('' for any other element)."""
    return node.tag[len(_B) :] if isinstance(node.tag, str) and node.tag.startswith(_B) else ""


def label(node: etree._Element) -> str:
    """Name an element as a modeler sees it: kind, id and name."""
    kind = local(node)
    if kind.endswith("Event") and node.find(f"{_B}timerEventDefinition") is not None:
        words = "timer"
    elif kind.endswith("SubProcess") or kind == "subProcess":
        words = kind[: -len("SubProcess")].replace("adHoc", "ad-hoc ") + "subprocess"
    else:
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", kind).lower() or "element"
    ident = node.get("id")
    text = f"{words} '{ident}'" if ident else words
    name = " ".join((node.get("name") or node.get("label") or "").split())
    if name and name != ident:
        text += f' ("{name[:60]}")'
    return text


def problem(file: str, node: etree._Element | None, message: str, fix: str | None) -> Problem:
    """Build a problem located at an element (its id, or the nearest ancestor's, and line)."""
    line = node.sourceline if node is not None else None
    line = line if isinstance(line, int) else None
    ident = None
    while ident is None and node is not None:
        ident = node.get("id") if isinstance(node.tag, str) else None
        node = node.getparent()
    return Problem(file, message, ident, line, fix)


def owner(node: etree._Element) -> etree._Element:
    """Return the flow element (task, event, flow...) a nested element belongs to."""
    current: etree._Element | None = node
    while current is not None:
        if bpmn_kind(current) in _FLOW_NODES or bpmn_kind(current) in ("sequenceFlow", "process"):
            return current
        current = current.getparent()
    return node


def find_by_id(root: etree._Element, ident: str | None) -> etree._Element | None:
    """Return the element with the given id attribute, if there is one."""
    if not ident:
        return None
    found = root.xpath("//*[@id=$ident]", ident=ident)
    return found[0] if isinstance(found, list) and found else None


def text_of(node: etree._Element | None) -> str:
    """Return an element's text, stripped ('' for none)."""
    return (node.text or "").strip() if node is not None else ""


def code_problem(
    file: str, node: etree._Element, what: str, source: str, *, script: bool = False
) -> Problem | None:
    """Check diagram code with the sandbox's compile-time rules; a problem if it is refused."""
    juel = re.fullmatch(r"\s*[$#]\{(.*)\}\s*", source, re.DOTALL)
    if juel:
        python = re.sub(r"!(?!=)", "not ", juel[1].replace("&&", " and ").replace("||", " or "))
        return problem(
            file,
            node,
            f"{what} of {label(node)} is a Camunda JUEL expression, which the engine cannot read",
            "write it as a Python expression, e.g. " + " ".join(python.split()),
        )
    try:
        (check_script if script else check_expression)(source)
    except ExpressionRejected as rejected:
        where = f" (line {rejected.line})" if rejected.line and "\n" in source.strip() else ""
        return problem(
            file,
            node,
            f"{what} of {label(node)} is not allowed{where}: {rejected.reason}",
            _CODE_FIX,
        )
    except Exception as exc:  # the sandbox must never take validation down
        return problem(
            file,
            node,
            f"{what} of {label(node)} could not be checked ({type(exc).__name__})",
            _CODE_FIX,
        )
    return None


# ---------------------------------------------------------------- BPMN


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
            if body is not None and text_of(body) and not is_iso_literal(text_of(body)):
                yield code_problem(file, event, f"the {kind}", text_of(body))
    for task in _descendants(process, "scriptTask"):
        script = task.find(f"{_B}script")
        if script is not None and text_of(script):
            yield code_problem(file, task, "the script", script.text or "", script=True)


def _flow_checks(file: str, process: etree._Element) -> Iterator[Problem]:
    flows = list(_descendants(process, "sequenceFlow"))
    for kind in ("exclusiveGateway", "inclusiveGateway"):
        for gateway in _descendants(process, kind):
            outgoing = [f for f in flows if f.get("sourceRef") == gateway.get("id")]
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
    for gateway in _descendants(process, "eventBasedGateway"):
        targets = {f.get("targetRef") for f in flows if f.get("sourceRef") == gateway.get("id")}
        timers = [
            n
            for n in process.iter()
            if isinstance(n.tag, str)
            and n.get("id") in targets
            and n.find(f"{_B}timerEventDefinition") is not None
        ]
        if len(timers) > 1:
            yield problem(
                file,
                gateway,
                f"{label(gateway)} waits on {len(timers)} timers; the "
                "engine fires only one of them on time (SpiffWorkflow #419)",
                "keep one timer per event-based gateway",
            )


def _task_checks(
    file: str, root: etree._Element, process: etree._Element, process_ids: set[str]
) -> Iterator[Problem]:
    for task in _descendants(process, "serviceTask"):
        yield problem(
            file,
            task,
            f"{label(task)} cannot run: there is no service to call",
            "make it a user task, done by a person, or a script task",
        )
    for store in [*root.iter(f"{_B}dataStore"), *_descendants(process, "dataStoreReference")]:
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
                f"add process '{called}' to this file, or call one "
                "of: " + (", ".join(sorted(process_ids)) or "(none)"),
            )
    declared = {
        kind: {n.get("id") for n in root.iter(f"{_B}{kind}")} for kind in ("message", "signal")
    }
    for kind, attribute in (("message", "messageRef"), ("signal", "signalRef")):
        for node in process.iter():
            ref = node.get(attribute) if isinstance(node.tag, str) else None
            if ref and ref not in declared[kind]:
                event = owner(node)
                yield problem(
                    file,
                    event,
                    f"{label(event)} refers to {kind} '{ref}', which the file does not declare",
                    f"declare it with a bpmn:{kind} element; in "
                    f"bpmn.io, select the event and create the {kind} there",
                )


def _step_checks(file: str, root: etree._Element, process: etree._Element) -> Iterator[Problem]:
    ids = {n.get("id") for n in process.iter() if isinstance(n.tag, str) and n.get("id")}
    steps, step_problems = read_steps(root, file=file)
    for found in step_problems:
        if (found.element_id or "").split(".")[0] in ids:
            yield found
    for node in process.iter():
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


def _layout_checks(file: str, root: etree._Element, process: etree._Element) -> Iterator[Problem]:
    drawn = {
        n.get("bpmnElement")
        for kind in ("BPMNShape", "BPMNEdge")
        for n in root.iter(f"{{{BPMNDI_NS}}}{kind}")
    }
    for node in process.iter():
        kind = bpmn_kind(node)
        if (kind in _FLOW_NODES or kind == "sequenceFlow") and node.get("id") not in drawn:
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


_ENGINE_MESSAGES: tuple[tuple[str, str, str], ...] = (
    (
        r"Multiple outgoing flows are not supported",
        "{label} has several outgoing flows, which the engine does not run as a split",
        "add a parallel or exclusive gateway after it",
    ),
    (
        r"Exactly one start event is required in a SubWorkflow Task; found (\d+)",
        "{label} must contain exactly one start event (it has {0})",
        "add one start event inside it",
    ),
    (
        r"A SubWorkflow Must contain an End event",
        "{label} has no end event",
        "add an end event inside it",
    ),
    (
        r"Time Specification Error",
        "the engine cannot read the time of {label}",
        "add a timeDuration such as P14D, a timeDate or a timeCycle",
    ),
    (
        r"Cannot resolve data(Input|Output)Association",
        "{label} has a data association the engine cannot resolve",
        "remove the data association, or point it to a data object of the same process",
    ),
    (
        r"multiinstance task must specify a cardinality",
        "{label} repeats without saying how often",
        "set a loop cardinality or a loop input collection",
    ),
    (r"No start event found", "{label} has no start event", "add a start event"),
    (
        r"is not executable",
        "{label} is not executable, but this process needs it",
        "set isExecutable=true on it",
    ),
    (r"No Script Provided", "{label} has no script", "write the script, or use another task type"),
)
# Engine refusals one of our own checks already reports, better worded: (engine message,
# our message, whether ours must be on the same element).
_OVERLAPS = (
    (r"Time Specification", r"has no time definition|has an empty time", True),
    (r"without condition", r"without a condition", True),
    (r"No DMN Diagram available|must name its decision", r"names no decision|calls decision", True),
    (r"calledElement", r"process it calls", True),
    (r"The process '.*' was not found", r"calls process", False),
    (r"Data Store", r"data store", False),
    (r"Expected a (Signal|Message)", r"refers to (signal|message)", False),
)


def clean_message(text: str) -> str:
    """Make a SpiffWorkflow message fit for a modeler: no element reprs, one line, short."""
    text = re.sub(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-fA-F]+>", r"'\1'", text)
    text = " ".join(text.split()).rstrip(". ")
    return text[:300]


def _engine_problem(
    file: str, root: etree._Element, process: etree._Element, exc: ValidationException
) -> tuple[Problem, str]:
    raw = clean_message(str(exc.args[0]) if exc.args else str(exc))
    node = find_by_id(root, getattr(exc, "id", None))
    node = process if node is None else node
    for pattern, message, fix in _ENGINE_MESSAGES:
        match = re.search(pattern, raw)
        if match:
            text = message.format(*match.groups(), label=label(node))
            return problem(file, node, text, fix), raw
    return problem(
        file,
        node,
        f"the engine cannot use {label(node)}: {raw}",
        "change the element as the message says, or remove it",
    ), raw


def _crash_element(tb: TracebackType | None, root: etree._Element) -> etree._Element | None:
    """Find the element SpiffWorkflow was parsing when it crashed (its innermost `node`)."""
    found = None
    while tb is not None:
        names = tb.tb_frame.f_locals
        for candidate in (names.get("node"), getattr(names.get("self"), "node", None)):
            if (
                isinstance(candidate, etree._Element)
                and candidate is not root
                and isinstance(candidate.tag, str)
                and candidate.getroottree().getroot() is root
            ):
                found = candidate
        tb = tb.tb_next
    return found


def crash_problem(
    file: str, root: etree._Element, process: etree._Element, exc: Exception
) -> Problem:
    """Report an unexpected SpiffWorkflow exception: the element, the type, the message."""
    node = _crash_element(exc.__traceback__, root)
    what = label(node) if node is not None else label(process)
    detail = clean_message(str(exc)) or "no message"
    return problem(
        file,
        node if node is not None else process,
        f"the engine cannot execute {what}: SpiffWorkflow failed while reading it "
        f"({type(exc).__name__}: {detail})",
        "change or remove this element; if it "
        "looks right, report the file to the pathway engineers",
    )


def _engine_checks(
    file: str, root: etree._Element, process: etree._Element, dmn: list[tuple[str, etree._Element]]
) -> tuple[Problem, str] | None:
    try:
        build_specs(bpmn=[(file, root)], dmn=dmn, process_id=process.get("id", ""))
    except ValidationException as exc:
        return _engine_problem(file, root, process, exc)
    except Exception as exc:  # SpiffWorkflow raises bare KeyError/AttributeError on some files
        return crash_problem(file, root, process, exc), ""
    return None


def _merge(engine: Iterable[tuple[Problem, str]], own: list[Problem]) -> list[Problem]:
    """Engine problems first, except those an own check already reports better."""
    merged = []
    for found, raw in engine:
        covered = any(
            re.search(pattern, raw)
            and any(
                re.search(ours, p.message) and (not same or p.element_id == found.element_id)
                for p in own
            )
            for pattern, ours, same in _OVERLAPS
        )
        if not covered:
            merged.append(found)
    return merged + own


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
    process_ids = {p.get("id") or "" for p in processes}
    engine: list[tuple[Problem, str]] = []
    own: list[Problem] = []
    for retrieval in root.iter(f"{_B}correlationPropertyRetrievalExpression"):
        prop = retrieval.getparent()
        for expression in retrieval:  # formalExpression (bpmn-js) or messagePath
            if isinstance(expression.tag, str) and text_of(expression) and prop is not None:
                refused = code_problem(file, prop, "the retrieval expression", text_of(expression))
                own.extend([refused] if refused else [])
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
        dmn: dict[str, tuple[str, etree._Element]] = {}
        own.extend(_decision_checks(file, process, decisions, dmn))
        own.extend(p for p in _expression_checks(file, process) if p is not None)
        own.extend(_flow_checks(file, process))
        own.extend(_task_checks(file, root, process, process_ids))
        own.extend(_step_checks(file, root, process))
        own.extend(_layout_checks(file, root, process))
        found = _engine_checks(file, root, process, list(dmn.values()))
        if found is not None:
            engine.append(found)
    ids = tuple(p.get("id") or "" for p in executable if p.get("id"))
    return ids, list(dict.fromkeys(_merge(engine, own)))
