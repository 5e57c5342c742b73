"""Sandbox for the code written into diagrams: gateway conditions, timers, DMN entries, scripts.

Diagrams may come from untrusted modelers, so their code is compiled with RestrictedPython plus
the extra checks below, runs with no modules in scope, sees only the helpers listed here, goes
through guarded attribute/item access and size caps, and is stopped after a wall-clock limit.

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
Limits: 0.5 s per evaluation by default; ``**``, ``*`` and ``<<`` on whole numbers up to about
1,000 digits; one text or list built by ``*`` or ``replace`` up to 1,000,000 items and
5,000,000 items built in total per evaluation.
"""

from __future__ import annotations

import ast
import calendar
import datetime as dt
import functools
import logging
import operator
import re
import textwrap
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple, Protocol, cast

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.script_engine import (  # type: ignore[import-untyped, unused-ignore]
    PythonScriptEngine,
)
from SpiffWorkflow.bpmn.script_engine.python_environment import (  # type: ignore[import-untyped, unused-ignore]
    BasePythonScriptEngineEnvironment,
)

log = logging.getLogger(__name__)

_FILENAME = "<diagram code>"
_MAX_SOURCE = 100_000
_MAX_ITEMS = 1_000_000
_BUDGET = 5_000_000
_MAX_RANGE = 10_000
_MAX_INT_BITS = 3_400  # about 1,000 decimal digits
_MAX_WIDTH = 1_000


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


class _GuardError(Exception):
    """A sandbox rule stopped the code at run time; the message is safe to show."""


class _Deadline(BaseException):
    """Raised by _tick_ at the time limit; not an Exception, so no helper can swallow it."""


_local = threading.local()

# ---------------------------------------------------------------- run-time guards


def _charge(items: int) -> None:
    left: int = _local.budget - items
    if left < 0:
        raise _GuardError(
            f"The code builds too much text or list data (over {_BUDGET:,} items in one run). "
            "Work with smaller values."
        )
    _local.budget = left


def _tick() -> bool:
    if time.monotonic() > _local.deadline:
        raise _Deadline
    return True


_SCALARS = (type(None), bool, int, float, str)
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _bounded(value: Any, *, plain: bool, limit: int = _MAX_ITEMS) -> str:
    """What makes value unfit ('' if nothing): too many parts once expanded, too deep, or (plain)
    not JSON-like. Shared parts count each time, as printing or storing would expand them."""
    stack, seen = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > limit or depth > 100:
            return "is too large or nested too deeply"
        if type(item) in _SCALARS:
            continue
        if type(item) is dict:
            if plain and any(type(k) is not str for k in item):
                return "has a dict key that is not text"
            stack.extend((v, depth + 1) for v in item.values())
        elif type(item) in (list, tuple) or (not plain and isinstance(item, _CONTAINERS)):
            stack.extend((v, depth + 1) for v in item)
        elif plain:
            return f"holds a {type(item).__name__} value"
    return ""


def _fmtval(value: Any) -> Any:
    if type(value) not in _SCALARS and _bounded(value, plain=False, limit=100_000):
        raise _GuardError("The value is too large to turn into text.")
    return value


def _str(*args: Any) -> str:
    result = str(*(_fmtval(a) for a in args))
    _charge(len(result))
    return result


def _too_big_int() -> _GuardError:
    return _GuardError("The number would be too large (over about 1,000 digits).")


def _check_size(size: int) -> None:
    if size > _MAX_ITEMS:
        raise _GuardError(f"Text or lists may hold at most {_MAX_ITEMS:,} items.")
    _charge(size)


_SEQ = (str, list, tuple)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQ) and isinstance(b, _SEQ):
        _charge(len(a) + len(b))
    return a + b


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > _MAX_INT_BITS:
            raise _too_big_int()
    elif isinstance(a, _SEQ) and isinstance(b, int):
        _check_size(len(a) * max(b, 0))
    elif isinstance(b, _SEQ) and isinstance(a, int):
        _check_size(len(b) * max(a, 0))
    return a * b


def _pow(a: Any, b: Any) -> Any:
    ints = isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0
    if ints and (b > _MAX_INT_BITS or a.bit_length() * b > _MAX_INT_BITS):
        raise _too_big_int()
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() + b > _MAX_INT_BITS:
        raise _too_big_int()
    return a << b


_PERCENT_SPEC = re.compile(r"%(?:%|(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?)")


