"""Problems located in a diagram: how an element is named, and where a problem points.

Shared by the BPMN checks (``validation.bpmn``), the DMN checks (``validation.dmn``) and the
rest of validation: ``label`` names an element as a modeler sees it, ``problem`` builds a
Problem at an element (its id, or the nearest ancestor's, and its line), ``owner`` finds the
flow element (one of ``FLOW_NODES``, a sequence flow or the process) a nested element belongs
to, and ``code_problem`` checks diagram code with the sandbox's compile-time rules without
running it.
"""

from __future__ import annotations

import re

from lxml import etree

from ..diagrams import BPMN_NS
from ..errors import Problem
from ..sandbox.expressions import ExpressionRejected, check_expression, check_script

_B = f"{{{BPMN_NS}}}"
FLOW_NODES = frozenset(
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
_CODE_FIX = "rewrite it with task variables and the sandbox helpers only"


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
        if bpmn_kind(current) in FLOW_NODES or bpmn_kind(current) in ("sequenceFlow", "process"):
            return current
        current = current.getparent()
    return node


def find_by_id(root: etree._Element, ident: str | None) -> etree._Element | None:
    """Return the element with the given id attribute, if there is one."""
    if not ident:
        return None
    found = root.xpath("//*[@id=$ident]", ident=ident)
    return found[0] if isinstance(found, list) and found else None


class IdIndex:
    """A document's elements by id, gathered in one pass on the first lookup: for callers that
    look up many ids, where ``find_by_id`` would read the whole document each time."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self._found: dict[str, etree._Element] | None = None

    def find(self, ident: str | None) -> etree._Element | None:
        """Return the first element with the given id attribute, if there is one."""
        if not ident:
            return None
        if self._found is None:
            self._found = {}
            for node in self.root.iter():
                if isinstance(node.tag, str) and node.get("id") is not None:
                    self._found.setdefault(node.get("id") or "", node)
        return self._found.get(ident)


def text_of(node: etree._Element | None) -> str:
    """Return an element's text, stripped ('' for none)."""
    return (node.text or "").strip() if node is not None else ""


def code_problem(
    file: str,
    node: etree._Element,
    what: str,
    source: str,
    *,
    script: bool = False,
    subject: str | None = None,
) -> Problem | None:
    """Check diagram code with the sandbox's compile-time rules; a problem if it is refused.

    The problem's message starts with ``subject``, by default "<what> of <the element>"."""
    subject = subject or f"{what} of {label(node)}"
    juel = re.fullmatch(r"\s*[$#]\{(.*)\}\s*", source, re.DOTALL)
    if juel:
        python = re.sub(r"!(?!=)", "not ", juel[1].replace("&&", " and ").replace("||", " or "))
        return problem(
            file,
            node,
            f"{subject} is a Camunda JUEL expression, which the engine cannot read",
            "write it as a Python expression, e.g. " + " ".join(python.split()),
        )
    try:
        (check_script if script else check_expression)(source)
    except ExpressionRejected as rejected:
        where = f" (line {rejected.line})" if rejected.line and "\n" in source.strip() else ""
        return problem(
            file,
            node,
            f"{subject} is not allowed{where}: {rejected.reason}",
            _CODE_FIX,
        )
    except Exception as exc:  # the sandbox must never take validation down
        return problem(
            file,
            node,
            f"{subject} could not be checked ({type(exc).__name__})",
            _CODE_FIX,
        )
    return None
