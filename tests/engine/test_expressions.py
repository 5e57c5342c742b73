"""The diagram-code sandbox: what modelers can write, and what a hostile diagram cannot do."""

from __future__ import annotations

import ast
import datetime as dt
import pickle
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine

from engine.sandbox import expressions
from engine.sandbox.expressions import (
    ExpressionFailed,
    ExpressionRejected,
    SandboxEnvironment,
    SandboxScriptEngine,
    check_expression,
    check_script,
    evaluate,
    execute,
)


class FixedClock:
    """A clock that always says the same time."""

    def __init__(self, when: dt.datetime) -> None:
        self.when = when

    def now(self) -> dt.datetime:
        return self.when


CLOCK = FixedClock(dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC))


def ev(source: str, **names: Any) -> Any:
    return evaluate(source, names=names, clock=CLOCK)


def run(source: str, **names: Any) -> dict[str, Any]:
    execute(source, names=names, clock=CLOCK)
    return names


# ---------------------------------------------------------------- what modelers write


@pytest.mark.parametrize(
    ("source", "names", "expected"),
    [
        ("disabling_pain == True", {"disabling_pain": True}, True),
        ("disabling_pain == True", {"disabling_pain": False}, False),
        ("red_flag != 'none'", {"red_flag": "cauda_equina"}, True),
        ("red_flag != 'none'", {"red_flag": "none"}, False),
        ("age > 50 and fever", {"age": 61, "fever": True}, True),
        ("age > 50 and fever", {"age": 40, "fever": True}, False),
        (
            "procedure in ('esi_image_guided', 'discectomy') "
            "and not (performed and nerve_root_compression)",
            {"procedure": "discectomy", "performed": True, "nerve_root_compression": False},
            True,
        ),
        (
            "procedure in ('esi_image_guided', 'discectomy') "
            "and not (performed and nerve_root_compression)",
            {"procedure": "discectomy", "performed": True, "nerve_root_compression": True},
            False,
        ),
        (
            "flag == true and other == false and missing == null",
            {"flag": True, "other": False, "missing": None},
            True,
        ),
        ("patient['age'] >= 18 and patient.get('weight', 0) < 150", {"patient": {"age": 30}}, True),
        ("score.lower().strip() in ['high', 'medium']", {"score": "  HIGH "}, True),
        (
            "len([s for s in symptoms if s.startswith('leg')])",
            {"symptoms": ["leg pain", "back pain", "leg numbness"]},
            2,
        ),
        ("{k: v * 2 for k, v in doses.items()}", {"doses": {"a": 1, "b": 2}}, {"a": 2, "b": 4}),
        ("f'{dose:.1f} mg ({route!r})'", {"dose": 2.25, "route": "iv"}, "2.2 mg ('iv')"),
        ("'%s mg' % dose", {"dose": 5}, "5 mg"),
        ("round(sum([1.25, 2.5]), 1) + max(abs(-3), 2)", {}, 6.8),
        ("sorted(set(x))[::-1]", {"x": [3, 1, 3, 2]}, [3, 2, 1]),
        ("2 ** 10 + 7 % 4 - (1 << 3)", {}, 1019),
        ("'ab' * 3 + 'c'", {}, "abababc"),
    ],
)
def test_typical_conditions_evaluate_like_python(
    source: str, names: dict[str, Any], expected: Any
) -> None:
    assert evaluate(source, names=names, clock=CLOCK) == expected


def test_evaluate_does_not_change_the_task_data() -> None:
    data = {"x": 1}
    assert evaluate("(y := x + 1) * 2", names=data, clock=CLOCK) == 4
    assert data == {"x": 1}


def test_surrounding_whitespace_from_xml_is_accepted() -> None:
    assert ev("\n    age > 50\n  ", age=60) is True
    assert run("\n    a = 1\n    b = a + 1\n")["b"] == 2


