"""Clocks: every due decision in the engine reads one of these, never the wall clock directly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
CLINICAL_RANGE = "between 1900-01-01 and 2199-12-31"
"""The dates and times Pathway takes from people. One outside them is a typo (a clinical
date in year 1, a deadline in 9999), and arithmetic on it near the calendar's ends would
overflow."""


def in_clinical_range(when: date | datetime) -> bool:
    """Tell whether a date, or an aware date-time, lies in the clinical range."""
    if isinstance(when, datetime):
        return EARLIEST <= when < LATEST
    return EARLIEST.date() <= when < LATEST.date()


class Clock(Protocol):
    """Tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that only moves when told to: for simulations and tests."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a simulated clock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        """Return the simulated time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to a given time (never backwards)."""
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError("a simulated clock cannot go backwards")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by a duration."""
        self.set(self._now + delta)
