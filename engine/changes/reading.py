"""What a version's files say, in the shape two versions are compared in."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ..diagrams import BPMN_NS, parse_xml
from ..steps import Step, read_steps
from ..validation.problems import FLOW_NODES as VALIDATED_NODES
from .decisions import Decision, read_decisions

_B = f"{{{BPMN_NS}}}"
# The elements compared: the flow nodes validation knows, and the process itself.
FLOW_NODES = VALIDATED_NODES | {"process"}
"""The elements a case passes through; event definitions, flows, lanes and annotations carry
ids too, but nobody names them."""
_TIMER_TYPES = ("timeDuration", "timeDate", "timeCycle")


@dataclass(frozen=True)
class Flow:
    """A sequence flow and the condition it is taken on."""

    id: str
    name: str | None
    source: str
    target: str
    condition: str | None


@dataclass(frozen=True)
class Version:
    """One version of a pathway as compared: its elements (in document order), their timers,
    the flows' conditions, the messages it receives and its decision tables."""

    elements: dict[str, Step]
    timers: dict[str, tuple[str, str]]
    """Element id to (timer type, expression as written)."""
    flows: dict[str, Flow]
    messages: tuple[str, ...]
    decisions: dict[str, Decision]
    attached: dict[str, str]
    """Boundary event id to the id of the step it is attached to."""


def _text(node: etree._Element | None) -> str | None:
    if node is None or node.text is None:
        return None
    return " ".join(node.text.split()) or None


def _timers(root: etree._Element) -> dict[str, tuple[str, str]]:
    timers: dict[str, tuple[str, str]] = {}
    for definition in root.iter(f"{_B}timerEventDefinition"):
        owner = definition.getparent()
        owner_id = owner.get("id") if owner is not None else None
        if not owner_id:
            continue
        for kind in _TIMER_TYPES:
            body = definition.find(f"{_B}{kind}")
            if body is not None:
                timers[owner_id] = (kind, _text(body) or "")
                break
    return timers


def _flows(root: etree._Element) -> dict[str, Flow]:
    return {
        str(node.get("id")): Flow(
            id=str(node.get("id")),
            name=node.get("name") or None,
            source=node.get("sourceRef", ""),
            target=node.get("targetRef", ""),
            condition=_text(node.find(f"{_B}conditionExpression")),
        )
        for node in root.iter(f"{_B}sequenceFlow")
        if node.get("id")
    }


def read_version(files: list[tuple[str, bytes]]) -> Version:
    """Read a version's files (one BPMN file and the DMN files it calls), as deployed."""
    elements: dict[str, Step] = {}
    timers: dict[str, tuple[str, str]] = {}
    flows: dict[str, Flow] = {}
    messages: list[str] = []
    decisions: dict[str, Decision] = {}
    attached: dict[str, str] = {}
    for name, content in files:
        root = parse_xml(content)
        if etree.QName(root).namespace != BPMN_NS:
            decisions.update(read_decisions(root))
            continue
        steps, _ = read_steps(root, file=name)  # deployed versions were validated already
        elements.update({k: s for k, s in steps.items() if s.kind in FLOW_NODES})
        timers.update(_timers(root))
        flows.update(_flows(root))
        messages += [m.get("name") or str(m.get("id")) for m in root.iter(f"{_B}message")]
        attached.update(
            (str(node.get("id")), str(node.get("attachedToRef")))
            for node in root.iter(f"{_B}boundaryEvent")
            if node.get("id") and node.get("attachedToRef")
        )
    return Version(elements, timers, flows, tuple(dict.fromkeys(messages)), decisions, attached)