def test_unknown_variable_fails_naming_the_variable() -> None:
    with pytest.raises(ExpressionFailed) as caught:
        ev("agee > 50", age=60)
    assert "'agee'" in caught.value.reason
    assert caught.value.source == "agee > 50"


def test_a_forgotten_call_is_reported_instead_of_being_truthy() -> None:
    with pytest.raises(ExpressionFailed, match="function"):
        ev("today")


def test_task_data_may_use_a_helper_name_as_a_variable() -> None:
    assert ev("date == '2025-01-01'", date="2025-01-01") is True


# ---------------------------------------------------------------- date helpers


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("add_months('2025-01-31', 1)", "2025-02-28"),
        ("add_months('2024-01-31', 1)", "2024-02-29"),
        ("add_months('2025-12-29', 3)", "2026-03-29"),
        ("add_months('2025-03-31', -1)", "2025-02-28"),
        ("add_months('2025-01-31T08:00:00+02:00', 1)", "2025-02-28T08:00:00+02:00"),
        ("add_months('2025-01-15T08:00:00', 1)", "2025-02-15T08:00:00+00:00"),
        ("add_days('2024-02-28', 1)", "2024-02-29"),
        ("add_days('2025-02-28', 1)", "2025-03-01"),
        ("add_days('2025-01-01', -1)", "2024-12-31"),
        ("add_weeks('2025-01-01', 2)", "2025-01-15"),
        ("add_days(date('2025-01-01'), 1)", "2025-01-02"),
        ("days_between('2025-01-01', '2025-03-01')", 59),
        ("days_between('2024-01-01', '2024-03-01')", 60),
        ("days_between('2025-03-01', '2025-01-01')", -59),
        ("days_between('2025-01-01T00:00:00Z', '2025-01-03T12:00:00Z')", 2),
        ("days_between('2025-01-01', '2025-01-01T23:59:00+00:00')", 0),
        ("date('2025-06-30T23:00:00+00:00').month", 6),
        ("date('2025-01-31').weekday()", 4),
        ("datetime('2025-01-31').isoformat()", "2025-01-31T00:00:00+00:00"),
        ("datetime('2025-01-31T10:00:00').isoformat()", "2025-01-31T10:00:00+00:00"),
        ("date('2025-01-02') > date('2025-01-01')", True),
    ],
)
def test_date_helpers(source: str, expected: Any) -> None:
    assert ev(source) == expected


def test_today_and_now_follow_the_injected_clock() -> None:
    assert ev("today()") == "2025-03-01"
    assert ev("now()") == "2025-03-01T09:30:00+00:00"
    later = FixedClock(dt.datetime(2026, 7, 4, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-2))))
    assert evaluate("today()", names={}, clock=later) == "2026-07-05"  # told in UTC
    assert evaluate("days_between(start, today())", names={"start": "2026-07-01"}, clock=later) == 4


def test_date_results_are_valid_timer_values() -> None:
    """SpiffWorkflow reads a timeDate with datetime.fromisoformat: the helpers' text fits."""
    due = TimerEventDefinition.get_datetime(ev("add_days(now(), 3)"))
    assert due == dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC)
    due = TimerEventDefinition.get_datetime(ev("add_months(now(), 1)"))
    assert due == dt.datetime(2025, 4, 1, 9, 30, tzinfo=dt.UTC)
    assert dt.date.fromisoformat(ev("add_weeks(today(), 1)")) == dt.date(2025, 3, 8)


def test_bad_dates_fail_without_quoting_the_value() -> None:
    with pytest.raises(ExpressionFailed) as caught:
        ev("add_days(d, 1)", d="Jane Doe 1970")
    assert "ISO 8601" in caught.value.reason
    assert "Jane" not in str(caught.value)
    with pytest.raises(ExpressionFailed, match="whole number"):
        ev("add_days('2025-01-01', 1.5)")
    with pytest.raises(ExpressionFailed, match="outside"):
        ev("add_months('9999-12-01', 1)")


# ---------------------------------------------------------------- scripts