def _mod(a: Any, b: Any) -> Any:
    if not isinstance(a, str):
        return a % b
    for match in _PERCENT_SPEC.finditer(a):
        if any(g and (g == "*" or int(g) > _MAX_WIDTH) for g in match.groups()):
            raise _GuardError(f"'%' formatting allows no '*' and widths up to {_MAX_WIDTH}.")
    result = a % _fmtval(b)
    _charge(len(result))
    return result


def _fstr(text: str) -> str:
    _charge(len(text))
    return text


def _charged(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        _charge(len(result))
        return result

    return call


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    hits = text.count(old) if count < 0 else min(count, text.count(old))
    _check_size(len(text) + hits * (len(new) - len(old)))
    return text.replace(old, new, count)


_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"lower", "upper", "strip", "startswith", "endswith", "split", "replace"}),
    dict: frozenset({"get", "keys", "values", "items"}),
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    dt.date: frozenset({"year", "month", "day", "isoformat", "weekday"}),
}
_METHODS[dt.datetime] = _METHODS[dt.date]
_ALL_ATTRS = frozenset().union(*_METHODS.values())


def _getattr(obj: Any, name: str) -> Any:
    allowed = _METHODS.get(type(obj))
    if allowed is None or name not in allowed:
        raise _GuardError(f"'.{name}' is not available on a {type(obj).__name__} value.")
    if type(obj) is str:
        if name == "replace":
            return functools.partial(_replace, obj)
        if name in ("lower", "upper", "strip", "split"):
            return _charged(getattr(obj, name))
    return getattr(obj, name)


def _getitem(obj: Any, key: Any) -> Any:
    if not isinstance(obj, (dict, list, tuple, str, range)):
        raise _GuardError(f"[...] works on dicts, lists and text, not on a {type(obj).__name__}.")
    result = obj[key]
    if isinstance(key, slice):
        _charge(len(result))
    return result


def _write(obj: Any) -> Any:
    if type(obj) in (dict, list):
        return obj
    raise _GuardError("Only dict entries and list items can be assigned, e.g. d['key'] = value.")


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": _add,
    "-=": operator.sub,
    "*=": _mul,
    "/=": operator.truediv,
    "//=": operator.floordiv,
    "%=": _mod,
    "**=": _pow,
    "<<=": _lshift,
    ">>=": operator.rshift,
    "&=": operator.and_,
    "|=": operator.or_,
    "^=": operator.xor,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    if op not in _INPLACE:
        raise _GuardError(f"The operator '{op}' is not supported.")
    return _INPLACE[op](x, y)


def _range(*args: int) -> range:
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = _MAX_RANGE + 1
    if size > _MAX_RANGE:
        raise _GuardError(f"range() may give at most {_MAX_RANGE:,} numbers.")
    return result


def _round(number: Any, ndigits: int | None = None) -> Any:
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > 100:
        raise _GuardError("round() allows at most 100 digits.")
    return round(number, ndigits)


def _sum(values: Any, start: Any = 0) -> Any:
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise _GuardError("sum() adds numbers only; join text with + or an f-string.")
    return sum(values, start)


# ---------------------------------------------------------------- date helpers


def _parse(value: object, helper: str) -> dt.date:
    """Turn ISO text or a date value into a date (date-only input) or an aware datetime."""
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _GuardError(
                f"{helper}() needs an ISO 8601 date such as '2025-01-31' or "
                "'2025-01-31T08:00:00+00:00'."
            ) from None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return value
    raise _GuardError(f"{helper}() needs a date or ISO 8601 text, not a {type(value).__name__}.")


def _date(value: object) -> dt.date:
    parsed = _parse(value, "date")
    return parsed.date() if isinstance(parsed, dt.datetime) else parsed


def _datetime(value: object) -> dt.datetime:
    parsed = _parse(value, "datetime")
    if isinstance(parsed, dt.datetime):
        return parsed
    return dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC)


def _clock_now() -> dt.datetime:
    now: dt.datetime = _local.clock.now()
    return now.astimezone(dt.UTC) if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _today() -> str:
    return _clock_now().date().isoformat()


def _now() -> str:
    return _clock_now().isoformat()


def _shift(value: object, n: object, helper: str, *, days: int = 0, months: int = 0) -> str:
    if isinstance(n, bool) or not isinstance(n, int):
        raise _GuardError(f"{helper}(d, n) needs a whole number n.")
    moved = _parse(value, helper)
    try:
        if months:
            year, month = divmod(moved.year * 12 + moved.month - 1 + months * n, 12)
            day = min(moved.day, calendar.monthrange(year, month + 1)[1])
            moved = moved.replace(year=year, month=month + 1, day=day)
        moved = moved + dt.timedelta(days=days * n)
    except (ValueError, OverflowError):
        raise _GuardError(f"{helper}() gives a date outside the years 1 to 9999.") from None
    return moved.isoformat()


