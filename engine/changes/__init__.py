"""What changed between two versions of a pathway, in the words a clinician reads.

``diff_definitions(old_files, new_files)`` compares two versions' files (one BPMN file and
the DMN files it calls, as ``definitions.original_files`` returns them) without a database:
steps added, removed or renamed (``elements``: how an element under a new id is matched),
timers and their durations in words, forms and their fields (``forms``), decision rules
(``decisions``), reminders, variances, deadlines, messages and conditions (``contracts``),
evidence and any other property of an element. Each change says whether it breaks the
pathway's contract (its step, message, reminder, variance and deadline ids, and what the
forms of existing steps accept); each module says which of its changes are breaking.

``render_text`` writes a diff for a terminal; ``DefinitionDiff.as_dict`` for an API.
"""

from __future__ import annotations

from .contracts import contract_changes
from .decisions import decision_changes
from .elements import element_changes, match_elements
from .model import Change, DefinitionDiff, Json, render_text
from .reading import read_version

__all__ = ["Change", "DefinitionDiff", "Json", "diff_definitions", "render_text"]


def diff_definitions(
    old_files: list[tuple[str, bytes]], new_files: list[tuple[str, bytes]]
) -> DefinitionDiff:
    """Compare two versions' files; return every change, the breaking ones first."""
    old, new = read_version(old_files), read_version(new_files)
    pairs = match_elements(old.elements, new.elements)
    changes = (
        element_changes(old, new, pairs)
        + contract_changes(old, new, pairs)
        + decision_changes(old.decisions, new.decisions)
    )
    return DefinitionDiff(tuple(sorted(changes, key=lambda c: not c.breaking)))