def test_script_assignments_land_in_the_task_data_and_helpers_do_not() -> None:
    data = run(
        "total = 0\n"
        "for dose in doses:\n"
        "    total += dose\n"
        "review = add_days(start, 14)\n"
        "summary = {'total': total, 'high': total > 10}\n"
        "del start\n",
        doses=[4, 5, 6],
        start="2025-01-01",
    )
    assert data == {
        "doses": [4, 5, 6],
        "total": 15,
        "dose": 6,
        "review": "2025-01-15",
        "summary": {"total": 15, "high": True},
    }


def test_script_can_fill_dicts_and_lists() -> None:
    data = run("result['score'] = 3\nitems[0] = 'x'", result={}, items=["a"])
    assert data == {"result": {"score": 3}, "items": ["x"]}


def test_script_values_that_task_data_cannot_hold_are_refused() -> None:
    data: dict[str, Any] = {"x": 1}
    with pytest.raises(ExpressionFailed, match="'when'"):
        execute("x = 2\nwhen = date('2025-01-01')", names=data, clock=CLOCK)
    assert data == {"x": 1}  # nothing applied when the script fails
    with pytest.raises(ExpressionFailed, match="'f'"):
        run("f = len")
    with pytest.raises(ExpressionFailed, match="'d'"):
        run("d = {}\nd['me'] = d")


def test_script_failure_reports_the_line() -> None:
    with pytest.raises(ExpressionFailed) as caught:
        run("a = 1\nb = 2\nc = a / 0\n")
    assert caught.value.line == 3
    assert "ZeroDivisionError" in caught.value.reason


def test_assigning_to_a_helper_name_is_rejected() -> None:
    with pytest.raises(ExpressionRejected, match="helper"):
        check_script("len = 3")


# ---------------------------------------------------------------- escapes


MARK = "MARKER"  # replaced by a path under tmp_path

ESCAPES = [
    "__import__('os').system('touch MARKER')",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]"
    ".__init__.__globals__['system']('touch MARKER')",
    "json.__builtins__['__import__']('os').system('touch MARKER')",
    "today.__globals__['__builtins__']['open']('MARKER', 'w').write('x')",
    "add_days.__globals__['__builtins__']['open']('MARKER', 'w').write('x')",
    "(lambda: 0).__globals__['__builtins__']['open']('MARKER', 'w').write('x')",
    "getattr(today, '__globals__')['__builtins__']['open']('MARKER', 'w').write('x')",
    "'{0.__class__.__base__.__subclasses__}'.format(1)",
    "'{0}'.format_map({})",
    "open('MARKER', 'w').write('x')",
    "open('/etc/passwd').read()",
    "exec(\"open('MARKER', 'w').write('x')\")",
    "eval(\"open('MARKER', 'w').write('x')\")",
    "compile(\"open('MARKER', 'w')\", 'x', 'exec')",
    "globals()['__builtins__']['open']('MARKER', 'w').write('x')",
    "vars()",
    "locals()",
    "dir()",
    "type(1)",
    "type(1).__subclasses__()",
    "breakpoint()",
    "object.__subclasses__()",
    "super()",
    "import os\nos.system('touch MARKER')",
    "from os import system\nsystem('touch MARKER')",
    "(x for x in [1]).gi_frame.f_globals['__builtins__']['open']('MARKER', 'w').write('x')",
    "(x for x in [1]).gi_code",
    "str.mro()",
    "dict.__class__",
    "[].__class__.__base__.__subclasses__()",
    "f'{today.__globals__}'",
    "_getattr_(today, '__globals__')",
    "__builtins__['open']('MARKER', 'w')",
    "print(open)",
    "def f():\n    return f()\nf()",
    "class A:\n    pass",
    "async def f():\n    pass",
    "try:\n    x = 1\nexcept Exception as e:\n    e.__traceback__.tb_frame",
    "raise ValueError('x')",
    "with open('MARKER', 'w') as f:\n    pass",
    "global x\nx = 1",
    "def g():\n    yield 1",
    "del x['a']",
    "x.attr = 1",
    "len(*[[1]])",
    "dict(**{'a': 1})",
    "b'a' * 10",
    "f'{1:>{width}}'",
    "f'{1:>1000000000}'",
    "x: int = 1",
    "match x:\n    case 1:\n        pass",
]


