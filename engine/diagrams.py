"""Reading BPMN and DMN files: safe XML parsing and the SpiffWorkflow parser the engine runs.

XML is read by ``safe_xml.parse_xml`` (no DTD, entity or network access; bounded depth and
element count), which this module re-exports with ``XmlRefused``. Timers are rebound to the
injected clock of the workflow's script engine, and a bare ISO 8601 timer literal (``P14D``, as
Camunda Modeler writes it) is accepted as well as an expression.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, ClassVar

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.bpmn.util import PendingBpmnEvent
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
from SpiffWorkflow.dmn.specs import BusinessRuleTaskMixin

from .clock import clinic_zone
from .safe_xml import XmlRefused as XmlRefused
from .safe_xml import parse_xml as parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

_ISO_DURATION = re.compile(
    r"^P(?!$)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
    r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?$"
)
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)
_ISO_CYCLE = re.compile(r"^R\d*/")


def is_iso_literal(text: str) -> bool:
    """Tell whether a timer body is a bare ISO 8601 duration, date-time or cycle."""
    text = text.strip()
    return bool(_ISO_DURATION.match(text) or _ISO_DATETIME.match(text) or _ISO_CYCLE.match(text))


def timer_expression(text: str) -> str:
    """Turn a timer body into an expression: a bare ISO literal becomes a quoted string."""
    body = (text or "").strip()
    return repr(body) if is_iso_literal(body) else body


def to_utc(value: Any, *, zone: tzinfo = UTC) -> datetime:
    """Read an ISO 8601 date or date-time (text or object) as UTC. A date alone is 00:00 on
    that date in ``zone`` (the clinic's: a date-anchored deadline falls due at its local
    midnight); a naive date-time is taken as UTC."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day, tzinfo=zone)
    else:
        text = str(value).strip()
        if len(text) == 10:
            day = date.fromisoformat(text)
            when = datetime(day.year, day.month, day.day, tzinfo=zone)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def add_iso_duration(start: datetime, duration: str) -> datetime:
    """Add an ISO 8601 duration to a time, with calendar months and years."""
    parsed = TimerEventDefinition.parse_iso_duration(duration)
    months = int(parsed.pop("years", 0)) * 12 + int(parsed.pop("months", 0))
    if months:
        month_index = start.month - 1 + months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, monthrange(year, month)[1])
        start = start.replace(year=year, month=month, day=day)
    return start + timedelta(**{k: float(v) for k, v in parsed.items()})


def _clock_now(my_task: Any) -> datetime:
    now: datetime = my_task.workflow.script_engine.clock.now()
    return now


DISARMED = "disarmed"
"""The due value of a timer whose expression gave null: it waits without ever firing."""


def due_time(value: Any) -> datetime | None:
    """Read a timer's stored due value (None when it has none or is disarmed)."""
    if isinstance(value, dict):
        value = value.get("next")
    if not isinstance(value, str) or value == DISARMED:
        return None
    return to_utc(value)


class ClockedTimeDate(TimeDateEventDefinition):  # type: ignore[misc]
    """A timeDate timer that reads the injected clock; fires when its date is reached.

    An expression that evaluates to null disarms the timer (a rule that does not apply to
    this case), e.g. ``add_months(symptom_onset, 3) if persistent else null``.
    """

    def has_fired(self, my_task: Any) -> bool:
        """Fix the due time on first use, then compare it with the clock."""
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            zone = clinic_zone(my_task.workflow.script_engine.clock)
            event_value = DISARMED if value is None else to_utc(value, zone=zone).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if event_value == DISARMED:
            return False
        if to_utc(event_value) <= _clock_now(my_task):
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockedDuration(DurationTimerEventDefinition):  # type: ignore[misc]
    """A timeDuration timer counted from the moment it is reached, on the injected clock.

    An expression that evaluates to null disarms it, e.g. ``"P14D" if disabling_pain else
    null``: the rule does not apply to this case.
    """

    def has_fired(self, my_task: Any) -> bool:
        """Fix the due time on first use, then compare it with the clock."""
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            duration = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            event_value = (
                DISARMED
                if duration is None
                else add_iso_duration(_clock_now(my_task), str(duration)).isoformat()
            )
            my_task._set_internal_data(event_value=event_value)
        if event_value == DISARMED:
            return False
        if to_utc(event_value) <= _clock_now(my_task):
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockedCycle(CycleTimerEventDefinition):  # type: ignore[misc]
    """A timeCycle timer (R3/PT1H) on the injected clock."""

    def cycle_complete(self, my_task: Any) -> bool:
        """Tell whether the next cycle is due, and move the cycle on when it is."""
        now = _clock_now(my_task)
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = str(my_task.workflow.script_engine.evaluate(my_task, self.expression))
            parts = expression.upper().strip("R").split("/")
            cycles = int(parts[0]) if parts[0] else -1
            duration = parts[-1]
            first = to_utc(parts[1]) if len(parts) == 3 else add_iso_duration(now, duration)
            event_value = {"cycles": cycles, "next": first.isoformat(), "duration": duration}
        ready = False
        if event_value["cycles"] != 0:
            due = to_utc(event_value["next"])
            if due <= now:
                event_value["next"] = add_iso_duration(due, event_value["duration"]).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready

    def details(self, my_task: Any) -> PendingBpmnEvent:
        """Describe the pending cycle by its next due time."""
        event_value = my_task._get_internal_data("event_value")
        value = event_value["next"] if event_value and event_value["cycles"] != 0 else None
        return PendingBpmnEvent(self.name, self.__class__.__name__, value)


