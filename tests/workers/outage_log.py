"""What a process logs over an outage: one line when the service goes, one when it returns
with how long it was away, and no traceback."""

from __future__ import annotations

import re
from pathlib import Path


def assert_one_outage(
    log: Path, service: str, where: str, *, at_least: float, at_most: float
) -> None:
    """``log`` has exactly one "``service`` unreachable (``where``)" line, then exactly one
    "``service`` back after N s" line with ``at_least`` <= N <= ``at_most``, and no
    traceback."""
    text = log.read_text(errors="replace")
    gone = [line for line in text.splitlines() if f"{service} unreachable ({where})" in line]
    back = re.findall(rf"{service} back after (\d+) s", text)
    assert len(gone) == 1, f"{log.name}: one line when the {service} goes\n{text[-3000:]}"
    assert len(back) == 1, f"{log.name}: one line when the {service} returns\n{text[-3000:]}"
    assert text.index(gone[0]) < text.index(f"{service} back after"), log.name
    assert at_least <= int(back[0]) <= at_most, (log.name, back, at_least, at_most)
    assert "Traceback" not in text, f"{log.name}: a traceback\n{text[-3000:]}"
