"""Checks on the values of the pathway's own properties (``pathway.*``, see ``engine.steps``).

The engine reads these properties leniently when a case runs: a reminder to a role no one
holds reaches no one, a role that is not Pathway's lets no one bring a deadline forward, a
``later`` that is not ``never`` is ignored, and an escalation missing one of its four parts is
never armed. Each is a problem here instead, worded with the values that would be accepted.
The element templates of ``bpmn/templates`` constrain their forms with the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from lxml import etree

from ..diagrams import BPMN_NS, CAMUNDA_NS, add_iso_duration
from ..errors import Problem
from ..steps import ROLES, Step
from .problems import code_problem, label, problem

ROLE_LISTS = ("pathway.reminder.to", "pathway.deadline.earlier.role")
"""Properties that name roles, comma-separated."""
CHOICES = {"pathway.deadline.later": ("never",), "pathway.escalate": ("true", "false")}
"""Properties with a few accepted values (or none at all)."""
LIMIT_EXPRESSIONS = ("pathway.deadline.latest", "pathway.deadline.earliest")
ESCALATION = tuple(
    f"pathway.escalation.{part}" for part in ("message", "urgency", "clock", "decision")
)


def _at(node: etree._Element, name: str) -> etree._Element:
    """The ``camunda:property`` element that holds ``name`` (its line is the one to change)."""
    for prop in node.iterfind(
        f"{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}properties/{{{CAMUNDA_NS}}}property"
    ):
        if prop.get("name") == name:
            return prop
    return node


def _roles(file: str, node: etree._Element, name: str, value: str) -> Problem | None:
    named = [r.strip() for r in value.split(",")]
    unknown = [r for r in named if r and r not in ROLES]
    if not unknown:
        return None
    return problem(
        file,
        _at(node, name),
        f"{name} of {label(node)} names unknown role " + ", ".join(f"'{r}'" for r in unknown[:3]),
        "use one or more of " + ", ".join(ROLES) + ", comma-separated",
    )


def _escalation(file: str, node: etree._Element, props: dict[str, str]) -> Iterator[Problem]:
    given = {name: props.get(name, "").strip() for name in ESCALATION}
    missing = [name for name, value in given.items() if not value]
    if missing and len(missing) < len(ESCALATION):
        yield problem(
            file,
            node,
            f"the escalation of {label(node)} is never armed: it has no " + ", ".join(missing),
            "give all four of " + ", ".join(ESCALATION) + ", or none",
        )
    clock = given["pathway.escalation.clock"]
    if clock:
        try:
            add_iso_duration(datetime(2000, 1, 1, tzinfo=UTC), clock)
        except Exception:  # SpiffWorkflow's parser raises bare exceptions on bad text
            yield problem(
                file,
                _at(node, "pathway.escalation.clock"),
                f"pathway.escalation.clock of {label(node)} is '{clock[:40]}', "
                "not an ISO 8601 duration",
                "write a duration such as PT4H, P14D or P6W",
            )


def property_problems(file: str, node: etree._Element, step: Step) -> Iterator[Problem]:
    """What is wrong with the values of a step's ``pathway.*`` properties."""
    props = step.properties
    for name in ROLE_LISTS:
        if name in props:
            found = _roles(file, node, name, props[name])
            if found:
                yield found
    for name, accepted in CHOICES.items():
        value = props.get(name, "").strip()
        if value and value.lower() not in accepted:
            yield problem(
                file,
                _at(node, name),
                f"{name} of {label(node)} is '{value[:40]}', which the engine does not read",
                "write " + " or ".join(accepted) + ", or leave it out",
            )
    if step.reminder is not None and not step.reminder.to:
        yield problem(
            file,
            _at(
                node,
                "pathway.reminder.to" if "pathway.reminder.to" in props else "pathway.reminder",
            ),
            f"reminder '{step.reminder.kind}' of {label(node)} reminds no one",
            "set pathway.reminder.to to one or more of " + ", ".join(ROLES) + ", comma-separated",
        )
    elif step.reminder is None and props.get("pathway.reminder.to", "").strip():
        yield problem(
            file,
            node,
            f"{label(node)} names whom to remind but no reminder (pathway.reminder)",
            "set pathway.reminder to the reminder's kind",
        )
    for name in LIMIT_EXPRESSIONS:
        expression = props.get(name, "").strip()
        if expression:
            found = code_problem(file, node, name, expression)
            if found:
                yield replace(found, line=_at(node, name).sourceline)
    yield from _escalation(file, node, props)