def _attempt(source: str) -> str:
    try:
        check_script(source)
    except ExpressionRejected as rejected:
        assert rejected.reason and rejected.source == source
        return "rejected"
    try:
        execute(source, names={"x": {"a": 1}, "width": 5}, clock=CLOCK, timeout=0.3)
    except ExpressionFailed:
        return "failed"
    return "ran"


@pytest.mark.parametrize("payload", ESCAPES)
def test_known_escapes_are_refused_and_never_run(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    source = payload.replace(MARK, str(marker))
    assert _attempt(source) in ("rejected", "failed")
    assert not marker.exists()


@pytest.mark.parametrize("payload", [ESCAPES[0], ESCAPES[1], ESCAPES[9], ESCAPES[11], ESCAPES[25]])
def test_the_escape_payloads_are_real(payload: str, tmp_path: Path) -> None:
    """Control: unsandboxed, the same payloads do create the marker file."""
    assert MARK in payload
    marker = tmp_path / "pwned"
    exec(payload.replace(MARK, str(marker)), {})  # the point of this control
    assert marker.exists()


DANGEROUS = [
    p
    for p in ESCAPES
    if any(
        w in p
        for w in (
            "MARKER",
            "__",
            "open",
            "format",
            "gi_",
            "mro",
            "exec",
            "eval",
            "compile",
            "globals",
            "vars",
            "locals",
            "dir",
            "type",
            "breakpoint",
            "object",
            "super",
            "import",
        )
    )
]


class _LoopsOnly(ast.NodeVisitor):
    """Stands in for the modeler-facing checker: checks nothing, assumes loops."""

    loops = True

    def visit(self, node: ast.AST) -> None:
        return None


@pytest.fixture
def first_checks_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(expressions, "_Checker", _LoopsOnly)
    expressions._compile.cache_clear()
    yield
    monkeypatch.undo()
    expressions._compile.cache_clear()


@pytest.mark.parametrize("payload", DANGEROUS)
@pytest.mark.usefixtures("first_checks_off")
def test_escapes_stay_refused_without_the_first_checks(payload: str, tmp_path: Path) -> None:
    """Defence in depth: RestrictedPython and the run-time guards hold on their own."""
    marker = tmp_path / "pwned"
    assert _attempt(payload.replace(MARK, str(marker))) in ("rejected", "failed")
    assert not marker.exists()


def test_pathological_source_is_rejected_not_crashing() -> None:
    for source in ("1+" * 30_000 + "1", "-" * 30_000 + "1", "not " * 20_000 + "x", "x" * 200_000):
        with pytest.raises(ExpressionRejected):
            check_expression(source)


@pytest.mark.parametrize(
    "source",
    [
        "str.lower('A')",  # a helper's attributes
        "'abc'.items()",  # a method of another type
        "dict.keys({})",
        "today.get",
        "x.get.count",
        "len[0]",
        "date('2025-01-01').year.split(1)",
    ],
)
def test_attribute_guard_refuses_at_run_time(source: str) -> None:
    with pytest.raises(ExpressionFailed, match=r"not available|works on"):
        ev(source, x={})


def test_expression_check_rejects_statements_and_reports_the_line() -> None:
    with pytest.raises(ExpressionRejected) as caught:
        check_expression("(a and\n b.__class__)")
    assert caught.value.line == 2
    assert "'_'" in caught.value.reason
    with pytest.raises(ExpressionRejected, match="one expression"):
        check_expression("x = 1")


def test_rejection_reasons_tell_what_to_write_instead() -> None:
    with pytest.raises(ExpressionRejected, match="f-string"):
        check_expression("'{}'.format(x)")
    with pytest.raises(ExpressionRejected, match=r"x\['age'\]"):
        check_expression("x.age > 3")
    with pytest.raises(ExpressionRejected, match="helpers"):
        check_script("import math")


# ---------------------------------------------------------------- resource limits


@pytest.mark.parametrize(
    "source",
    [
        "while True: pass",
        "while 1:\n    x = 1",
        "n = 0\nwhile n >= 0:\n    n += 1",
        "x = [a for a in range(10**4) for b in range(10**4)]",
        "x = sum(1 for a in range(10**4) for b in range(10**4))",
        "for i in range(10000):\n    for j in range(10000):\n        pass",
        "x = any(a < 0 for a in range(10**4) for b in range(10**4) for c in range(10**4))",
    ],
)
def test_endless_or_huge_loops_are_stopped_by_the_time_limit(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionFailed, match="did not finish"):
        execute(source, names={}, clock=CLOCK, timeout=0.2)
    assert time.monotonic() - started < 2


def test_time_limit_works_in_a_worker_thread() -> None:
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            execute("while True:\n    pass", names={}, clock=CLOCK, timeout=0.2)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert time.monotonic() - started < 2
    assert len(outcome) == 1 and isinstance(outcome[0], ExpressionFailed)


def test_an_installed_tracer_is_left_alone() -> None:
    calls: list[str] = []

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        calls.append(event)
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with pytest.raises(ExpressionFailed):
            execute("while True: pass", names={}, clock=CLOCK, timeout=0.05)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)
    assert calls


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("10**10**10", "too large"),
        ("2**100000", "too large"),
        ("x = 9**9\ny = x ** x", "too large"),
        ("1 << 10**9", "too large"),
        ("x = 10**500\ny = x * x * x * x", "too large"),
        ("'a' * 10**10", "at most"),
        ("[0] * 10**10", "at most"),
        ("10**9 * (1, 2)", "at most"),
        ("list(range(10**12))", "range"),
        ("range(10**12)", "range"),
        ("s = 'a'\ns *= 10**10", "at most"),
        ("('a' * 1000).replace('a', 'a' * 1000).replace('a', 'a' * 1000)", "at most"),
        ("x = ['a' * 10**6 for i in range(100)]", "too much"),
        ("x = [f'{s}{s}' for i in range(10000)]\n", "too much"),
        ("sum([[0] * 1000] * 1000, [])", "numbers only"),
        ("round(10**300, -10**9)", "100 digits"),
        ("'%1000000000d' % 1", "widths"),
        ("'%*d' % (10**9, 1)", "widths"),
        ("a = [1]\nfor i in range(60):\n    a = [a, a]\nb = str(a)", "too large"),
        ("a = [1]\nfor i in range(60):\n    a = [a, a]\nb = f'{a}'", "too large"),
        ("a = [1]\nfor i in range(60):\n    a = [a, a]\nx['deep'] = a", "too large"),
    ],
)
def test_huge_allocations_are_refused_before_they_happen(source: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionFailed, match=message):
        execute(source, names={"s": "x" * 300_000, "x": {}}, clock=CLOCK)
    assert time.monotonic() - started < 2


