"""What the diagram says about each step beyond execution: role, form, evidence, reminders,
deadlines and variance rules.

All of it lives in the BPMN file in forms bpmn.io and Camunda Modeler keep when they save:
``bpmn:documentation`` (the rationale), ``camunda:candidateGroups`` (the role),
``camunda:formData`` (the form) and ``camunda:properties`` with these names:

- ``pathway.evidence.source`` / ``pathway.evidence.quote``: the guideline and its words;
- ``pathway.reminder`` (kind), ``pathway.reminder.to`` (roles, comma-separated),
  ``pathway.reminder.text`` (the sentence the care team reads; the event's name when absent)
  and ``pathway.escalate`` (``true`` marks the case escalated) on an intermediate throw event;
- ``pathway.deadline`` (kind) on a timer: the deadline the timer keeps;
- ``pathway.variance.<code>`` (a condition on the step's data, evaluated when the step is
  completed) with ``pathway.variance.<code>.rule`` (the rule, in words);
- ``pathway.form`` on a message event: the step whose form its payload follows, and
  ``pathway.role`` there: the roles that may deliver it (user tasks use candidateGroups);
- ``pathway.priority`` = ``urgent`` on a step or sub-process: its steps go to the top of
  worklists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .diagrams import BPMN_NS, CAMUNDA_NS
from .errors import Problem
from .forms import CONSTRAINTS, FIELD_TYPES, Form, FormField
from .vocabulary import Role

ROLES = tuple(Role)
_B = f"{{{BPMN_NS}}}"
_C = f"{{{CAMUNDA_NS}}}"
_VARIANCE = "pathway.variance."


@dataclass(frozen=True)
class Evidence:
    """Why a step is there: the rationale and the guideline it comes from."""

    rationale: str | None
    source: str | None
    quote: str | None

    def describe(self) -> dict[str, str | None]:
        """Return the evidence as plain data."""
        return {"rationale": self.rationale, "source": self.source, "quote": self.quote}


@dataclass(frozen=True)
class DeadlineLimits:
    """How far a person may move the deadline a timer keeps, as the diagram says on the timer
    (``pathway.deadline.*``): the guideline's own limits, not the engine's."""

    latest: str | None = None
    """``pathway.deadline.latest``: an expression for the latest it may move to (a date is
    00:00 in the clinic's zone), with ``.rule`` saying why."""
    latest_rule: str | None = None
    later: bool = True
    """False when ``pathway.deadline.later`` is ``never``: it may only come earlier."""
    earliest: str | None = None
    """``pathway.deadline.earliest``: moving it earlier than this is a departure from the
    guideline: it needs ``.earlier.role``, and records ``.earlier.variance`` (``.earlier.rule``)."""
    earlier_role: str | None = None
    earlier_variance: str | None = None
    earlier_rule: str | None = None


def _limits(props: dict[str, str]) -> DeadlineLimits:
    return DeadlineLimits(
        latest=props.get("pathway.deadline.latest") or None,
        latest_rule=props.get("pathway.deadline.latest.rule") or None,
        later=props.get("pathway.deadline.later", "").strip().lower() != "never",
        earliest=props.get("pathway.deadline.earliest") or None,
        earlier_role=props.get("pathway.deadline.earlier.role") or None,
        earlier_variance=props.get("pathway.deadline.earlier.variance") or None,
        earlier_rule=props.get("pathway.deadline.earlier.rule") or None,
    )


@dataclass(frozen=True)
class Escalation:
    """A timer a report arms (``pathway.escalation.*`` on the timer): when ``message`` raises
    the case's urgency to ``urgency`` (as ``decision`` classifies the report merged with
    what is known), the timer falls due ``clock`` after the report."""

    message: str
    urgency: str
    clock: str
    decision: str


def _escalation(props: dict[str, str]) -> Escalation | None:
    names = ("message", "urgency", "clock", "decision")
    values = [props.get(f"pathway.escalation.{name}", "").strip() for name in names]
    return Escalation(*values) if all(values) else None


@dataclass(frozen=True)
class ReminderRule:
    """A reminder the pathway raises when the flow reaches a step."""

    kind: str
    to: tuple[str, ...]
    escalate: bool
    text: str
    """What the care team reads: ``pathway.reminder.text``, else the event's name, else the
    kind."""


@dataclass(frozen=True)
class VarianceRule:
    """A departure from the guideline, detected from a completed step's data."""

    code: str
    condition: str
    rule: str | None
    quote: str | None = None
    """The guideline's own sentence for this pitfall, when it is not the step's quote."""


@dataclass(frozen=True)
class Step:
    """One element of the pathway and what the diagram says about it."""

    id: str
    name: str | None
    kind: str
    line: int | None
    evidence: Evidence
    role: str | None = None
    form: Form | None = None
    reminder: ReminderRule | None = None
    deadline: str | None = None
    limits: DeadlineLimits = field(default_factory=DeadlineLimits)
    variances: tuple[VarianceRule, ...] = ()
    message: str | None = None
    message_form: str | None = None
    timer: bool = False
    urgent: bool = False
    within: tuple[str, ...] = ()
    interrupts: str | None = None
    decision: str | None = None
    merges: str | None = None
    """``pathway.merges``: a message whose reports, while this step is not yet completed, are
    merged into its answers when it is (a reported finding cannot be cleared there)."""
    escalation: Escalation | None = None
    completed_on: str | None = None
    """The data name that keeps the clinic's date this step was completed on
    (``pathway.completed_on``), for rules that count days from it."""
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def roles(self) -> tuple[Role, ...]:
        """The roles that may do the step (the diagram writes them comma-separated)."""
        named = (r.strip() for r in (self.role or "").split(","))
        return tuple(dict.fromkeys(Role(r) for r in named if r))


def _text(node: etree._Element | None) -> str | None:
    if node is None or node.text is None:
        return None
    text = " ".join(node.text.split())
    return text or None


def _properties(node: etree._Element) -> dict[str, str]:
    props: dict[str, str] = {}
    for prop in node.findall(f"{_B}extensionElements/{_C}properties/{_C}property"):
        name = prop.get("name")
        if name:
            props[name] = prop.get("value", "")
    return props


def reminder_text(props: dict[str, str], *, name: str | None) -> str:
    """The sentence a reminder reads: its ``pathway.reminder.text``, else the event's name,
    else its kind, each with its runs of white space made one space."""
    for candidate in (props.get("pathway.reminder.text"), name, props.get("pathway.reminder")):
        text = " ".join((candidate or "").split())
        if text:
            return text
    return ""


def _int(
    value: str | None, *, file: str, element: str, line: int | None, problems: list[Problem]
) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        problems.append(
            Problem(
                file,
                f"constraint value '{value}' is not a whole number",
                element,
                line,
                "write a whole number in the constraint's config",
            )
        )
        return None


def _form(node: etree._Element, *, file: str, problems: list[Problem]) -> Form | None:
    form_data = node.find(f"{_B}extensionElements/{_C}formData")
    if form_data is None:
        return None
    step_id = node.get("id", "")
    fields: list[FormField] = []
    for xml_field in form_data.findall(f"{_C}formField"):
        field_id = xml_field.get("id") or ""
        line = xml_field.sourceline
        where = f"{step_id}.{field_id}"
        if not field_id.isidentifier() or field_id.startswith("_"):
            problems.append(
                Problem(
                    file,
                    f"form field id '{field_id}' is not a usable name",
                    step_id,
                    line,
                    "use letters, digits and underscores",
                )
            )
            continue
        ftype = xml_field.get("type", "string")
        if ftype not in FIELD_TYPES:
            problems.append(
                Problem(
                    file,
                    f"form field type '{ftype}' is not supported",
                    where,
                    line,
                    "use one of " + ", ".join(FIELD_TYPES),
                )
            )
            continue
        found: dict[str, str | None] = {}
        for constraint in xml_field.findall(f"{_C}validation/{_C}constraint"):
            name = constraint.get("name", "")
            if name not in CONSTRAINTS:
                problems.append(
                    Problem(
                        file,
                        f"constraint '{name}' is not supported",
                        where,
                        constraint.sourceline,
                        "use one of " + ", ".join(CONSTRAINTS),
                    )
                )
            found[name] = constraint.get("config")
        options = tuple(
            (v.get("id", ""), v.get("name") or v.get("id", ""))
            for v in xml_field.findall(f"{_C}value")
        )
        if ftype == "enum" and not options:
            problems.append(
                Problem(
                    file,
                    "an enum field needs at least one value",
                    where,
                    line,
                    "add camunda:value options",
                )
            )
        args = {"file": file, "element": where, "line": line, "problems": problems}
        fields.append(
            FormField(
                id=field_id,
                label=xml_field.get("label") or field_id,
                type=ftype,
                required="required" in found,
                minimum=_int(found.get("min"), **args),
                maximum=_int(found.get("max"), **args),
                min_length=_int(found.get("minlength"), **args),
                max_length=_int(found.get("maxlength"), **args),
                not_future="not_future" in found,
                options=options,
            )
        )
    return Form(tuple(fields))


def _message_name(node: etree._Element, messages: dict[str, str]) -> str | None:
    definition = node.find(f"{_B}messageEventDefinition")
    if definition is None:
        return None
    ref: str | None = definition.get("messageRef")
    return messages.get(ref or "", ref)


def read_steps(root: etree._Element, *, file: str) -> tuple[dict[str, Step], list[Problem]]:
    """Collect every flow element's step information from a BPMN document."""
    steps: dict[str, Step] = {}
    problems: list[Problem] = []
    messages: dict[str, str] = {}  # each message's name by id (read once, not once per event)
    for message in root.iter(f"{_B}message"):
        ident = message.get("id")
        if ident is not None:
            messages.setdefault(ident, message.get("name") or ident)
    for process in root.iter(f"{_B}process"):
        for node in process.xpath("descendant-or-self::*[@id]"):  # in C: skips the rest
            if not node.tag.startswith(_B):
                continue
            element_id = node.get("id")
            kind = etree.QName(node).localname
            if not element_id or kind in {"sequenceFlow", "documentation", "extensionElements"}:
                continue
            props = _properties(node)
            role = node.get(f"{_C}candidateGroups") or props.get("pathway.role")
            if role is not None:
                role = role.strip()
                unknown = [r for r in role.split(",") if r.strip() not in ROLES]
                if unknown:
                    problems.append(
                        Problem(
                            file,
                            f"unknown role '{role}'",
                            element_id,
                            node.sourceline,
                            "use one of " + ", ".join(ROLES),
                        )
                    )
            reminder = None
            if props.get("pathway.reminder"):
                to = tuple(
                    r.strip() for r in props.get("pathway.reminder.to", "").split(",") if r.strip()
                )
                reminder = ReminderRule(
                    props["pathway.reminder"],
                    to,
                    props.get("pathway.escalate", "").lower() == "true",
                    reminder_text(props, name=node.get("name")),
                )
            variances = tuple(
                VarianceRule(
                    name[len(_VARIANCE) :],
                    value,
                    props.get(name + ".rule"),
                    props.get(name + ".quote"),
                )
                for name, value in props.items()
                if name.startswith(_VARIANCE) and not name.endswith((".rule", ".quote"))
            )
            steps[element_id] = Step(
                id=element_id,
                name=node.get("name"),
                kind=kind,
                line=node.sourceline,
                evidence=Evidence(
                    _text(node.find(f"{_B}documentation")),
                    props.get("pathway.evidence.source"),
                    props.get("pathway.evidence.quote"),
                ),
                role=role,
                form=_form(node, file=file, problems=problems),
                reminder=reminder,
                deadline=props.get("pathway.deadline"),
                limits=_limits(props),
                variances=variances,
                message=_message_name(node, messages),
                message_form=props.get("pathway.form"),
                timer=node.find(f"{_B}timerEventDefinition") is not None,
                urgent=props.get("pathway.priority", "").lower() == "urgent",
                interrupts=(
                    node.get("attachedToRef")
                    if kind == "boundaryEvent" and node.get("cancelActivity", "true") != "false"
                    else None
                ),
                within=tuple(
                    str(a.get("id")) for a in node.iterancestors(f"{_B}subProcess") if a.get("id")
                ),
                decision=node.get(f"{_C}decisionRef") if kind == "businessRuleTask" else None,
                completed_on=props.get("pathway.completed_on") or None,
                merges=props.get("pathway.merges") or None,
                escalation=_escalation(props),
                properties=props,
            )
    return steps, problems


def describe_step(step: Step) -> dict[str, Any]:
    """Return a step's public description: name, role, form and evidence."""
    return {
        "id": step.id,
        "name": step.name,
        "role": step.role,
        "form": step.form.describe() if step.form else [],
        "evidence": step.evidence.describe(),
    }
