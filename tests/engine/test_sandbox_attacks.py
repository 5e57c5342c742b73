"""Diagram code that would hold a process with one C-level operation is stopped within 1 s.

The time limit is checked between Python-level steps only, so each attack here is a single
comparison, hash, sort, conversion to text or division over a value that is small in memory
but huge once its shared parts are expanded (or a huge whole number). Each runs in a forked
child process: without the sandbox's weight limits it would run for minutes or hours, and the
child is killed after a few seconds so the test fails instead of hanging the run.

The same attacks reach a live API server in ``tests/api/test_sandbox_attacks.py``.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.sandbox import ExpressionFailed, ExpressionRejected, check_expression, evaluate
from engine.sandbox import execute as run_script
from engine.validation import validate_documents
from tests.conftest import Database
from tests.data import GOOD_PLAN, NO_RED_FLAGS

CLOCK = engine.SimulatedClock(dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))
BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
BIG = "[[0] * n] * n"  # one list of a million zeros, a million times (n from the task data)
DEEP = "((0,) * n,) * n"
HOSTILE = "[[0] * 1000000] * (age * 20000) == [[0] * 1000000] * (age * 20000)"
"""Looks harmless to a static check (the count depends on task data); runs 10**12 steps."""

EXPRESSIONS = [
    f'red_flag != "none" or {HOSTILE}',  # the condition from the issue, in a form that deploys
    f"{BIG} != {BIG}",
    f"{BIG} < {BIG}",
    f"[1] in {BIG}",
    f"{DEEP} == {DEEP}",
    f"0 < 1 < {BIG} == {BIG}",
    f"(y := {BIG}) == y[:]",
    f"sorted({BIG})",
    f"max({BIG})",
    f"min({BIG})",
    f"max(x for x in [{BIG}, {BIG}])",
    f"sorted([{BIG}, {BIG}])",
    f"sorted(zip([{BIG}, {BIG}], range(2)))",
    f"([1], 0) in zip({BIG}, range(10000))",
    f"(5, [1]) in enumerate({BIG})",
    f"({BIG}).count([1])",
    f"({BIG}).index([1])",
    "set([(0,) * n] * n)",
    f"{{{DEEP}}}",
    f"{{{DEEP}: 1}}",
    f"{{x for x in [{DEEP}]}}",
    f"dict([({DEEP}, 1)])",
    f"d.get({DEEP})",
    f"d[{DEEP}]",
    f"{DEEP} in {{1}}",
    "sum([x] * 1000000)",
    "str(['a' * 1000000] * 1000)",
    "f\"{['a' * 1000000] * 1000}\"",
    "'%s' % (['a' * 1000000] * 1000,)",
    "('a' * 1000000) in ['a' * 999999 + 'b'] * 1000000",
    "['a' * 1000000] * 1000000 == ['a' * 1000000] * 1000000",
    "('a' * 1000000).startswith(('a' * 500000 + 'b' + 'a' * 499999,) * 1000000)",
    "('a' * 1000000).strip('b' * 999999 + 'a')",
    "int('f' * 1000000, 16) // int('f' * 500000, 16)",
    "big // (big >> 2000000)",
    "big % (big >> 2000000)",
    "biglist == biglist2",
    # C code keeping a new tuple per item: a million of them keep the garbage collector busy
    "len(list(enumerate([[0] * 10] * n)))",
    "len(tuple(zip([[0]] * n)))",
    "len(sorted(zip([0] * n, [[0]] * n)))",
    "sorted(biglist2)",
]
REASONS = ("too large", "did not finish", "at most")
SCRIPTS = [
    "a = [0]\nb = [0]\nfor i in range(80):\n    a = [a, a]\n    b = [b, b]\nc = a == b",
    "a = [0]\nb = [a] * n\na[0] = [0] * n\nc = b == [[[0] * n]] * n",
    f"a = [0]\na[0:1] = {BIG}\nc = a == {BIG}",
    "x = int('f' * 1000000, 16)\ny = x // (x >> 2000000)",
    f"d = {{}}\nd[{DEEP}] = 1",
    # filled after the method or the zip was made: weighed when used, not when made
    "a = [0] * n\nf = a.count\na[0:n] = [[0] * n] * n\nc = f([0] * (n - 1) + [1])",
    "a = [0] * n\nz = zip(a)\na[0:n] = [[0] * n] * n\nc = ([0] * (n - 1) + [1],) in z",
    "a = [0]\nb = [0]\nfor i in range(9000):\n    a = [a]\n    b = [b]\nc = a == b",
]


def _task_data() -> dict[str, Any]:
    """Synthetic task data, with huge values of the kinds a client or a script could store."""
    return {
        "red_flag": "none",
        "age": 44,
        "n": 1_000_000,
        "x": 3**2000,
        "d": {"a": 1},
        "big": int("f" * 1_000_000, 16),  # 4,000,000 bits
        "biglist": [[0] * 100_000] * 20_000,  # as a script could leave it, before it is checked
        "biglist2": [[0] * 100_000 for _ in range(2)] * 10_000,
    }


def _attack(run: Callable[..., Any], source: str, names: dict[str, Any], pipe: Any) -> None:
    # The child shares the test worker's memory copy-on-write; the collector's first passes
    # over those objects would copy them all. Keep them out of its sight, as a forking
    # server does (gc.freeze), so the time measured is the attack's.
    gc.freeze()
    before = repr(sorted((k, type(v).__name__) for k, v in names.items()))
    started = time.monotonic()
    try:
        run(source, names=names, clock=CLOCK)
        outcome = ("finished", "")
    except ExpressionFailed as exc:
        outcome = ("failed", exc.reason)
    elapsed = time.monotonic() - started
    after = repr(sorted((k, type(v).__name__) for k, v in names.items()))
    pipe.send((*outcome, elapsed, before == after))


def _in_child(run: Callable[..., Any], source: str) -> tuple[str, str, float, bool]:
    """Run the attack in a forked child; kill it if it is still running after 10 s."""
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=_attack, args=(run, source, _task_data(), theirs))
    child.start()
    child.join(10)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"still running after 10 s: {source!r}")
    assert mine.poll(), f"the child died (exit code {child.exitcode}): {source!r}"
    result: tuple[str, str, float, bool] = mine.recv()
    return result


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_one_heavy_operation_in_an_expression_stops_within_a_second(source: str) -> None:
    how, reason, elapsed, _ = _in_child(evaluate, source)
    assert how == "failed", source
    assert elapsed < 1, f"{elapsed:.2f} s: {source}"
    assert any(words in reason for words in REASONS), reason


@pytest.mark.parametrize("source", SCRIPTS)
def test_one_heavy_operation_in_a_script_stops_and_changes_nothing(source: str) -> None:
    how, reason, elapsed, unchanged = _in_child(run_script, source)
    assert how == "failed", source
    assert elapsed < 1, f"{elapsed:.2f} s: {source}"
    assert any(words in reason for words in REASONS), reason
    assert unchanged  # a failed script adds or replaces no task data


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("[[0] * 1000] * 1000 == [[0] * 1000] * 1000", True),
        ("sorted(list(range(10000)) * 10)[-1]", 9999),
        ("len(set((i, 'x' * 100) for i in range(10000)))", 10000),
        ("max([[i] * 100 for i in range(1000)])[0]", 999),
        ("('a' * 1000000).startswith('a' * 1000)", True),
        ("d.get((1, 2), 'none')", "none"),
        ("len(str([['abc'] * 100] * 100))", 70200),
        ("2 ** 1000 // 3 ** 100 > 0", True),
        ("red_flag in ('cauda_equina', 'progressive_deficit')", False),
    ],
)
def test_ordinary_work_on_large_values_still_runs(source: str, expected: Any) -> None:
    names = _task_data()
    started = time.monotonic()
    assert evaluate(source, names=names, clock=CLOCK) == expected
    assert time.monotonic() - started < 1


LITERAL = "[[0] * 1000000] * 1000000"


def test_a_literal_too_large_to_work_on_is_refused_before_running() -> None:
    with pytest.raises(ExpressionRejected, match="at most 10,000,000"):
        check_expression(f'red_flag != "none" or {LITERAL} == {LITERAL}')


def test_validation_reports_the_literal_attack_with_its_gateway() -> None:
    attack = f"red_flag != &quot;none&quot; or {LITERAL} == {LITERAL}"
    reports = validate_documents(_files(gateway=attack))
    problems = [p for report in reports for p in report.problems]
    assert [p.element_id for p in problems] == ["flow_red_flag"], problems
    assert "10,000,000" in str(problems[0])


# ---------------------------------------------------------------- in a deployed pathway


def _files(*, gateway: str = "", timer: str = "", variance: str = "") -> list[tuple[str, bytes]]:
    """The bundled pathway with attacks written into its gateway, timer or variance rule."""
    bpmn = (BPMN_DIR / "lumbar_radiculopathy.bpmn").read_text()
    for attack, old, new in (
        (gateway, 'red_flag != "none"</bpmn:c', f"{gateway}</bpmn:c"),
        (timer, "P6W</bpmn:timeDuration>", f"{timer}</bpmn:timeDuration>"),
        (variance, 'value="bed_rest == True"', f'value="{variance}"'),
    ):
        assert old in bpmn
        if attack:
            bpmn = bpmn.replace(old, new, 1)
    return [
        ("lumbar_radiculopathy.bpmn", bpmn.encode()),
        ("red_flags.dmn", (BPMN_DIR / "red_flags.dmn").read_bytes()),
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "element",
    [
        {"timer": f"&quot;P6W&quot; if {HOSTILE} else &quot;P6W&quot;"},
        {"variance": f"bed_rest == True or {HOSTILE}"},
    ],
    ids=["timer", "variance"],
)
def test_an_attack_in_a_timer_or_variance_rule_fails_the_step_and_keeps_the_case(
    db: Database, element: dict[str, str]
) -> None:
    intake = {"side": "left", "symptom_onset": "2025-12-29", "leg_pain_nrs": 6}
    intake |= {"disabling_pain": False, "age": 44}
    with db.sessions.begin() as session:
        assert engine.deploy(session, files=_files(**element), now=CLOCK.now()).version == 1
        case = engine.start_case(
            session, pathway="lumbar_radiculopathy", clock=CLOCK, actor="ana", patient_ref="P-1"
        )
    for step, data in (("intake", intake), ("red_flag_screen", NO_RED_FLAGS)):
        with db.sessions.begin() as session:
            case = engine.complete_task(
                session, case_id=case.id, step=step, data=data, clock=CLOCK, actor="ana"
            )
    started = time.monotonic()
    with db.sessions.begin() as session, pytest.raises(engine.ExecutionFailed) as failed:
        engine.complete_task(
            session,
            case_id=case.id,
            step="conservative_plan",
            data=GOOD_PLAN,
            clock=CLOCK,
            actor="b",
        )
    assert time.monotonic() - started < 2
    assert "too large" in str(failed.value)
    with db.sessions() as session:
        after = engine.get_case(session, case.id, clock=CLOCK)
    assert after.version == case.version
    assert [t.id for t in after.ready_tasks] == ["conservative_plan"]