def _add_days(d: object, n: object) -> str:
    return _shift(d, n, "add_days", days=1)


def _add_weeks(d: object, n: object) -> str:
    return _shift(d, n, "add_weeks", days=7)


def _add_months(d: object, n: object) -> str:
    return _shift(d, n, "add_months", months=1)


def _days_between(a: object, b: object) -> int:
    first, second = _parse(a, "days_between"), _parse(b, "days_between")
    if isinstance(first, dt.datetime) or isinstance(second, dt.datetime):
        return int((_datetime(second) - _datetime(first)) / dt.timedelta(days=1))
    return (second - first).days


_HELPERS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "sum": _sum,
    "any": any,
    "all": all,
    "sorted": _charged(sorted),
    "int": int,
    "float": float,
    "str": _str,
    "bool": bool,
    "list": _charged(list),
    "dict": _charged(dict),
    "set": _charged(set),
    "tuple": _charged(tuple),
    "range": _range,
    "enumerate": enumerate,
    "zip": zip,
    "date": _date,
    "datetime": _datetime,
    "today": _today,
    "now": _now,
    "add_days": _add_days,
    "add_weeks": _add_weeks,
    "add_months": _add_months,
    "days_between": _days_between,
}
# Put into every run's globals after the task data, so data can never replace a guard.
_GUARDS: dict[str, Any] = {
    "__builtins__": _HELPERS,
    "_getattr_": _getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_write_": _write,
    "_inplacevar_": _inplacevar,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_add_": _add,
    "_mul_": _mul,
    "_pow_": _pow,
    "_lshift_": _lshift,
    "_mod_": _mod,
    "_fstr_": _fstr,
    "_fmtval_": _fmtval,
    "_tick_": _tick,
}
_LAZY = (types.GeneratorType, zip, enumerate)

# ---------------------------------------------------------------- compile-time checks

_FORBIDDEN_NAMES = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "type",
        "breakpoint",
        "input",
        "help",
        "memoryview",
        "object",
        "super",
        "classmethod",
        "staticmethod",
        "property",
        "print",
        "printed",
        "exit",
        "quit",
    }
)
_IMPORT = "Imports are not allowed: diagram code has no modules. Use the built-in helpers instead."
_DEFS = "Defining functions, lambdas or classes is not allowed. Write the logic inline."
_ERRORS = "'try', 'raise' and 'with' are not allowed. Check conditions with 'if' instead."
_ASYNC = "'yield', 'await' and async code are not allowed. Use a list or a comprehension instead."
_NODE_RULES: dict[type[ast.AST], str] = {
    ast.Import: _IMPORT,
    ast.ImportFrom: _IMPORT,
    ast.FunctionDef: _DEFS,
    ast.AsyncFunctionDef: _DEFS,
    ast.Lambda: _DEFS,
    ast.ClassDef: _DEFS,
    ast.Try: _ERRORS,
    ast.TryStar: _ERRORS,
    ast.Raise: _ERRORS,
    ast.With: _ERRORS,
    ast.Yield: _ASYNC,
    ast.YieldFrom: _ASYNC,
    ast.Await: _ASYNC,
    ast.AsyncFor: _ASYNC,
    ast.AsyncWith: _ASYNC,
    ast.Global: "'global' and 'nonlocal' are not allowed. Assign to plain variable names.",
    ast.Nonlocal: "'global' and 'nonlocal' are not allowed. Assign to plain variable names.",
    ast.Starred: "Star-unpacking (*x) is not allowed. Pass the values one by one.",
    ast.AnnAssign: "Type annotations are not allowed. Write 'x = value'.",
    ast.Match: "'match' is not allowed. Use if/elif/else.",
}
_LOOPS = (ast.For, ast.While, ast.comprehension)


class _Reject(Exception):
    def __init__(self, node: ast.AST, reason: str) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, getattr(node, "lineno", None)


