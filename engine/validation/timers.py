"""A timer's body as a person wrote it: a bare ISO 8601 value, or an expression giving one.

What a person meant as an ISO 8601 value (a duration P..., PT..., a cycle R.../..., a date)
but that does not parse fails only when a case reaches the timer, so it is a problem at
validation (``P6WW``, ``PT``, ``P1Y2``), whether written bare or as a string in an expression.
"""

from __future__ import annotations

import ast
import re

from lxml import etree

from ..diagrams import is_iso_literal
from ..errors import Problem
from .problems import code_problem, label, problem

_LOOKS_ISO = re.compile(r"P[0-9T][0-9A-Za-z.,]*|PT?|R\d*/\S*|\d{4}-\d{2}-\d{2}\S*")
_WHAT = {"timeDate": "date", "timeCycle": "cycle", "timeDuration": "duration"}


def _string_constants(source: str) -> list[str]:
    """The text constants of an expression (none when it does not parse: the code check says
    why)."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return []
    return [
        n.value.strip()
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def timer_body_problem(file: str, event: etree._Element, kind: str, text: str) -> Problem | None:
    """What is wrong with a timer's ``timeDate``, ``timeDuration`` or ``timeCycle`` body."""
    if not text or is_iso_literal(text):
        return None
    looks_iso = _LOOKS_ISO.fullmatch(text) is not None
    meant = [text] if looks_iso else _string_constants(text)
    bad = [value for value in meant if _LOOKS_ISO.fullmatch(value) and not is_iso_literal(value)]
    if bad:
        return problem(
            file,
            event,
            f"the {kind} of {label(event)} gives '{bad[0][:40]}', which is not an ISO 8601 "
            f"{_WHAT.get(kind, 'value')}",
            "write a duration such as P6W, P14D or PT4H, a date-time such as "
            "2026-03-01T00:00:00Z, or a cycle such as R3/PT1H",
        )
    return None if looks_iso else code_problem(file, event, f"the {kind}", text)
