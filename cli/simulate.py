"""`pathway simulate`: run scenario files on a simulated clock, against the bundled pathway or
a folder of changed diagrams (``--definitions``), and say what they covered (``--coverage``)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import engine

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Drive one simulated case per scenario file through a pathway on a simulated clock, firing each
timer at its own due time, and print its timeline and final state. A folder stands for the
.json files in it (anything else in it is skipped with a note).

--definitions DIR runs the scenarios against the .bpmn and .dmn files in DIR (a changed copy of
bpmn/, say) instead of the bundled pathway. DIR is validated first, as `pathway validate DIR`
does: if any file has a problem, the problems are printed, nothing runs and the exit status is 1.
A scenario's "pathway" (a process id) picks the pathway from DIR; a scenario without one runs
DIR's only pathway.

--coverage runs the scenarios and prints, per pathway, which steps (tasks, sub-processes, end
events), sequence flows, timers, reminders and variance rules at least one scenario reached,
and which none did, with totals and percentages. A timer counts as reached when it fired; one
that waited with a due time that never came is listed as armed, never fired; one whose
expression gave null (disarmed) counts as not reached. With --json it prints the same as JSON.

Exit status: 0 when every scenario ran, 1 when DIR has problems, 2 when DIR is missing or has
no .bpmn file, or a scenario cannot be run (its message names the scenario, the step and the
steps that were ready)."""

_EVENT_NAMES = {
    engine.EventType.TASK_READY: "ready",
    engine.EventType.TASK_COMPLETED: "completed",
    engine.EventType.DECISION: "decision",
    engine.EventType.TIMER_FIRED: "timer fired",
    engine.EventType.REMINDER: "REMINDER",
    engine.EventType.MESSAGE: "message",
    engine.EventType.VARIANCE: "VARIANCE",
    engine.EventType.CASE_ENDED: "case ended",
}
_DIAGRAMS = (".bpmn", ".dmn")