def test_simple_evaluation_is_fast() -> None:
    names = {"age": 61, "fever": True, **{f"field_{i}": i for i in range(20)}}
    evaluate("age > 50 and fever", names=names, clock=CLOCK)  # compile once
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        evaluate("age > 50 and fever", names=names, clock=CLOCK)
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 30e-6, f"{per_call * 1e6:.1f} µs per evaluation"


# ---------------------------------------------------------------- no patient data in errors


@pytest.mark.parametrize(
    "source",
    [
        "int(name)",
        "float(name)",
        "codes[name]",
        "['a'].index(name)",
        "date(name)",
        "name + 1",
        "name.split(1)",
    ],
)
def test_failures_never_quote_patient_data(source: str) -> None:
    with pytest.raises(ExpressionFailed) as caught:
        ev(source, name="Jane-Doe-SECRET", codes={})
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in caught.value.reason
    assert caught.value.__cause__ is None


def test_errors_survive_pickling() -> None:
    with pytest.raises(ExpressionRejected) as caught:
        check_script("import os\n")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.source, copy.reason, copy.line) == ("import os\n", caught.value.reason, 1)


# ---------------------------------------------------------------- SpiffWorkflow adapter


def _task(data: dict[str, Any], engine: SandboxScriptEngine) -> Any:
    return SimpleNamespace(data=data, workflow=SimpleNamespace(script_engine=engine))


