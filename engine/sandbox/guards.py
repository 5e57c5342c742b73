"""Run-time guards of the diagram-code sandbox: what compiled diagram code calls as it runs.

RestrictedPython (and the policy in ``policy``) rewrites attribute and item access,
assignment targets, unpacking, ``+ * ** << %``, f-strings and every loop pass into calls of the
hooks in ``GUARD_HOOKS``. These allow only the listed methods, cap the size of numbers, text
and lists, charge what a run builds against its budget, and stop a run at its time limit.
The state of the run under way (clock, budget, deadline) is kept per thread in ``current_run``.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

_MAX_ITEMS = 1_000_000
BUDGET = 5_000_000
_MAX_INT_BITS = 3_400  # about 1,000 decimal digits
MAX_WIDTH = 1_000


class GuardError(Exception):
    """A sandbox rule stopped the code at run time; the message is safe to show."""


class OutOfTime(BaseException):
    """Raised by _tick_ at the time limit; not an Exception, so no helper can swallow it."""


current_run = threading.local()


def charge(items: int) -> None:
    """Count items the run builds against its budget; stop the run when it is spent."""
    left: int = current_run.budget - items
    if left < 0:
        raise GuardError(
            f"The code builds too much text or list data (over {BUDGET:,} items in one run). "
            "Work with smaller values."
        )
    current_run.budget = left


def _tick() -> bool:
    if time.monotonic() > current_run.deadline:
        raise OutOfTime
    return True


_SCALARS = (type(None), bool, int, float, str)
CONTAINERS = (list, tuple, dict, set, frozenset)


def bounded(value: Any, *, plain: bool, limit: int = _MAX_ITEMS) -> str:
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
        elif type(item) in (list, tuple) or (not plain and isinstance(item, CONTAINERS)):
            stack.extend((v, depth + 1) for v in item)
        elif plain:
            return f"holds a {type(item).__name__} value"
    return ""


def fmtval(value: Any) -> Any:
    """Pass a value on to be turned into text, unless it is too large to."""
    if type(value) not in _SCALARS and bounded(value, plain=False, limit=100_000):
        raise GuardError("The value is too large to turn into text.")
    return value


def _too_big_int() -> GuardError:
    return GuardError("The number would be too large (over about 1,000 digits).")


def _check_size(size: int) -> None:
    if size > _MAX_ITEMS:
        raise GuardError(f"Text or lists may hold at most {_MAX_ITEMS:,} items.")
    charge(size)


_SEQ = (str, list, tuple)


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQ) and isinstance(b, _SEQ):
        charge(len(a) + len(b))
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
        if any(g and (g == "*" or int(g) > MAX_WIDTH) for g in match.groups()):
            raise GuardError(f"'%' formatting allows no '*' and widths up to {MAX_WIDTH}.")
    result = a % fmtval(b)
    charge(len(result))
    return result


def _fstr(text: str) -> str:
    charge(len(text))
    return text


def charged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap fn so that the size of what it returns is charged to the run's budget."""

    def call(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        charge(len(result))
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
METHOD_NAMES = frozenset().union(*_METHODS.values())


def _getattr(obj: Any, name: str) -> Any:
    allowed = _METHODS.get(type(obj))
    if allowed is None or name not in allowed:
        raise GuardError(f"'.{name}' is not available on a {type(obj).__name__} value.")
    if type(obj) is str:
        if name == "replace":
            return functools.partial(_replace, obj)
        if name in ("lower", "upper", "strip", "split"):
            return charged(getattr(obj, name))
    return getattr(obj, name)


def _getitem(obj: Any, key: Any) -> Any:
    if not isinstance(obj, (dict, list, tuple, str, range)):
        raise GuardError(f"[...] works on dicts, lists and text, not on a {type(obj).__name__}.")
    result = obj[key]
    if isinstance(key, slice):
        charge(len(result))
    return result


def _write(obj: Any) -> Any:
    if type(obj) in (dict, list):
        return obj
    raise GuardError("Only dict entries and list items can be assigned, e.g. d['key'] = value.")


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
        raise GuardError(f"The operator '{op}' is not supported.")
    return _INPLACE[op](x, y)


# The hooks RestrictedPython-compiled code calls, by the names the compiler gives them.
GUARD_HOOKS: dict[str, Any] = {
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
    "_fmtval_": fmtval,
    "_tick_": _tick,
}