def add_parser(commands: Any) -> None:
    """Add the ``simulate`` command to the command line's sub-commands."""
    simulate = commands.add_parser(
        "simulate",
        help="run scenario files on a simulated clock (and report what they covered)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("scenarios", nargs="+", metavar="SCENARIO_OR_FOLDER")
    simulate.add_argument("--json", action="store_true", help="print the result as JSON")
    simulate.add_argument(
        "--definitions",
        metavar="DIR",
        help="run against the .bpmn and .dmn files in DIR (validated first), not bpmn/",
    )
    simulate.add_argument(
        "--coverage",
        action="store_true",
        help="print which steps, flows, timers, reminders and variances were reached",
    )
    simulate.set_defaults(func=run)


def _scenario_paths(names: list[str]) -> tuple[list[Path], list[str]]:
    """The scenario files named, a folder standing for the .json files in it; and a note for
    everything in such a folder that was left out."""
    paths: list[Path] = []
    notes: list[str] = []
    for name in names:
        path = Path(name)
        if not path.is_dir():
            paths.append(path)  # a missing or unreadable file is reported when it is read
            continue
        found = 0
        for entry in sorted(path.iterdir()):
            if entry.is_file() and entry.suffix.lower() == ".json":
                paths.append(entry)
                found += 1
            else:
                what = "a folder" if entry.is_dir() else "not a scenario (.json) file"
                notes.append(f"{entry}: skipped, {what}")
        if not found:
            notes.append(f"{name}: a folder with no scenario (.json) file in it")
    return paths, notes


def _print_problems(reports: list[engine.FileReport]) -> None:
    for report in reports:
        count = len(report.problems)
        print(f"{report.file}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        for problem in report.problems:
            where = f"line {problem.line}" if problem.line else "no line"
            element = f" [{problem.element_id}]" if problem.element_id else ""
            print(f"  - {where}{element}: {problem.message}", file=sys.stderr)
            if problem.fix:
                print(f"    fix: {problem.fix}", file=sys.stderr)


def _definitions(name: str) -> engine.PathwayFolder | int:
    """The pathways of DIR, or the exit status after saying why they cannot be used."""
    folder = Path(name)
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "no such folder"
        print(
            f"pathway simulate: --definitions {name}: {what} "
            "(name the folder that holds the .bpmn and .dmn files)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    diagrams = sorted(p for p in folder.iterdir() if p.suffix.lower() in _DIAGRAMS)
    if not any(p.suffix.lower() == ".bpmn" for p in diagrams):
        print(f"pathway simulate: --definitions {name}: no .bpmn file in it", file=sys.stderr)
        return EXIT_USAGE
    bad = [report for report in engine.validate_paths(diagrams) if not report.deployable]
    if bad:
        print(
            f"pathway simulate: {name} is not deployable, so no scenario was run "
            "(the same problems `pathway validate` finds):",
            file=sys.stderr,
        )
        _print_problems(bad)
        return EXIT_PROBLEMS
    return engine.PathwayFolder.read(folder, name=name)


def run(args: argparse.Namespace) -> int:
    """Run ``pathway simulate``."""
    folder = engine.bundled_folder() if args.definitions is None else _definitions(args.definitions)
    if isinstance(folder, int):
        return folder
    paths, notes = _scenario_paths(args.scenarios)
    for note in notes:
        print(note, file=sys.stderr)
    if not paths:
        print("pathway simulate: no scenario to run", file=sys.stderr)
        return EXIT_USAGE
    zone = engine.get_settings().zone
    runs: list[tuple[str, engine.ScenarioResult]] = []
    for path in paths:
        try:
            scenario = engine.load_scenario(path)  # its messages name the file
        except engine.ScenarioInvalid as exc:
            print(f"pathway simulate: {exc}", file=sys.stderr)
            return EXIT_USAGE
        try:
            result = engine.run_scenario(scenario, folder=folder, zone=zone)
        except engine.ScenarioInvalid as exc:
            print(f"pathway simulate: {path}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        runs.append((str(path), result))
        if not args.json and not args.coverage:
            if len(runs) > 1:
                print()
            _print_timeline(str(path), scenario.start, result)
    if args.coverage:
        _coverage(folder, runs, as_json=args.json)
    elif args.json:
        outputs = [result.as_json() for _, result in runs]
        print(json.dumps(outputs[0] if len(outputs) == 1 else outputs, indent=2))
    return EXIT_OK


# -- the timeline ---------------------------------------------------------------------------


def _values(values: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return {True: "yes", False: "no", None: "-"}.get(value, str(value))  # type: ignore[arg-type]

    return ", ".join(f"{name}={shown(value)}" for name, value in values.items())


def _detail(event: dict[str, Any]) -> str:
    if event["type"] == engine.EventType.DECISION:
        rule = f" (rule {event['rule']})" if event.get("rule") else ""
        return f"{event['task']}  {event['decision']}: {_values(event['outputs'])}{rule}"
    if event["type"] == engine.EventType.MESSAGE and event.get("reported"):
        return f"message: {event['message']}  reported: {', '.join(event['reported'])}"
    if event["type"] == engine.EventType.TASK_COMPLETED and event.get("data"):
        return f"{event['task']}  {_values(event['data'])}"
    parts = []
    for key in ("task", "timer", "deadline", "reminder", "variance", "message", "end"):
        if event.get(key) and not (key == "task" and event["type"] == engine.EventType.VARIANCE):
            parts.append(str(event[key]) if key in ("task", "timer") else f"{key}: {event[key]}")
    if event["type"] == engine.EventType.VARIANCE and event.get("task"):
        parts.append(f"at {event['task']}")
    return "  ".join(parts)


def _print_timeline(path: str, start: datetime, result: engine.ScenarioResult) -> None:
    print(f"{path}: {result.pathway}, starting {start:%Y-%m-%d %H:%M %Z}".rstrip())
    print(f"  {'date':<17} {'day':>7}  {'event':<11}  step / detail")
    for event in result.timeline:
        at = datetime.fromisoformat(event["at"])
        name = _EVENT_NAMES.get(event["type"], event["type"])
        print(f"  {at:%Y-%m-%d %H:%M} {event['day']:>7g}  {name:<11}  {_detail(event)}")
    final = result.final
    status = final["status"] + (f" at '{final['end']}'" if final["end"] else "")
    print(f"  final: {status}; escalated: {'yes' if final.get('escalated') else 'no'}")
    print(f"         ready: {', '.join(final['ready_tasks']) or 'none'}")
    print(f"         reminders: {', '.join(final['reminders_sent']) or 'none'}")
    print(f"         variances: {', '.join(final['variances']) or 'none'}")


# -- coverage -------------------------------------------------------------------------------

_REACHED = {
    "steps": "reached",
    "flows": "taken",
    "timers": "fired",
    "reminders": "reached",
    "variances": "recorded",
}


def _coverage(
    folder: engine.PathwayFolder, runs: list[tuple[str, engine.ScenarioResult]], *, as_json: bool
) -> None:
    pathways = list(dict.fromkeys(result.pathway for _, result in runs))
    reports = [
        engine.coverage_report(folder, pathway, [r for r in runs if r[1].pathway == pathway])
        for pathway in pathways
    ]
    if as_json:
        scenarios = [
            {"file": label, "pathway": result.pathway, "final": result.final}
            for label, result in runs
        ]
        print(json.dumps({"scenarios": scenarios, "coverage": reports}, indent=2))
        return
    for label, result in runs:
        final = result.final
        where = f"ended at '{final['end']}'" if final["end"] else f"{final['status']}"
        print(f"{label}: {result.pathway}, {where}")
    for report in reports:
        print()
        _print_coverage(report)


def _percent(section: dict[str, Any]) -> str:
    percent = section["percent"]
    return "none in the diagram" if percent is None else f"{percent:g}%"


def _item(category: str, item: dict[str, Any]) -> str:
    name = f'  "{item["name"]}"' if item.get("name") else ""
    if category == "steps":
        return f"{item['id']}  {item['kind']}{name}"
    if category == "flows":
        text = f"{item['id']}  {item['from']} -> {item['to']}{name}"
        if item.get("condition"):
            text += f"  if {item['condition']}"
        return text + ("  (default)" if item.get("default") else "")
    if category == "timers":
        where = f"on {item['attached_to']}" if item.get("attached_to") else "intermediate"
        text = f"{item['id']}  {where}  {item['expression']}"
        if item.get("deadline"):
            text += f"  (deadline {item['deadline']})"
        if item.get("disarmed_by"):
            text += f"  disarmed (null) in {', '.join(item['disarmed_by'])}"
        return text
    if category == "reminders":
        return f"{item['id']}  {item['reminder']}{name}"
    return f"{item['id']} at {item['step']}: {item.get('rule') or item['condition']}"


def _print_coverage(report: dict[str, Any]) -> None:
    count = len(report["scenarios"])
    plural = "s" if count != 1 else ""
    print(f"Coverage of {report['pathway']} ({report['file']}) by {count} scenario{plural}")
    for category, verb in _REACHED.items():
        section = report[category]
        print(
            f"{category}: {section['reached_count']} of {section['total']} {verb} "
            f"({_percent(section)})"
        )
        reached = ", ".join(item["id"] for item in section["reached"]) or "none"
        print(
            textwrap.fill(
                reached, width=100, initial_indent=f"  {verb}: ", subsequent_indent=" " * 4
            )
        )
        lists = [("armed, never fired", section.get("armed_not_fired", []))]
        lists.append(
            ("not reached" if category == "timers" else f"not {verb}", section["unreached"])
        )
        for title, items in lists:
            if items:
                print(f"  {title}:")
                for item in items:
                    print(f"    - {_item(category, item)}")
    print("in all:")
    for category, verb in _REACHED.items():
        section = report[category]
        armed = len(section.get("armed_not_fired", []))
        extra = f"; {armed} armed, never fired" if armed else ""
        print(
            f"  {category:<10} {section['reached_count']:>4} of {section['total']:<4} {verb:<8} "
            f"{_percent(section)}{extra}"
        )