def test_script_engine_validate_matches_what_dmn_expects() -> None:
    engine = SandboxScriptEngine(CLOCK)
    engine.validate("5")
    engine.validate("'yes'")
    with pytest.raises(SyntaxError):
        engine.validate("> 5")
    engine.validate("v > 5")
    with pytest.raises(ExpressionRejected):
        engine.validate("().__class__")
    assert engine.clock is CLOCK


def test_script_engine_evaluates_dmn_style_expressions() -> None:
    engine = SandboxScriptEngine(clock=CLOCK, timeout=1.0)
    task = _task({"x": 5, "pain": "severe"}, engine)
    assert engine.evaluate(task, "(x) == (5)") is True
    dmn = DMNEngine(None)
    assert dmn.evaluate("x", "> 4", task) is True
    assert dmn.evaluate("x", "< 4", task) is False
    assert dmn.evaluate("pain", "'severe'", task) is True
    assert dmn.evaluate("x", "? in (4, 5, 6)", task) is True


def test_environment_keeps_external_names_out_of_task_data() -> None:
    env = SandboxEnvironment(CLOCK)
    context: dict[str, Any] = {"a": 1, "old": 0}
    env.execute("b = a + extra\ndel old", context, external_context={"extra": 10})
    assert context == {"a": 1, "b": 11}
    assert env.evaluate("a + extra", context, external_context={"extra": 2}) == 3


BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"
  targetNamespace="http://example.org/test">
  <bpmn:process id="triage" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="score" scriptFormat="python">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>PAYLOAD</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="gw" default="low">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>high</bpmn:outgoing><bpmn:outgoing>low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="urgent"><bpmn:incoming>high</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="routine"><bpmn:incoming>low</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score"/>
    <bpmn:sequenceFlow id="f2" sourceRef="score" targetRef="gw"/>
    <bpmn:sequenceFlow id="high" sourceRef="gw" targetRef="urgent">
      <bpmn:conditionExpression>score &gt;= 3 and red_flag != 'none'</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="low" sourceRef="gw" targetRef="routine"/>
  </bpmn:process>
</bpmn:definitions>
"""


def _workflow(script: str) -> BpmnWorkflow:
    parser = BpmnParser()
    parser.add_bpmn_str(BPMN.replace("PAYLOAD", script).encode())
    spec = parser.get_spec("triage")
    workflow = BpmnWorkflow(spec, script_engine=SandboxScriptEngine(CLOCK))
    workflow.get_tasks()[0].data.update({"age": 70, "red_flag": "cauda_equina"})
    return workflow


def test_a_real_workflow_runs_scripts_and_gateways_in_the_sandbox() -> None:
    workflow = _workflow("score = 2 + (1 if age &gt; 65 else 0)\nreview = add_days(today(), 7)")
    workflow.do_engine_steps()
    assert workflow.is_completed()
    data = workflow.last_task.data
    assert data["score"] == 3 and data["review"] == "2025-03-08"
    assert "add_days" not in data and "__builtins__" not in data
    ended = [t.task_spec.bpmn_id for t in workflow.get_tasks() if t.task_spec.bpmn_id]
    assert "urgent" in ended and "routine" not in ended


def test_a_hostile_script_in_a_workflow_is_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    workflow = _workflow(f"__import__('os').system('touch {marker}')")
    with pytest.raises(Exception, match="ExpressionRejected:Names starting with '_'"):
        workflow.do_engine_steps()
    assert not marker.exists()
