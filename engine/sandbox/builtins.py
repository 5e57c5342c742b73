"""The built-ins of the diagram-code sandbox: the only functions diagram code can call.

``BUILTINS`` is the whole allow-list (it becomes ``__builtins__`` of every run): safe Python
built-ins; size-capped versions of ``str int range round list tuple``; versions of ``min max
sum sorted set dict`` that weigh what they will compare or hash first (see ``limits``: they
refuse values heavier than ``MAX_WEIGHT``, and take at most ``MAX_PULL`` items from an
iterator); and the
date functions documented in ``engine.expressions`` (``date datetime today now add_days
add_weeks add_months days_between``), which read the time from the run's clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from ..clock import clinic_today
from .guards import charged
from .limits import (
    MAX_INT_BITS,
    MAX_WEIGHT,
    VIEWS,
    GuardError,
    charge,
    current_run,
    fmtval,
    light,
    pulled,
    too_heavy,
    weigh,
)

_MAX_RANGE = 10_000
_SIZED = (list, tuple, dict, set, frozenset, str, range, *VIEWS)


def _str(*args: Any) -> str:
    result = str(*(fmtval(a) for a in args))
    charge(len(result))
    return result


def _int(*args: Any) -> int:
    # Text in base 2, 4, 8, 16 or 32 converts to any length: refuse what no guard would allow.
    result = int(*args)
    if result.bit_length() > MAX_INT_BITS:
        raise GuardError("The number would be too large (over about 1,000 digits).")
    return result


def _pulling(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
    """Wrap list or tuple: an iterator's items are taken at most MAX_PULL at once."""

    def call(*args: Any) -> Any:
        return fn(*(pulled(a, what) for a in args))

    return call


def _weighed(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
    """Wrap a built-in that compares or hashes the items of its arguments in C: they are
    weighed first (an iterator's items are taken into a list to be weighed)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*(light(a, what) for a in args), **kwargs)

    return call


def _sorted(iterable: Any, **kwargs: Any) -> list[Any]:
    # A sort compares each item about log2(length) times: count that in its weight.
    items = pulled(iterable, "sorted()")
    rounds = max(len(items), 2).bit_length() if isinstance(items, _SIZED) else 1  # type: ignore[arg-type]
    if weigh(items, MAX_WEIGHT // rounds) * rounds > MAX_WEIGHT:
        raise too_heavy("sorted()")
    result = sorted(items, **kwargs)
    charge(len(result))
    return result


def _range(*args: int) -> range:
    result = range(*args)
    try:
        size = len(result)
    except OverflowError:
        size = _MAX_RANGE + 1
    if size > _MAX_RANGE:
        raise GuardError(f"range() may give at most {_MAX_RANGE:,} numbers.")
    return result


def _round(number: Any, ndigits: int | None = None) -> Any:
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > 100:
        raise GuardError("round() allows at most 100 digits.")
    return round(number, ndigits)


def _sum(values: Any, start: Any = 0) -> Any:
    if isinstance(start, bool) or not isinstance(start, (int, float)):
        raise GuardError("sum() adds numbers only; join text with + or an f-string.")
    if not isinstance(values, Iterator):  # a generator's items come one by one, timed
        light(values, "sum()")
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
            raise GuardError(
                f"{helper}() needs an ISO 8601 date such as '2025-01-31' or "
                "'2025-01-31T08:00:00+00:00'."
            ) from None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return value
    raise GuardError(f"{helper}() needs a date or ISO 8601 text, not a {type(value).__name__}.")


def _date(value: object) -> dt.date:
    parsed = _parse(value, "date")
    return parsed.date() if isinstance(parsed, dt.datetime) else parsed


def _datetime(value: object) -> dt.datetime:
    parsed = _parse(value, "datetime")
    if isinstance(parsed, dt.datetime):
        return parsed
    return dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC)


def _clock_now() -> dt.datetime:
    now: dt.datetime = current_run.clock.now()
    return now.astimezone(dt.UTC) if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _today() -> str:
    # The clinic's date, in its time zone: a date entered today is not in the future there.
    return clinic_today(current_run.clock).isoformat()


def _now() -> str:
    return _clock_now().isoformat()


def _shift(value: object, n: object, helper: str, *, days: int = 0, months: int = 0) -> str:
    if isinstance(n, bool) or not isinstance(n, int):
        raise GuardError(f"{helper}(d, n) needs a whole number n.")
    moved = _parse(value, helper)
    try:
        if months:
            year, month = divmod(moved.year * 12 + moved.month - 1 + months * n, 12)
            day = min(moved.day, calendar.monthrange(year, month + 1)[1])
            moved = moved.replace(year=year, month=month + 1, day=day)
        moved = moved + dt.timedelta(days=days * n)
    except (ValueError, OverflowError):
        raise GuardError(f"{helper}() gives a date outside the years 1 to 9999.") from None
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


BUILTINS: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "len": len,
    "abs": abs,
    "min": _weighed(min, "min()"),
    "max": _weighed(max, "max()"),
    "round": _round,
    "sum": _sum,
    "any": any,
    "all": all,
    "sorted": _sorted,
    "int": _int,
    "float": float,
    "str": _str,
    "bool": bool,
    "list": charged(_pulling(list, "list()")),
    "dict": charged(_weighed(dict, "dict()")),
    "set": charged(_weighed(set, "set()")),
    "tuple": charged(_pulling(tuple, "tuple()")),
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
