"""Run-time guards of the diagram-code sandbox: what compiled diagram code calls as it runs.

RestrictedPython (and the policy in ``policy``) rewrites attribute and item access,
assignment targets, unpacking, ``+ - * // ** << %``, f-strings, every loop pass and every
operand of a comparison or hash into calls of the hooks in ``GUARD_HOOKS``. These allow only
the listed methods, cap the size of numbers, text and lists, charge what a run builds against
its budget, refuse C-level work on values heavier than ``limits.MAX_WEIGHT``, and stop a run
at its time limit (see ``limits``).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from .limits import (
    MAX_INT_BITS,
    MAX_ITEMS,
    GuardError,
    charge,
    fmtval,
    light,
    tick,
)

MAX_WIDTH = 1_000
MAX_STRIP_CHARS = 100


def _too_big_int() -> GuardError:
    return GuardError("The number would be too large (over about 1,000 digits).")


def _check_size(size: int) -> None:
    if size > MAX_ITEMS:
        raise GuardError(f"Text or lists may hold at most {MAX_ITEMS:,} items.")
    charge(size)


_SEQ = (str, list, tuple)


def _big(a: Any, b: Any, bits: int = MAX_INT_BITS) -> bool:
    """Whether a and b are whole numbers one of which is longer than bits."""
    return isinstance(a, int) and isinstance(b, int) and max(a.bit_length(), b.bit_length()) > bits


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, _SEQ) and isinstance(b, _SEQ):
        charge(len(a) + len(b))
    elif _big(a, b, MAX_INT_BITS - 1):  # the sum may be one bit longer
        raise _too_big_int()
    return a + b


def _sub(a: Any, b: Any) -> Any:
    if _big(a, b, MAX_INT_BITS - 1):
        raise _too_big_int()
    return a - b


def _floordiv(a: Any, b: Any) -> Any:
    # Dividing whole numbers takes time growing with the square of their length.
    if _big(a, b):
        raise _too_big_int()
    return a // b


def _mul(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise _too_big_int()
    elif isinstance(a, _SEQ) and isinstance(b, int):
        _check_size(len(a) * max(b, 0))
    elif isinstance(b, _SEQ) and isinstance(a, int):
        _check_size(len(b) * max(a, 0))
    return a * b


def _pow(a: Any, b: Any) -> Any:
    ints = isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0
    if ints and (b > MAX_INT_BITS or a.bit_length() * b > MAX_INT_BITS):
        raise _too_big_int()
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() + b > MAX_INT_BITS:
        raise _too_big_int()
    return a << b


_PERCENT_SPEC = re.compile(r"%(?:%|(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?)")


def _mod(a: Any, b: Any) -> Any:
    if not isinstance(a, str):
        if _big(a, b):
            raise _too_big_int()
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


def _strip(text: str) -> Callable[..., Any]:
    def call(chars: str | None = None) -> str:
        # Each character stripped is looked for in chars, in C: keep chars short.
        if isinstance(chars, str) and len(chars) > MAX_STRIP_CHARS:
            raise GuardError(f".strip() takes at most {MAX_STRIP_CHARS} characters to strip.")
        result = text.strip(chars)
        charge(len(result))
        return result

    return call


def _weighing(bound: Callable[..., Any], name: str, *whole: Any) -> Callable[..., Any]:
    """A method that compares or hashes its arguments (and the items of `whole`) in C: they
    are weighed when it is called, as its list may have been filled since it was looked up."""

    def call(*args: Any) -> Any:
        for value in whole:
            light(value, f".{name}()")
        return bound(*(light(arg, f".{name}()") for arg in args))

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
        if name == "strip":
            return _strip(obj)
        if name in ("lower", "upper", "split"):
            return charged(getattr(obj, name))
        if name in ("startswith", "endswith"):  # a tuple of prefixes is compared in C
            return _weighing(getattr(obj, name), name)
    elif name in ("count", "index"):  # compare every item with the argument, in C
        return _weighing(getattr(obj, name), name, obj)
    elif name == "get":  # hashes its key, in C
        return _weighing(getattr(obj, name), name)
    return getattr(obj, name)


def _getitem(obj: Any, key: Any) -> Any:
    if not isinstance(obj, (dict, list, tuple, str, range)):
        raise GuardError(f"[...] works on dicts, lists and text, not on a {type(obj).__name__}.")
    if type(key) is tuple:  # hashed (dict) or refused (list), in C
        light(key, "[...]")
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
    "-=": _sub,
    "*=": _mul,
    "/=": operator.truediv,
    "//=": _floordiv,
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
    "_sub_": _sub,
    "_floordiv_": _floordiv,
    "_mul_": _mul,
    "_pow_": _pow,
    "_lshift_": _lshift,
    "_mod_": _mod,
    "_fstr_": _fstr,
    "_fmtval_": fmtval,
    "_tick_": tick,
    "_light_": light,
}
