"""Scenarios: drive one simulated case through a pathway on a simulated clock.

A scenario names the pathway (or leaves it to the folder of diagrams when that holds only one),
a start time and steps at day offsets. Between steps the simulator fires every due timer at its
own due time, so the timeline shows when each deadline fell. The run uses a private in-memory
database and the real engine; the case's task tree is read at the end for ``coverage``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import bundled, definitions
from .cases import complete_task, deliver_message, get_case, start_case, timeline
from .clock import SimulatedClock, clinic_zone, zone_named
from .coverage import Trail, coverage, read_elements, trail_of
from .definitions import deploy
from .diagrams import BPMN_NS, XmlRefused, parse_xml
from .errors import PathwayError, ScenarioInvalid
from .runtime import load_state
from .sandbox import script_engine
from .scheduling import fire_due, next_due
from .store import cases, make_engine, metadata, session_factory
from .vocabulary import SIMULATED_EVENTS, CaseStatus, EventType

TIMELINE_TYPES = SIMULATED_EVENTS


class ScenarioStep(BaseModel):
    """One action of a scenario, at a day offset from the start."""

    model_config = ConfigDict(extra="forbid")

    day: float = Field(ge=0)
    complete: str | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_action(self) -> ScenarioStep:
        if (self.complete is None) == (self.message is None):
            raise ValueError("a step has exactly one of 'complete' (a step id) or 'message'")
        return self


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid")

    pathway: str | None = Field(
        default=None,
        description="The process id; may be left out when the diagrams hold one pathway.",
    )
    start: AwareDatetime
    timezone: str | None = Field(
        default=None, description="The clinic's IANA time zone (default: the service's)."
    )
    steps: list[ScenarioStep]
    until_day: float | None = Field(default=None, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value


@dataclass
class ScenarioResult:
    """The timeline and final state of a simulated case, the pathway it ran and its trail."""

    timeline: list[dict[str, Any]]
    final: dict[str, Any]
    pathway: str
    trail: Trail

    def as_json(self) -> dict[str, Any]:
        """Return the result in the scenario output format."""
        return {"timeline": self.timeline, "final": self.final}


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file, with a clear message for each problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioInvalid(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioInvalid(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise ScenarioInvalid(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'scenario'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ScenarioInvalid(f"{path}: {problems}") from None
    previous = 0.0
    for index, step in enumerate(scenario.steps, start=1):
        if step.day < previous:
            raise ScenarioInvalid(
                f"{path}: step {index} is on day {step.day}, before step "
                f"{index - 1} (day {previous}): steps must be in day order"
            )
        previous = step.day
    if scenario.until_day is not None and scenario.until_day < previous:
        raise ScenarioInvalid(f"{path}: until_day {scenario.until_day} is before the last step")
    return scenario


@dataclass(frozen=True)
class PathwayFolder:
    """The pathways of a folder of diagrams: each executable process of its BPMN files, run with
    every DMN file of the folder."""

    name: str
    bpmn: dict[str, tuple[str, bytes]]
    """Each pathway (process id) with its BPMN file's name and bytes."""
    dmn: tuple[tuple[str, bytes], ...]

    @classmethod
    def read(cls, directory: Traversable, *, name: str) -> PathwayFolder:
        """Read a folder's .bpmn and .dmn files (``name`` is how messages call the folder)."""
        found = sorted(
            (p for p in directory.iterdir() if p.name.lower().endswith((".bpmn", ".dmn"))),
            key=lambda p: p.name,
        )
        bpmn: dict[str, tuple[str, bytes]] = {}
        dmn = []
        for path in found:
            content = path.read_bytes()
            if path.name.lower().endswith(".dmn"):
                dmn.append((path.name, content))
                continue
            for process in _executable_processes(content, file=f"{name}/{path.name}"):
                if process in bpmn:
                    raise ScenarioInvalid(
                        f"{name}: pathway '{process}' is in both {bpmn[process][0]} and "
                        f"{path.name}: give each process its own id"
                    )
                bpmn[process] = (path.name, content)
        if not bpmn:
            raise ScenarioInvalid(f"{name}: no .bpmn file with an executable process in it")
        return cls(name, bpmn, tuple(dmn))

    def pathway_for(self, requested: str | None) -> str:
        """The pathway a scenario runs: the one it names, else the folder's only one."""
        known = ", ".join(sorted(self.bpmn))
        if requested is None:
            if len(self.bpmn) != 1:
                raise ScenarioInvalid(
                    f"{self.name} holds {len(self.bpmn)} pathways ({known}): name one in the "
                    'scenario\'s "pathway"'
                )
            return next(iter(self.bpmn))
        if requested not in self.bpmn:
            raise ScenarioInvalid(f"no pathway '{requested}' in {self.name} (it holds {known})")
        return requested

    def files(self, pathway: str) -> list[tuple[str, bytes]]:
        """A pathway's definition: its BPMN file first, then the folder's DMN files."""
        return [self.bpmn[pathway], *self.dmn]


def bundled_folder() -> PathwayFolder:
    """The pathways shipped with Pathway (bpmn/)."""
    return PathwayFolder.read(bundled.directory(), name="bpmn/")


def _executable_processes(content: bytes, *, file: str) -> list[str]:
    try:
        root = parse_xml(content)
    except XmlRefused as exc:
        raise ScenarioInvalid(f"{file}: {exc} (run pathway validate on it)") from None
    return [
        str(p.get("id"))
        for p in root.iter(f"{{{BPMN_NS}}}process")
        if p.get("id") and p.get("isExecutable", "true").strip().lower() != "false"
    ]


