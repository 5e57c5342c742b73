"""The limits of one run of diagram code: its time, its budget, and the weight of its values.

Python checks the time limit only between Python-level steps: one C-level operation
(comparing, hashing, sorting or printing a value; dividing whole numbers) runs to its end,
and no signal can stop it. So every such operation is bounded before it starts, by the
*weight* of the values it works on:

- text weighs 1 + its length; a whole number 1 + its bits / 64; other single values 1;
- a list, tuple, set or dict weighs 1 + the weight of each item (keys and values), counted
  each time it appears: ``[[0] * 1000] * 1000`` holds one list of 1,000 items a thousand
  times and weighs about 1,000,000, the work a comparison or ``str()`` of it would do.

The guards (``guards``, ``builtins``) refuse an operation on a value heavier than
``MAX_WEIGHT`` (a sort: weight times log2 of its length), so no single operation does more
than a few hundredths of a second of work. Weighing is itself bounded: it visits each distinct
value once, stops as soon as the cap is passed, and checks the time limit as it goes. C code
that makes a new tuple per item (``list(zip(a, b))``) may make at most ``MAX_PULL``.

The state of the run under way (clock, budget, deadline) is kept per thread in ``current_run``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import islice
from types import GeneratorType
from typing import Any

MAX_ITEMS = 1_000_000
BUDGET = 5_000_000
MAX_WEIGHT = 10_000_000
MAX_KEPT = 2_000_000  # a value an expression gives or a script stores (then kept as JSON)
MAX_TEXT_WEIGHT = 100_000
MAX_DEPTH = 100
MAX_PULL = 10_000
MAX_INT_BITS = 3_400  # about 1,000 decimal digits

_ONE = frozenset({type(None), bool, float})
_PLAIN_SCALARS = (type(None), bool, int, float, str)
VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_ITEMS: type = type({}.items())
CONTAINERS = (list, tuple, dict, set, frozenset)


class GuardError(Exception):
    """A sandbox rule stopped the code at run time; the message is safe to show."""


class OutOfTime(BaseException):
    """Raised at the time limit; not an Exception, so no helper can swallow it."""


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


def tick() -> bool:
    """Stop the run (OutOfTime) once its deadline has passed."""
    if time.monotonic() > current_run.deadline:
        raise OutOfTime
    return True


class _Over(Exception):
    """The walk passed its cap (or met a cycle, or went too deep); stop walking."""


class _Walk:
    """One weighing: each distinct container is weighed once (by id) and counted each time."""

    __slots__ = ("cap", "memo", "plain", "problem")

    def __init__(self, cap: int, *, plain: bool) -> None:
        self.cap, self.plain = cap, plain
        self.memo: dict[int, int] = {}
        self.problem = ""

    def weight(self, value: Any, depth: int) -> int:
        kind = type(value)
        if kind is str:
            return 1 + len(value)
        if kind is int:
            bits: int = value.bit_length()
            return 1 + (bits >> 6)
        if kind in _ONE:
            return 1
        if kind is list or kind is tuple:
            return self._container(value, (value,), depth)
        if kind is dict:
            return self._container(value, (value.keys(), value.values()), depth)
        if self.plain:
            self.problem = f"holds a {kind.__name__} value"
            raise _Over
        if kind is set or kind is frozenset:
            return self._container(value, (value,), depth)
        if isinstance(value, VIEWS):
            whole: int = self.weight(getattr(value, "mapping"), depth)  # noqa: B009  # a view reaches all of its dict
            return whole
        return 1

    def _container(self, value: Any, parts: tuple[Any, ...], depth: int) -> int:
        key = id(value)
        known = self.memo.get(key)
        if known is not None:
            return known
        if depth >= MAX_DEPTH:
            raise _Over
        tick()
        if self.plain and type(value) is dict and not set(map(type, value)) <= {str}:
            self.problem = "has a dict key that is not text"
            raise _Over
        self.memo[key] = self.cap + 1  # met again while being weighed: a cycle, too heavy
        total = 1
        for items in parts:
            total += len(items) + self._flat(items, depth)
            if total > self.cap:
                raise _Over
        self.memo[key] = total
        return total

    def _flat(self, items: Any, depth: int) -> int:
        """The weight of items beyond one each: in C for text and numbers, else item by item."""
        kinds = set(map(type, items))
        if kinds <= _ONE:
            return 0
        if kinds == {str}:
            return sum(map(len, items))
        if kinds <= {int, bool}:
            return sum(map(int.bit_length, items)) >> 6
        extra = 0
        for count, item in enumerate(items):
            if not count & 0xFFFF:
                tick()
            extra += self.weight(item, depth + 1) - 1
            if extra > self.cap:
                raise _Over
        return extra


def weigh(value: Any, cap: int = MAX_WEIGHT) -> int:
    """The weight of value (see the module docstring), or cap + 1 when it is heavier than cap,
    holds itself, or is nested more than MAX_DEPTH deep."""
    try:
        return min(_Walk(cap, plain=False).weight(value, 0), cap + 1)
    except _Over:
        return cap + 1


def too_heavy(what: str) -> GuardError:
    """The error for an operation refused because of the weight of its values."""
    return GuardError(
        f"{what} would work on too large or too deeply nested a value (over {MAX_WEIGHT:,} "
        "items and characters, counting each repeat). Work with smaller values."
    )


def pulled(value: Any, what: str) -> Any:
    """value, or if it is an iterator (a generator, zip, enumerate) the list of its items.

    C code that keeps what an iterator makes (``list(zip(a, b))``) builds a new tuple per item;
    each few thousand of them start a pass of the garbage collector over every object of the
    process, so with large task data in memory 100,000 of them take seconds: at most MAX_PULL.
    """
    kind = type(value)
    if kind is GeneratorType:  # runs diagram code, which checks the time limit
        items = list(value)
        charge(len(items))
        return items
    if (kind is _ITEMS and len(value) > MAX_PULL) or isinstance(value, Iterator):
        items = list(islice(value, MAX_PULL + 1))
        if len(items) > MAX_PULL:
            raise GuardError(
                f"{what} may take at most {MAX_PULL:,} items from a zip, enumerate, .items() "
                "or generator. Loop over them with 'for' instead."
            )
        charge(len(items))
        return items
    return value


def light(value: Any, what: str = "A comparison or lookup") -> Any:
    """Pass value on if one C-level operation on it stays within MAX_WEIGHT, else refuse.
    An iterator (generator, zip, ...) is passed on as the list of its items: only a list
    can be weighed, and what it yields may have changed since it was made."""
    kind = type(value)
    if kind in _ONE or kind is int or (kind is str and len(value) < MAX_WEIGHT):
        return value
    if kind not in CONTAINERS:
        value = pulled(value, what)
    if weigh(value) > MAX_WEIGHT:
        raise too_heavy(what)
    return value


def bounded(value: Any, *, plain: bool, limit: int = MAX_KEPT) -> str:
    """What makes value unfit to keep ('' if nothing): heavier than limit, nested more than
    MAX_DEPTH deep, or (plain) not JSON-like. Shared parts count each time, as printing or
    storing would expand them."""
    walk = _Walk(limit, plain=plain)
    try:
        heavy = walk.weight(value, 0) > limit
    except _Over:
        heavy = True
    if walk.problem:
        return walk.problem
    return "is too large or nested too deeply" if heavy else ""


def fmtval(value: Any) -> Any:
    """Pass a value on to be turned into text, unless its text would be too large."""
    if type(value) not in _PLAIN_SCALARS and weigh(value, MAX_TEXT_WEIGHT) > MAX_TEXT_WEIGHT:
        raise GuardError("The value is too large to turn into text.")
    return value
