"""Checks on a reminder a diagram declares: whom it goes to and what it says.

A reminder's text (``pathway.reminder.text``) becomes the subject line of an email and the
first line of every channel's message, so it is one line of plain text of bounded length,
written once in the diagram rather than in code. It names what is due, never a patient.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from lxml import etree

from ..diagrams import BPMN_NS, CAMUNDA_NS
from ..errors import Problem
from ..steps import Step
from .problems import label, problem

REMINDER_TEXT_MAX = 200
"""The longest reminder text: it has to read whole in a mail client's subject column."""

_PROPERTY = f"{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}properties/{{{CAMUNDA_NS}}}property"
# Controls (tabs and line breaks too: a subject is one line), format characters (invisible
# and bidirectional), surrogates, private use, unassigned, and line or paragraph separators.
_NOT_IN_TEXT = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _property(node: etree._Element, name: str) -> etree._Element | None:
    return next((p for p in node.findall(_PROPERTY) if p.get("name") == name), None)


def text_problem(text: str) -> str | None:
    """What is wrong with a reminder text, or None: it is one non-blank line of at most
    ``REMINDER_TEXT_MAX`` printable characters."""
    if not text.strip():
        return "is blank"
    for position, char in enumerate(text, 1):
        if unicodedata.category(char) in _NOT_IN_TEXT:
            return f"has the unprintable character U+{ord(char):04X} at position {position}"
    if len(text) > REMINDER_TEXT_MAX:
        return f"is {len(text)} characters long, more than {REMINDER_TEXT_MAX}"
    return None


def reminder_checks(file: str, node: etree._Element, step: Step) -> Iterator[Problem]:
    """Problems with the reminder text an element declares: a text without a kind, or a text
    that is not one short line. Whom it goes to is checked in ``properties``."""
    text_node = _property(node, "pathway.reminder.text")
    if step.reminder is None:
        # Roles without a kind are reported with the other role lists (properties.py).
        orphan = text_node
        if orphan is not None:
            yield problem(
                file,
                orphan,
                f"{label(node)} has {orphan.get('name')} but no reminder kind",
                "add a camunda property pathway.reminder naming the kind, or remove "
                f"{orphan.get('name')}",
            )
        return
    if text_node is not None:
        found = text_problem(text_node.get("value", ""))
        if found is not None:
            yield problem(
                file,
                text_node,
                f"the reminder text of {label(node)} {found}",
                f"write one line of plain text, at most {REMINDER_TEXT_MAX} characters, "
                "saying what is due (no patient data)",
            )
