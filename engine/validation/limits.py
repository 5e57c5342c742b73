"""The bounds that keep validating any file within a few seconds and a few hundred megabytes.

A file over the size limit (the setting ``max_definition_bytes``) is refused unread:
``check_size``. A file within it that is not too deep nor has too many XML nodes
(``safe_xml``) could still make the engine's parser and our checks take minutes, so a BPMN file
may hold at most ``MAX_FLOW_ELEMENTS`` processes, flow nodes and sequence flows, a DMN file at
most ``MAX_DMN_ENTRIES`` rule entries, and each at most ``MAX_CODE_CHARS`` characters of
diagram code (the sandbox compiles about 150 KB of scripts, 700 KB of expressions a second):
``check_counts``, run once the tree is built and before any other check. Each is far above any
real pathway (the lumbar radiculopathy files have 116 flow elements, 42 rule entries, 2,642 and
617 characters of code).
"""

from __future__ import annotations

from lxml import etree

from ..diagrams import BPMN_NS
from ..errors import Problem
from .problems import FLOW_NODES, problem

MAX_FLOW_ELEMENTS = 5_000
MAX_DMN_ENTRIES = 10_000
MAX_CODE_CHARS = 200_000

_B = f"{{{BPMN_NS}}}"
_COUNTED = tuple(f"{_B}{kind}" for kind in sorted({*FLOW_NODES, "sequenceFlow", "process"}))
# Every element whose text validation compiles as diagram code (validation.bpmn, .timers).
_BPMN_CODE = tuple(
    f"{_B}{kind}"
    for kind in (
        "script",
        "conditionExpression",
        "condition",
        "loopCardinality",
        "completionCondition",
        "loopCondition",
        "timeDate",
        "timeDuration",
        "timeCycle",
        "correlationPropertyRetrievalExpression",
    )
)
_PROPERTY = "{http://camunda.org/schema/1.0/bpmn}property"
_VARIANCE = "pathway.variance."  # a variance's condition, as engine.steps reads it


def check_size(name: str, size: int, limit: int) -> Problem | None:
    """The problem of a file of ``size`` bytes when it is over ``limit`` (None when within)."""
    if size <= limit:
        return None
    return Problem(
        name,
        f"the file is {size:,} bytes; the limit is {limit:,} bytes, so it was not read",
        None,
        None,
        "split the pathway or remove what it does not need (embedded images, long "
        "documentation); the limit is the setting PATHWAY_MAX_DEFINITION_BYTES",
    )


def check_counts(file: str, root: etree._Element, *, kind: str) -> Problem | None:
    """The problem of a BPMN or DMN document (``kind``) with more elements or code than the
    engine takes, counted without checking anything (None when within the bounds)."""
    if kind == "bpmn":
        count = sum(1 for _ in root.iter(*_COUNTED))
        code = sum(len(node.xpath("string()")) for node in root.iter(*_BPMN_CODE))
        code += sum(
            len(node.get("value") or "")
            for node in root.iter(_PROPERTY)
            if (node.get("name") or "").startswith(_VARIANCE)
            and not (node.get("name") or "").endswith((".rule", ".quote"))
        )
        if count > MAX_FLOW_ELEMENTS:
            return problem(
                file,
                root,
                f"a pathway has at most {MAX_FLOW_ELEMENTS:,} processes, flow elements and "
                f"sequence flows; this file has {count:,}, so it was not checked further",
                "split the pathway into smaller pathways, or remove the elements it does not use",
            )
    else:
        namespace = etree.QName(root).namespace
        kinds = [f"{{{namespace}}}{k}" for k in ("inputEntry", "outputEntry", "inputExpression")]
        count = sum(1 for node in root.iter(*kinds[:2]))
        code = sum(len(node.xpath("string()")) for node in root.iter(*kinds))
        if count > MAX_DMN_ENTRIES:
            return problem(
                file,
                root,
                f"a DMN file has at most {MAX_DMN_ENTRIES:,} rule entries (rules times columns); "
                f"this file has {count:,}, so it was not checked further",
                "split the decision table, or merge rules that give the same outputs",
            )
    if code > MAX_CODE_CHARS:
        return problem(
            file,
            root,
            f"a {kind.upper()} file holds at most {MAX_CODE_CHARS:,} characters of diagram code "
            "(scripts, conditions, timers, variance conditions, decision entries); this file "
            f"has {code:,}, so it was not checked further",
            "keep the code in the diagram short: move long computations out of it",
        )
    return None
