"""Sandbox for the code written into diagrams: gateway conditions, timers, DMN entries, scripts.

Diagrams may come from untrusted modelers, so their code is compiled with RestrictedPython plus
the extra checks below, runs with no modules in scope, sees only the helpers listed here, goes
through guarded attribute/item access and size caps, and is stopped after a wall-clock limit.

This module holds the sandbox's entry points (``evaluate``, ``execute``, ``check_expression``,
``check_script``), their errors, the compile cache, and the SpiffWorkflow adapter
(``SandboxEnvironment``, ``SandboxScriptEngine``). The rules live beside it:
``policy`` (what may be written, checked at compile time), ``guards`` (run-time
guards and limits) and ``builtins`` (the helpers listed below).

What diagram code can use
-------------------------
Task variables by name; ``true``, ``false``, ``null`` (the same as True, False, None).
Operators, comparisons, ``in``, ``x if c else y``, f-strings, list/dict/set literals and
comprehensions; scripts also have assignment, ``if``, ``for``, ``while``, ``del name``.

Built-ins: ``len abs min max round sum any all sorted int float str bool list dict set tuple
range enumerate zip``. ``range`` gives at most 10,000 numbers; ``sum`` adds numbers only.

Methods: text ``lower upper strip startswith endswith split replace``; dict ``get keys values
items``; list and tuple ``count index``; date ``year month day isoformat weekday``.
Read a dict entry with ``d['key']`` or ``d.get('key', default)``, never ``d.key``.

Dates take ISO 8601 text (``'2025-01-31'``, ``'2025-01-31T08:00:00+00:00'``) or date values;
a time without an offset counts as UTC. Results are ISO text, usable as a timer ``timeDate``:

- ``date(x)``: the date value of x (has ``.year .month .day .weekday()``).
- ``datetime(x)``: the timezone-aware date-time value of x (a bare date means 00:00 UTC).
- ``today()``: today's date in UTC, e.g. ``'2025-01-31'``.
- ``now()``: the current time with offset, e.g. ``'2025-01-31T08:00:00+00:00'``.
- ``add_days(d, n)``, ``add_weeks(d, n)``: d moved by n days/weeks (n may be negative);
  a date gives a date, a date-time gives a date-time.
- ``add_months(d, n)``: d moved by n calendar months, kept inside the month:
  ``add_months('2025-01-31', 1) == '2025-02-28'``.
- ``days_between(a, b)``: whole days from a to b (negative when b is earlier).

For a timer prefer a date-time (``add_days(now(), 3)``): SpiffWorkflow reads a bare date
``timeDate`` as midnight in the server's local time zone.

Not allowed: imports, names or attributes starting with ``_``, def/lambda/class, try/raise,
with, global/nonlocal, yield/async, ``str.format``, exec/eval/open/getattr/type and similar.
Limits, each checked before the work is done (see ``limits``):

- 0.5 s per evaluation by default, checked at every loop pass and comprehension step;
- whole numbers up to about 1,000 digits from ``+ - * // % ** <<`` and ``int()``;
- one text or list built by ``*`` or ``replace`` up to 1,000,000 items, and 5,000,000
  items built in total per evaluation;
- one comparison (``== != < <= > >= in``), hash (set items, dict keys, ``d[k]``,
  ``d.get(k)``), ``min max sum sorted set dict zip enumerate``, ``.count .index
  .startswith .endswith``: on values weighing up to 10,000,000 (items plus characters,
  shared parts counted each time they appear; a sort counts log2 of its length as well);
  a value written out in the code that weighs more is refused before anything runs;
- ``list tuple sorted set dict min max`` and comparisons take at most 10,000 items from a
  ``zip``, ``enumerate`` or ``.items()`` (a ``for`` loop over them has no such limit);
- turning a list or dict into text (``str()``, f-strings, ``%``): up to 100,000;
- ``.strip(chars)`` with at most 100 characters; format widths up to 1,000;
- a value an expression gives or a script stores: up to 2,000,000, nested at most 100 deep.

So no single operation (which the time limit cannot interrupt) does more than a few hundredths
of a second of work, and a run stops within about 0.5 s plus that.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import logging
import re
import textwrap
import time
import types
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, cast

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from SpiffWorkflow.bpmn.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    WorkflowTaskException,
)
from SpiffWorkflow.bpmn.script_engine import (  # type: ignore[import-untyped, unused-ignore]
    PythonScriptEngine,
)
from SpiffWorkflow.bpmn.script_engine.python_environment import (  # type: ignore[import-untyped, unused-ignore]
    BasePythonScriptEngineEnvironment,
)

from .builtins import BUILTINS
from .guards import GUARD_HOOKS
from .limits import BUDGET, CONTAINERS, GuardError, OutOfTime, bounded, current_run
from .policy import Checker as _Checker  # _compile looks it up here; tests swap it
from .policy import Policy, Reject

log = logging.getLogger(__name__)

_FILENAME = "<diagram code>"
_MAX_SOURCE = 100_000


class _SandboxError(Exception):
    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        several = line is not None and "\n" in source.strip()
        super().__init__(f"{reason} (line {line})" if several else reason)
        self.source, self.reason, self.line = source, reason, line

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.reason), {"line": self.line})


class ExpressionRejected(_SandboxError):
    """The code is not allowed; raised before anything runs."""


class ExpressionFailed(_SandboxError):
    """The code failed or was stopped while running; the message never shows data values."""


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> dt.datetime: ...


# Put into every run's globals after the task data, so data can never replace a guard.
_GUARDS: dict[str, Any] = {"__builtins__": BUILTINS, **GUARD_HOOKS}
_LAZY = (types.GeneratorType, zip, enumerate)

# ---------------------------------------------------------------- compiling


class _Compiled(NamedTuple):
    code: types.CodeType | None
    reason: str = ""
    line: int | None = None
    syntax: bool = False


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> _Compiled:
    if len(source) > _MAX_SOURCE:
        return _Compiled(None, f"The code is longer than {_MAX_SOURCE:,} characters.")
    if mode == "eval":  # keep line numbers; drop the indentation eval() would refuse
        lead = source[: len(source) - len(source.lstrip())].count("\n")
        text = "\n" * lead + source.strip()
    else:
        text = textwrap.dedent(source)
    deep = _Compiled(None, "The code is nested too deeply. Split it into steps.")
    try:
        tree = cast(ast.Expression | ast.Module, ast.parse(text, _FILENAME, mode))
    except (RecursionError, MemoryError):
        return deep
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        reason = f"This is not valid Python: {getattr(exc, 'msg', exc)}."
        if mode == "eval":
            reason += " A condition must be one expression, e.g. age > 50 and fever."
        return _Compiled(None, reason, line, True)
    try:
        checker = _Checker()
        checker.visit(tree)
        result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(
            tree, filename=_FILENAME, policy=Policy
        )
    except SyntaxError as exc:  # found by the compiler, e.g. 'break' outside a loop
        return _Compiled(None, f"This is not valid Python: {exc.msg}.", exc.lineno, True)
    except Reject as rejected:
        return _Compiled(None, rejected.reason, rejected.line)
    except (RecursionError, MemoryError):
        return deep
    if result.errors:
        match = re.match(r"Line (\d+): (.*)", result.errors[0])
        if match is None:
            return _Compiled(None, f"This is not allowed: {result.errors[0]}")
        return _Compiled(None, f"This is not allowed: {match[2]}", int(match[1]))
    return _Compiled(result.code)


def _code(source: str, mode: str) -> types.CodeType:
    compiled = _compile(source, mode)
    if compiled.code is None:
        log.debug("diagram code rejected (line %s): %s", compiled.line, compiled.reason)
        raise ExpressionRejected(source, compiled.reason, line=compiled.line)
    return compiled.code


# ---------------------------------------------------------------- running


def _prepare(names: Mapping[str, Any], clock: Clock, timeout: float) -> dict[str, Any]:
    scope = dict(names)
    scope.update(_GUARDS)
    current_run.clock, current_run.budget = clock, BUDGET
    # Every loop pass and every weighing of a value checks the deadline.
    current_run.deadline = time.monotonic() + timeout
    return scope


def _failure(source: str, exc: BaseException, timeout: float) -> ExpressionFailed:
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, OutOfTime):
        reason = (
            f"The code did not finish within {timeout:g} s and was stopped. "
            "Loops and comprehensions must finish quickly."
        )
        log.warning("diagram code stopped by its %g s time limit (line %s)", timeout, line)
    elif isinstance(exc, GuardError):
        reason = str(exc)
    elif isinstance(exc, NameError):
        reason = (
            f"Unknown name '{getattr(exc, 'name', None) or '?'}': it is neither a task "
            "variable nor a helper. Check the spelling or make sure an earlier step sets it."
        )
    elif isinstance(exc, KeyError):
        reason = "A key was not found in a dict. Use d.get('key', default) if it may be missing."
    elif isinstance(exc, (TypeError, ZeroDivisionError, IndexError)):  # messages name types only
        reason = f"{type(exc).__name__}: {exc}"
    else:  # ValueError and others can quote the data: withhold the message
        reason = f"{type(exc).__name__}: the operation failed (details withheld: may hold data)."
    return ExpressionFailed(source, reason, line=line)


def evaluate(source: str, *, names: Mapping[str, Any], clock: Clock, timeout: float = 0.5) -> Any:
    """Evaluate an expression with the task data `names` plus the helpers, in the sandbox."""
    code = _code(source, "eval")
    scope = _prepare(names, clock, timeout)
    try:
        result = eval(code, scope)
        heavy = type(result) in CONTAINERS and bounded(result, plain=False)
    except (Exception, OutOfTime) as exc:
        raise _failure(source, exc, timeout) from None
    if callable(result) or isinstance(result, _LAZY):
        raise ExpressionFailed(
            source,
            "The expression gives a function or a lazy sequence, not a "
            "value. Call it, e.g. today(), or wrap it in list(...).",
        )
    if heavy:
        raise ExpressionFailed(source, "The expression gives a value that is too large.")
    return result


def _unfit(names: Mapping[str, Any], scope: dict[str, Any]) -> dict[str, str]:
    """The variables a script set or may have filled, each with what makes it unfit ('')."""
    problems: dict[str, str] = {}
    for key, value in scope.items():
        fresh = key not in names or names[key] is not value
        if key.startswith("_") or not (fresh or type(value) in (dict, list)):
            continue
        problems[key] = bounded(value, plain=fresh)  # old lists/dicts may be filled: size only
    return problems


def execute(source: str, *, names: dict[str, Any], clock: Clock, timeout: float = 0.5) -> None:
    """Run a script in the sandbox; the variables it assigns or deletes are applied to `names`."""
    code = _code(source, "exec")
    scope = _prepare(names, clock, timeout)
    try:
        eval(code, scope)
        problems = _unfit(names, scope)
    except (Exception, OutOfTime) as exc:
        raise _failure(source, exc, timeout) from None
    updates: dict[str, Any] = {}
    for key, problem in problems.items():
        if problem:
            raise ExpressionFailed(
                source,
                f"'{key}' {problem}, which task data cannot hold. Store "
                "text, numbers, true/false, lists or dicts, e.g. d.isoformat().",
            )
        updates[key] = scope[key]
    for key in [k for k in names if k not in scope]:
        del names[key]
    names.update(updates)


# ---------------------------------------------------------------- SpiffWorkflow adapter


class SandboxEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """SpiffWorkflow script environment that runs every expression and script in the sandbox."""

    def __init__(self, clock: Clock, *, timeout: float = 0.5) -> None:
        super().__init__()
        self.clock = clock
        self.timeout = timeout

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Any = None
    ) -> Any:
        """Evaluate an expression over the task data (external_context adds extra names)."""
        names = {**external_context, **context} if external_context else context
        return evaluate(expression, names=names, clock=self.clock, timeout=self.timeout)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        """Run a script; what it assigns lands in the task data, external names do not."""
        external = dict(external_context or {})
        names = {**external, **context}
        execute(script, names=names, clock=self.clock, timeout=self.timeout)
        for key in [k for k in context if k not in names]:
            del context[key]
        for key, value in names.items():
            if key in context or key not in external:
                context[key] = value
        return True


class SandboxScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """SpiffWorkflow script engine over the sandbox; `validate` refuses forbidden code."""

    def __init__(self, clock: Clock, *, timeout: float = 0.5) -> None:
        super().__init__(environment=SandboxEnvironment(clock, timeout=timeout))
        self.clock = clock

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        """Evaluate an expression for a task; a sandbox failure says which expression and why
        (SpiffWorkflow's own message names the expression only)."""
        try:
            return super().evaluate(task, expression, external_context)
        except WorkflowTaskException as exc:
            failed = exc.__context__
            if not isinstance(failed, ExpressionFailed):
                raise
            shown = " ".join(expression.split())
            shown = shown if len(shown) <= 120 else shown[:117] + "..."
            raise WorkflowTaskException(
                # SpiffWorkflow ends the message with its own '. '
                f"The expression '{shown}' failed: {failed.reason.rstrip('.')}",
                task=task,
                exception=failed,
            ) from None

    def validate(self, expression: str) -> None:
        """Raise SyntaxError for broken syntax (DMN relies on it), ExpressionRejected if refused."""
        compiled = _compile(expression, "eval")
        if compiled.syntax:
            error = SyntaxError(compiled.reason)
            error.lineno = compiled.line
            raise error
        _code(expression, "eval")


def check_expression(source: str) -> None:
    """Validate an expression without running it; raise ExpressionRejected if it is not allowed."""
    _code(source, "eval")


def check_script(source: str) -> None:
    """Validate a script without running it; raise ExpressionRejected if it is not allowed."""
    _code(source, "exec")


def script_engine(clock: Clock) -> SandboxScriptEngine:
    """Return the sandboxed script engine bound to a clock."""
    return SandboxScriptEngine(clock=clock)