def coverage_report(
    folder: PathwayFolder, pathway: str, runs: list[tuple[str, ScenarioResult]]
) -> dict[str, Any]:
    """What the named scenario runs reached of a pathway and what none did (see coverage)."""
    file, content = folder.bpmn[pathway]
    elements = read_elements(parse_xml(content), process_id=pathway, file=file)
    trails = [(label, result.trail) for label, result in runs]
    return coverage(elements, trails, pathway=pathway, file=f"{folder.name.rstrip('/')}/{file}")


def _fire_until(session_of: Any, *, clock: SimulatedClock, until: datetime) -> None:
    while True:
        with session_of() as session:
            due = next_due(session)
        if due is None or due > until:
            return
        clock.set(max(due, clock.now()))
        with session_of.begin() as session:
            fire_due(session, now=clock.now(), zone=clinic_zone(clock))


def _day(at: datetime, start: datetime) -> float:
    return round((at - start).total_seconds() / 86400, 4)


def _timeline(session: Session, case_id: str, *, start: datetime) -> list[dict[str, Any]]:
    out = []
    for event in timeline(session, case_id):
        if event.type not in TIMELINE_TYPES:
            continue
        item: dict[str, Any] = {
            "at": event.at.isoformat(),
            "day": _day(event.at, start),
            "type": event.type,
        }
        if event.type == EventType.TASK_READY:
            item["task"] = event.step
        elif event.type == EventType.TASK_COMPLETED:
            item["task"] = event.step
            if "values" in event.detail:
                item["data"] = event.detail["values"]
        elif event.type == EventType.DECISION:
            item["task"] = event.step
            item["decision"] = event.detail.get("decision")
            item["outputs"] = event.detail.get("outputs") or {}
            item["rule"] = event.detail.get("rule")
        elif event.type == EventType.TIMER_FIRED:
            item["timer"] = event.step
            if event.detail.get("deadline"):
                item["deadline"] = event.detail["deadline"]
        elif event.type == EventType.REMINDER:
            item["reminder"] = event.detail["reminder"]
        elif event.type == EventType.VARIANCE:
            item["variance"] = event.detail["variance"]
            item["task"] = event.step
        elif event.type == EventType.MESSAGE:
            item["message"] = event.detail.get("message")
            item["reported"] = event.detail.get("reported") or []
        elif event.type == EventType.CASE_ENDED:
            item["end"] = event.detail.get("end")
        if event.actor:
            item["by"] = event.actor
        out.append(item)
    return out


def run_scenario(
    scenario: Scenario,
    *,
    folder: PathwayFolder | None = None,
    actor: str = "simulator",
    zone: tzinfo = UTC,
) -> ScenarioResult:
    """Run a scenario on a fresh in-memory database against a folder's pathways (default: the
    bundled ones); raise ScenarioInvalid on a bad step. The clinic's time zone is the
    scenario's own, else ``zone``."""
    if scenario.timezone is not None:
        zone = zone_named(scenario.timezone)
    folder = folder or bundled_folder()
    pathway = folder.pathway_for(scenario.pathway)
    files = folder.files(pathway)
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    sessions = session_factory(engine)
    start = scenario.start
    clock = SimulatedClock(start, zone=zone)
    try:
        with sessions.begin() as session:
            try:
                deploy(session, files=files, now=start)
            except PathwayError as exc:
                raise ScenarioInvalid(f"pathway '{pathway}' cannot be deployed: {exc}") from None
            case_id = start_case(session, pathway=pathway, clock=clock, actor=actor).id
        for index, step in enumerate(scenario.steps, start=1):
            at = start + timedelta(days=step.day)
            _fire_until(sessions, clock=clock, until=at)
            clock.set(at)
            try:
                with sessions.begin() as session:
                    if step.complete is not None:
                        complete_task(
                            session,
                            case_id=case_id,
                            step=step.complete,
                            data=step.data,
                            clock=clock,
                            actor=actor,
                        )
                    else:
                        assert step.message is not None
                        deliver_message(
                            session,
                            case_id=case_id,
                            message=step.message,
                            data=step.data,
                            clock=clock,
                            actor=actor,
                        )
            except PathwayError as exc:
                action = step.complete or step.message
                raise ScenarioInvalid(
                    f"step {index} (day {step.day:g}, '{action}'): {exc}"
                ) from None
        if scenario.until_day is not None:
            _fire_until(sessions, clock=clock, until=start + timedelta(days=scenario.until_day))
        with sessions() as session:
            view = get_case(session, case_id, clock=clock)
            events = _timeline(session, case_id, start=start)
            trail = _trail(session, case_id, clock=clock, events=events)
    finally:
        engine.dispose()
    final = {
        # the simulator never cancels: a case is still active or has ended
        "status": CaseStatus.ACTIVE if view.status == CaseStatus.ACTIVE else CaseStatus.ENDED,
        "end": view.end,
        "ready_tasks": [t.id for t in view.ready_tasks],
        # The simulator delivers each reminder the moment it is raised.
        "reminders_sent": [e["reminder"] for e in events if e["type"] == EventType.REMINDER],
        "variances": [v.code for v in view.variances],
        "escalated": view.escalated,
    }
    return ScenarioResult(events, final, pathway, trail)


def _trail(
    session: Session, case_id: str, *, clock: SimulatedClock, events: list[dict[str, Any]]
) -> Trail:
    """Read what the case reached from its stored task tree."""
    row = session.execute(
        select(cases.c.state, cases.c.definition_id).where(cases.c.id == case_id)
    ).one()
    loaded = definitions.load(session, row.definition_id)
    workflow = load_state(row.state, parsed=loaded.parsed, script_engine=script_engine(clock))
    recorded = [(e["task"], e["variance"]) for e in events if e["type"] == EventType.VARIANCE]
    return trail_of(workflow, variances=recorded)