class _Checker(ast.NodeVisitor):
    """Refuses what diagram code may not do, with a reason a modeler can act on."""

    def __init__(self) -> None:
        self.loops = False

    def generic_visit(self, node: ast.AST) -> None:
        rule = _NODE_RULES.get(type(node))
        if rule:
            raise _Reject(node, rule)
        self.loops = self.loops or isinstance(node, _LOOPS)
        super().generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            raise _Reject(
                node,
                f"Names starting with '_' (like '{name}') are not allowed. "
                "Rename it without the leading underscore.",
            )
        if name in _FORBIDDEN_NAMES:
            raise _Reject(
                node,
                f"'{name}' is not available in diagram code. Use the documented "
                f"helpers; if '{name}' is a task variable, give it another name.",
            )
        if not isinstance(node.ctx, ast.Load) and name in _HELPERS:
            raise _Reject(
                node,
                f"'{name}' is a built-in helper and cannot be assigned. "
                "Choose another variable name.",
            )

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)  # report the innermost problem first
        attr = node.attr
        if not isinstance(node.ctx, ast.Load):
            raise _Reject(node, "Attributes cannot be set or deleted. Use d['key'] = value.")
        if attr.startswith("_"):
            raise _Reject(
                node,
                f"Attributes starting with '_' (like '{attr}') are not allowed. "
                "Use the documented helpers instead.",
            )
        if attr in ("format", "format_map"):
            raise _Reject(
                node,
                f"'.{attr}()' is not allowed because it can reach object "
                "internals. Use an f-string such as f'{dose} mg' or '+' instead.",
            )
        if attr not in _ALL_ATTRS:
            raise _Reject(
                node,
                f"'.{attr}' is not available. Allowed: "
                f"{', '.join(sorted(_ALL_ATTRS))}. For a dict entry write x['{attr}'].",
            )

    def visit_Delete(self, node: ast.Delete) -> None:
        if not all(isinstance(t, ast.Name) for t in node.targets):
            raise _Reject(
                node,
                "Only plain variables can be deleted ('del x'). To drop a key, "
                "build a new dict: {k: v for k, v in d.items() if k != 'key'}.",
            )
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise _Reject(
                node,
                "'+=' and the like work only on plain variables. "
                "Write d['k'] = d['k'] + 1 instead.",
            )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if any(k.arg is None for k in node.keywords):
            raise _Reject(node, "Star-unpacking (**x) is not allowed. Pass the values one by one.")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, bytes):
            raise _Reject(node, "Byte strings (b'...') are not supported. Use normal text.")

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr):
            parts = [p.value for p in spec.values if isinstance(p, ast.Constant)]
            numbers = re.findall(r"\d+", "".join(str(p) for p in parts))
            if len(parts) != len(spec.values) or any(int(n) > _MAX_WIDTH for n in numbers):
                raise _Reject(
                    node,
                    "f-string formats must be fixed, with widths up to "
                    f"{_MAX_WIDTH}, e.g. f'{{x:.1f}}'.",
                )
        self.visit(node.value)


