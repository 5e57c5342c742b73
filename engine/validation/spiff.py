"""What SpiffWorkflow says when it refuses or fails to read a diagram, worded for a modeler.

``engine_checks`` has SpiffWorkflow build the processes of a file, ``engine_problem`` turns a
ValidationException into a problem (known messages get a clearer wording and fix),
``crash_problem`` reports an unexpected exception at the element being read, and
``merge_engine_problems`` drops engine refusals one of our own checks already reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import TracebackType

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from ..diagrams import PathwayParser
from ..errors import Problem
from .problems import IdIndex, find_by_id, label, problem

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
        r"RecursionError|maximum recursion depth",
        "{label} ends a run of flow elements too long for the engine to read: it follows "
        "each flow recursively, and stops after about 480 elements in a row",
        "shorten the run: split the pathway, or repeat a shorter part with a loop",
    ),
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


def engine_problem(
    file: str,
    root: etree._Element,
    process: etree._Element,
    exc: ValidationException,
    *,
    ids: IdIndex | None = None,
) -> tuple[Problem, str]:
    """Word a SpiffWorkflow refusal for a modeler; return it with the engine's own message."""
    raw = clean_message(str(exc.args[0]) if exc.args else str(exc))
    ident = getattr(exc, "id", None)
    node = ids.find(ident) if ids is not None else find_by_id(root, ident)
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


def engine_checks(
    file: str,
    root: etree._Element,
    processes: list[etree._Element],
    dmn: list[tuple[str, etree._Element]],
) -> list[tuple[Problem, str]]:
    """Have SpiffWorkflow build each process and what it calls, from one reading of the file
    (one parser per process would read the whole file once per process); return what it
    refuses, each with the engine's own message."""
    if not processes:
        return []
    try:
        parser = PathwayParser()
        for name, decision in dmn:
            parser.add_dmn_xml(decision, filename=name)
        parser.add_bpmn_xml(root, filename=file)
    except ValidationException as exc:
        return [engine_problem(file, root, processes[0], exc)]
    except Exception as exc:  # SpiffWorkflow raises bare KeyError/AttributeError on some files
        return [(crash_problem(file, root, processes[0], exc), "")]
    found = []
    ids = IdIndex(root)
    for process in processes:
        try:
            parser.get_subprocess_specs(process.get("id"))
        except ValidationException as exc:
            found.append(engine_problem(file, root, process, exc, ids=ids))
        except Exception as exc:
            found.append((crash_problem(file, root, process, exc), ""))
    return found


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


def merge_engine_problems(
    engine: Iterable[tuple[Problem, str]], own: list[Problem]
) -> list[Problem]:
    """Engine problems first, except those an own check already reports better."""
    # For each overlap, which elements an own problem of that kind is about (read once: a file
    # can have thousands of each).
    covering = [
        (pattern, same, {p.element_id for p in own if re.search(ours, p.message)})
        for pattern, ours, same in _OVERLAPS
    ]
    merged = []
    for found, raw in engine:
        covered = any(
            elements and re.search(pattern, raw) and (not same or found.element_id in elements)
            for pattern, same, elements in covering
        )
        if not covered:
            merged.append(found)
    return merged + own