_CLOCKED = {
    TimeDateEventDefinition: ClockedTimeDate,
    DurationTimerEventDefinition: ClockedDuration,
    CycleTimerEventDefinition: ClockedCycle,
}


def _rebind_timer(definition: Any) -> None:
    if isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            _rebind_timer(inner)
        return
    for base, clocked in _CLOCKED.items():
        if type(definition) is base:
            definition.__class__ = clocked
            definition.expression = timer_expression(definition.expression)


def rebind_timers(specs: list[Any]) -> None:
    """Make every timer of the given process specs read the injected clock."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            definition = getattr(task_spec, "event_definition", None)
            if definition is not None:
                _rebind_timer(definition)


class BusinessRuleTask(BusinessRuleTaskMixin, BpmnSpecMixin):  # type: ignore[misc]
    """A business rule task that runs a DMN decision."""


class BusinessRuleTaskParser(TaskParser):  # type: ignore[misc]
    """Reads the decision a business rule task calls, as Camunda or SpiffArena writes it."""

    @staticmethod
    def get_decision_ref(node: etree._Element) -> str | None:
        """Return the decision id a business rule task calls, if it names one."""
        decision_ref = node.get(f"{{{CAMUNDA_NS}}}decisionRef")
        if decision_ref is None:
            called = node.find(f".//{{{SPIFF_NS}}}calledDecisionId")
            decision_ref = called.text.strip() if called is not None and called.text else None
        return decision_ref or None

    def create_task(self) -> BusinessRuleTask:
        """Create the task spec bound to its DMN decision."""
        decision_ref = self.get_decision_ref(self.node)
        if not decision_ref:
            raise ValidationException(
                "a business rule task must name its decision (camunda:decisionRef)",
                node=self.node,
                file_name=self.filename,
            )
        return BusinessRuleTask(
            self.spec,
            self.bpmn_id,
            dmnEngine=self.process_parser.parser.get_engine(decision_ref, self.node),
            **self.bpmn_attributes,
        )


class PathwayParser(BpmnDmnParser):  # type: ignore[misc]
    """SpiffWorkflow's BPMN+DMN parser with our business rule tasks; schema checks are ours."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, tuple[Any, Any]]] = {
        **BpmnDmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("businessRuleTask"): (BusinessRuleTaskParser, BusinessRuleTask),
    }

    def __init__(self) -> None:
        super().__init__(validator=None)


@dataclass(frozen=True)
class ParsedPathway:
    """The executable form of one deployed definition."""

    process_id: str
    spec: Any
    subprocess_specs: dict[str, Any]


def build_specs(
    *,
    bpmn: list[tuple[str, etree._Element]],
    dmn: list[tuple[str, etree._Element]],
    process_id: str,
) -> ParsedPathway:
    """Parse diagrams into SpiffWorkflow specs with clocked timers (raises ValidationException)."""
    parser = PathwayParser()
    for name, root in dmn:
        parser.add_dmn_xml(root, filename=name)
    for name, root in bpmn:
        parser.add_bpmn_xml(root, filename=name)
    spec = parser.get_spec(process_id)
    subprocess_specs = parser.get_subprocess_specs(process_id)
    rebind_timers([spec, *subprocess_specs.values()])
    return ParsedPathway(process_id=process_id, spec=spec, subprocess_specs=subprocess_specs)