class _Policy(RestrictingNodeTransformer):  # type: ignore[misc, unused-ignore]
    """RestrictedPython's guards, plus size guards on + * ** << % and f-strings."""

    _GUARDED: ClassVar[dict[type[ast.operator], str]] = {
        ast.Add: "_add_",
        ast.Mult: "_mul_",
        ast.Pow: "_pow_",
        ast.LShift: "_lshift_",
        ast.Mod: "_mod_",
    }

    def _call(self, guard: str, args: list[ast.expr], node: ast.expr) -> ast.Call:
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=args, keywords=[])
        copy_locations(call, node)
        return call

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        guard = self._GUARDED.get(type(node.op))
        return node if guard is None else self._call(guard, [node.left, node.right], node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return self._call("_fstr_", [self.node_contents_visit(node)], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        node.value = self._call("_fmtval_", [self.visit(node.value)], node.value)
        if node.format_spec is not None:  # check its parts, but keep it a JoinedStr
            node.format_spec = self.node_contents_visit(node.format_spec)
        return node

    # Every loop pass and comprehension step calls _tick_(), which enforces the time limit.
    def _tick(self, node: ast.While | ast.For) -> ast.Expr:
        where = node.test if isinstance(node, ast.While) else node.iter
        stmt = ast.Expr(self._call("_tick_", [], where))
        copy_locations(stmt, node)
        return stmt

    def visit_While(self, node: ast.While) -> ast.AST:
        node = self.node_contents_visit(node)
        node.body.insert(0, self._tick(node))
        return node

    def visit_For(self, node: ast.For) -> ast.AST:
        new = super().visit_For(node)
        assert isinstance(new, ast.For)
        new.body.insert(0, self._tick(new))
        return new

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        new = super().visit_comprehension(node)
        assert isinstance(new, ast.comprehension)
        new.ifs.insert(0, self._call("_tick_", [], new.iter))
        return new


class _Compiled(NamedTuple):
    code: types.CodeType | None
    loops: bool
    reason: str = ""
    line: int | None = None
    syntax: bool = False


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> _Compiled:
    if len(source) > _MAX_SOURCE:
        return _Compiled(None, False, f"The code is longer than {_MAX_SOURCE:,} characters.")
    if mode == "eval":  # keep line numbers; drop the indentation eval() would refuse
        lead = source[: len(source) - len(source.lstrip())].count("\n")
        text = "\n" * lead + source.strip()
    else:
        text = textwrap.dedent(source)
    deep = _Compiled(None, False, "The code is nested too deeply. Split it into steps.")
    try:
        tree = cast(ast.Expression | ast.Module, ast.parse(text, _FILENAME, mode))
    except (RecursionError, MemoryError):
        return deep
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        reason = f"This is not valid Python: {getattr(exc, 'msg', exc)}."
        if mode == "eval":
            reason += " A condition must be one expression, e.g. age > 50 and fever."
        return _Compiled(None, False, reason, line, True)
    try:
        checker = _Checker()
        checker.visit(tree)
        result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(
            tree, filename=_FILENAME, policy=_Policy
        )
    except SyntaxError as exc:  # found by the compiler, e.g. 'break' outside a loop
        return _Compiled(None, False, f"This is not valid Python: {exc.msg}.", exc.lineno, True)
    except _Reject as rejected:
        return _Compiled(None, False, rejected.reason, rejected.line)
    except (RecursionError, MemoryError):
        return deep
    if result.errors:
        match = re.match(r"Line (\d+): (.*)", result.errors[0])
        if match is None:
            return _Compiled(None, False, f"This is not allowed: {result.errors[0]}")
        return _Compiled(None, False, f"This is not allowed: {match[2]}", int(match[1]))
    return _Compiled(result.code, checker.loops)


def _code(source: str, mode: str) -> tuple[types.CodeType, bool]:
    compiled = _compile(source, mode)
    if compiled.code is None:
        log.debug("diagram code rejected (line %s): %s", compiled.line, compiled.reason)
        raise ExpressionRejected(source, compiled.reason, line=compiled.line)
    return compiled.code, compiled.loops


# ---------------------------------------------------------------- running


def _prepare(names: Mapping[str, Any], clock: Clock, timeout: float, loops: bool) -> dict[str, Any]:
    scope = dict(names)
    scope.update(_GUARDS)
    _local.clock, _local.budget = clock, _BUDGET
    if loops:
        _local.deadline = time.monotonic() + timeout
    return scope


def _failure(source: str, exc: BaseException, timeout: float) -> ExpressionFailed:
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(exc, _Deadline):
        reason = (
            f"The code did not finish within {timeout:g} s and was stopped. "
            "Loops and comprehensions must finish quickly."
        )
        log.warning("diagram code stopped by its %g s time limit (line %s)", timeout, line)
    elif isinstance(exc, _GuardError):
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
    code, loops = _code(source, "eval")
    scope = _prepare(names, clock, timeout, loops)
    try:
        result = eval(code, scope)
    except (Exception, _Deadline) as exc:
        raise _failure(source, exc, timeout) from None
    if callable(result) or isinstance(result, _LAZY):
        raise ExpressionFailed(
            source,
            "The expression gives a function or a lazy sequence, not a "
            "value. Call it, e.g. today(), or wrap it in list(...).",
        )
    if type(result) in _CONTAINERS and _bounded(result, plain=False):
        raise ExpressionFailed(source, "The expression gives a value that is too large.")
    return result


def execute(source: str, *, names: dict[str, Any], clock: Clock, timeout: float = 0.5) -> None:
    """Run a script in the sandbox; the variables it assigns or deletes are applied to `names`."""
    code, loops = _code(source, "exec")
    scope = _prepare(names, clock, timeout, loops)
    try:
        eval(code, scope)
    except (Exception, _Deadline) as exc:
        raise _failure(source, exc, timeout) from None
    updates: dict[str, Any] = {}
    for key, value in scope.items():
        fresh = key not in names or names[key] is not value
        if key.startswith("_") or not (fresh or type(value) in (dict, list)):
            continue
        problem = _bounded(value, plain=fresh)  # old lists/dicts may have been filled: size only
        if problem:
            raise ExpressionFailed(
                source,
                f"'{key}' {problem}, which task data cannot hold. Store "
                "text, numbers, true/false, lists or dicts, e.g. d.isoformat().",
            )
        updates[key] = value
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
