"""Clocks: every due decision in the engine reads one of these, never the wall clock directly."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
    """Tells the current time as an aware UTC datetime. A clock may also carry ``zone``: the
    time zone its clinic reads dates in (UTC when it has none)."""

    def now(self) -> datetime: ...


def zone_named(name: str) -> tzinfo:
    """The IANA time zone of that name; ValueError saying so when there is none."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"'{name[:60]}' is not an IANA time zone (such as Europe/London or Australia/Sydney)"
        ) from None


def clinic_zone(clock: Clock) -> tzinfo:
    """The zone a clock's clinic reads its dates in."""
    zone: tzinfo = getattr(clock, "zone", UTC)
    return zone


def clinic_today(clock: Clock) -> date:
    """Today's date where the clinic is: what "today" means on a form and in a rule."""
    return clock.now().astimezone(clinic_zone(clock)).date()


class SystemClock:
    """The real time, in a clinic's time zone (UTC unless told)."""

    def __init__(self, zone: tzinfo = UTC) -> None:
        self.zone = zone

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that only moves when told to: for simulations and tests."""

    def __init__(self, start: datetime, *, zone: tzinfo = UTC) -> None:
        if start.tzinfo is None:
            raise ValueError("a simulated clock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self.zone = zone

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
