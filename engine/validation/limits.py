"""The bounds that keep validating any file within a few seconds and a few hundred megabytes.

A file over the size limit (the setting ``max_definition_bytes``) is refused unread:
``check_size``. A file within it that is not too deep nor has too many XML elements
(``safe_xml``) could still make the engine's parser and our checks take minutes, so a BPMN file
may hold at most ``MAX_FLOW_ELEMENTS`` processes, flow nodes and sequence flows, and a DMN file
at most ``MAX_DMN_ENTRIES`` rule entries: counted once the tree is built, before any other
check, and far above any real pathway (the lumbar radiculopathy pathway has 116 and 42).
"""

from __future__ import annotations

from lxml import etree

from ..diagrams import BPMN_NS
from ..errors import Problem
from .problems import FLOW_NODES, problem

MAX_FLOW_ELEMENTS = 5_000
MAX_DMN_ENTRIES = 10_000

_COUNTED = tuple(
    f"{{{BPMN_NS}}}{kind}" for kind in sorted({*FLOW_NODES, "sequenceFlow", "process"})
)


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


def check_bpmn_count(file: str, root: etree._Element) -> Problem | None:
    """The problem of a BPMN document with more flow elements than the engine takes."""
    count = sum(1 for _ in root.iter(*_COUNTED))
    if count <= MAX_FLOW_ELEMENTS:
        return None
    return problem(
        file,
        root,
        f"a pathway has at most {MAX_FLOW_ELEMENTS:,} processes, flow elements and sequence "
        f"flows; this file has {count:,}, so it was not checked further",
        "split the pathway into smaller pathways, or remove the elements it does not use",
    )


def check_dmn_count(file: str, root: etree._Element) -> Problem | None:
    """The problem of a DMN document with more rule entries than the engine takes."""
    namespace = etree.QName(root).namespace
    kinds = [f"{{{namespace}}}inputEntry", f"{{{namespace}}}outputEntry"]
    count = sum(1 for _ in root.iter(*kinds))
    if count <= MAX_DMN_ENTRIES:
        return None
    return problem(
        file,
        root,
        f"a DMN file has at most {MAX_DMN_ENTRIES:,} rule entries (rules times columns); "
        f"this file has {count:,}, so it was not checked further",
        "split the decision table, or merge rules that give the same outputs",
    )
