"""The text Pathway takes from people: identifiers, free text and patient references.

Every string that comes in (an id in a path, a filter, a form value, a reason, a token's
subject) is checked here before it reaches a query: a NUL byte is refused by PostgreSQL
and stored by SQLite, a lone surrogate cannot be encoded at all, and invisible or
bidirectional characters make two references that look alike name two patients.

- an **identifier** (ids, filters, claims) holds no control, format, separator or
  surrogate character;
- **free text** (a reason, a form's text field) may hold tabs and line breaks, nothing else
  of those;
- a **patient reference** is an identifier, normalised: Unicode NFKC (full-width letters
  become plain ones), surrounding space trimmed, and never blank.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

PATIENT_REF_MAX = 64
"""The longest patient reference (the column's width)."""

# Unicode general categories refused in an identifier: controls (Cc: NUL, C0 and C1),
# format characters (Cf: zero-width spaces and joiners, bidirectional overrides, the BOM),
# surrogates (Cs), private use (Co), unassigned (Cn), and the line and paragraph separators.
_NOT_IN_IDENTIFIERS = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_FREE_TEXT_CONTROLS = frozenset("\t\n\r")


def _describe(char: str, position: int) -> str:
    name = unicodedata.name(char, "") or {"Cc": "a control character"}.get(
        unicodedata.category(char), "an unprintable character"
    )
    return f"must not contain U+{ord(char):04X} ({name.lower()}) at position {position}"


def identifier_problem(value: str) -> str | None:
    """What is wrong with a string used as an identifier or filter, or None when it is fine."""
    if value.isascii() and value.isprintable():  # the common case, checked in C
        return None
    for position, char in enumerate(value, 1):
        if unicodedata.category(char) in _NOT_IN_IDENTIFIERS:
            return _describe(char, position)
    return None


def free_text_problem(value: str) -> str | None:
    """What is wrong with free text (a reason, a note), or None: tabs and line breaks are
    fine, other control characters and lone surrogates are not."""
    if value.isascii() and value.isprintable():
        return None
    for position, char in enumerate(value, 1):
        category = unicodedata.category(char)
        if (category == "Cc" and char not in _FREE_TEXT_CONTROLS) or category == "Cs":
            return _describe(char, position)
    return None


def walk_strings(value: Any, path: str) -> Iterator[tuple[str, str, bool]]:
    """Every string in a JSON value with where it is: ``(path, text, is_key)``. Iterative,
    so that a deeply nested document cannot exhaust the stack."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item, False
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str):
                    yield where, key, True
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}.{index}") for index, inner in enumerate(item))


def json_problem(value: Any, path: str) -> tuple[str, str] | None:
    """The first string in a JSON value that is not acceptable text, as ``(where, what)``:
    keys must be identifiers, values free text."""
    for where, text, is_key in walk_strings(value, path):
        problem = identifier_problem(text) if is_key else free_text_problem(text)
        if problem is not None:
            return where, ("a field name " if is_key else "") + problem
    return None


def normalise_patient_ref(value: str) -> str:
    """A patient reference in its one spelling; ValueError saying why when it has none.

    NFKC folds compatibility forms (full-width ``ＵＮＩ`` is ``UNI``), surrounding space is
    trimmed; a reference that is then blank, too long, or holds an invisible, bidirectional
    or control character is refused rather than silently cleaned, since someone typed or
    pasted something other than what they saw.
    """
    folded = unicodedata.normalize("NFKC", value)
    # Checked before trimming: str.strip() also takes away line breaks, the file and record
    # separators and NEL, which would clean a pasted control character away unseen.
    problem = identifier_problem(folded)
    if problem is not None:
        raise ValueError(problem)
    normal = folded.strip()
    if not normal:
        raise ValueError("must not be blank")
    if len(normal) > PATIENT_REF_MAX:
        raise ValueError(f"must have at most {PATIENT_REF_MAX} characters")
    return normal
