"""Decision-table entries written in FEEL: each is a problem naming the table, the rule and the
column, and the entry the problem suggests really decides as meant when the engine runs it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.clock import SimulatedClock
from engine.diagrams import build_specs, parse_xml
from engine.sandbox.expressions import script_engine
from engine.validation import validate_documents

DIAGRAMS = Path(__file__).resolve().parent / "diagrams"
TRIAGE = (DIAGRAMS / "triage.bpmn").read_bytes()
TABLE = (DIAGRAMS / "triage_decision.dmn").read_text()


def _table(entry: str, *, column: str = "score", fallback: str = "-") -> bytes:
    """The triage table with rule 1 ('urgent') testing ``entry`` and rule 2 ('routine')
    testing ``fallback``, on the input expression ``column``."""
    text = TABLE.replace("<text>score</text>", f"<text>{escape(column)}</text>")
    text = text.replace("<text>&gt; 7</text>", f"<text>{escape(entry)}</text>")
    text = text.replace("<text>&lt;= 7</text>", f"<text>{escape(fallback)}</text>")
    return text.encode()


def _decide(table: bytes, data: dict[str, Any]) -> str:
    """Run the triage pathway's business rule task on ``data``; return the urgency decided."""
    parsed = build_specs(
        bpmn=[("triage.bpmn", parse_xml(TRIAGE))],
        dmn=[("triage_decision.dmn", parse_xml(table))],
        process_id="triage",
    )
    clock = SimulatedClock(dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC))
    workflow = BpmnWorkflow(
        parsed.spec, parsed.subprocess_specs, script_engine=script_engine(clock)
    )
    workflow.do_engine_steps()
    (assess,) = workflow.get_tasks(state=TaskState.READY, manual=True)
    assess.data.update(data)
    assess.run()
    workflow.do_engine_steps()
    (classify,) = [t for t in workflow.get_tasks() if t.task_spec.name == "classify"]
    urgency: str = classify.data["urgency"]
    return urgency


# (FEEL entry, what it is, the fix suggested, values it must match, values it must not)
FEEL = [
    ("[1..5]", "FEEL range", "1 <= ? <= 5", [1, 3, 5], [0, 6]),
    ("(1..5]", "FEEL range", "1 < ? <= 5", [2, 5], [1, 6]),
    ("[1..5)", "FEEL range", "1 <= ? < 5", [1, 4], [5]),
    ("]1..5[", "FEEL range", "1 < ? < 5", [2, 4], [1, 5]),
    ("2, 4", "FEEL list of values", "? in (2, 4)", [2, 4], [3]),
    ('"left","right"', "FEEL list of values", '? in ("left", "right")', ["left"], ["both"]),
    ('not("left")', "FEEL negation", '? not in ("left",)', ["right"], ["left"]),
    ('not("a", "b")', "FEEL negation", '? not in ("a", "b")', ["c"], ["a", "b"]),
    ("not([1..5])", "FEEL negated range", "not (1 <= ? <= 5)", [0, 6], [1, 5]),
]


@pytest.mark.parametrize(("entry", "kind", "fix", "matching", "other"), FEEL)
def test_feel_entry_is_a_problem_naming_rule_column_and_fix(
    entry: str, kind: str, fix: str, matching: list[Any], other: list[Any]
) -> None:
    (report,) = validate_documents([("triage_decision.dmn", _table(entry))])
    (problem,) = report.problems
    assert problem.element_id == "rule_urgent_score"
    assert problem.message.startswith(
        "rule 1 ('rule_urgent') of decision table 'triage_table', column 'Severity score'"
    )
    assert kind in problem.message and f"'{entry}'" in problem.message
    assert problem.fix == f"write {fix} (? stands for the column's value)"


@pytest.mark.parametrize(("entry", "kind", "fix", "matching", "other"), FEEL)
def test_the_suggested_entry_decides_as_the_feel_one_meant(
    entry: str, kind: str, fix: str, matching: list[Any], other: list[Any]
) -> None:
    table = _table(fix)
    (report,) = validate_documents([("triage_decision.dmn", table)])
    assert report.problems == ()
    for value in matching:
        assert _decide(table, {"score": value}) == "urgent", value
    for value in other:
        assert _decide(table, {"score": value}) == "routine", value


def test_the_feel_entries_themselves_do_not_decide_as_meant() -> None:
    """Why they are problems: the list and the negation never match, the range fails."""
    assert _decide(_table('"left","right"'), {"score": "left"}) == "routine"
    assert _decide(_table('not("left")'), {"score": "right"}) == "routine"
    with pytest.raises(Exception, match="not valid Python"):
        _decide(_table("[1..5]"), {"score": 3})


def test_a_feel_comparison_works_as_written_and_is_accepted() -> None:
    """`>= 50` is appended to the input expression (`score>= 50`), which is what FEEL means."""
    table = _table(">= 50")
    (report,) = validate_documents([("triage_decision.dmn", table)])
    assert report.problems == ()
    assert _decide(table, {"score": 50}) == "urgent"
    assert _decide(table, {"score": 49}) == "routine"


def test_a_test_that_fuses_with_the_input_name_is_a_problem_and_its_fix_works() -> None:
    (report,) = validate_documents([("triage_decision.dmn", _table("not in (3, 4)"))])
    (problem,) = report.problems
    assert "makes the name 'scorenot'" in problem.message
    assert problem.fix == "write ? not in (3, 4)"
    fixed = _table("? not in (3, 4)")
    assert _decide(fixed, {"score": 5}) == "urgent"
    assert _decide(fixed, {"score": 3}) == "routine"


def test_a_comparison_after_a_compound_input_is_a_problem_and_its_fix_works() -> None:
    column = "score or bonus"
    (report,) = validate_documents([("d.dmn", _table("> 7", column=column, fallback="-"))])
    (problem,) = report.problems
    assert problem.message.startswith(
        "rule 1 ('rule_urgent') of decision table 'triage_table', column 'Severity score'"
    )
    assert "tests only the expression's last part" in problem.message
    assert problem.fix == "write ? > 7"
    data = {"score": 2, "bonus": 0}  # (2 or 0) > 7 is false; 2 or (0 > 7) is 2, truthy
    assert _decide(_table("> 7", column=column), data) == "urgent"
    assert _decide(_table("? > 7", column=column), data) == "routine"


def test_an_output_entry_that_is_not_allowed_names_rule_and_column() -> None:
    text = TABLE.replace('<text>"routine"</text>', "<text>open('x')</text>")
    (report,) = validate_documents([("triage_decision.dmn", text.encode())])
    (problem,) = report.problems
    assert problem.element_id == "rule_routine_out"
    assert problem.message.startswith(
        "rule 2 ('rule_routine') of decision table 'triage_table', column 'Urgency': "
        "the value 'open('x')' is not allowed"
    )
