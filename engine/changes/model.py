"""A change between two versions of a pathway, the list of them, and how they read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..vocabulary import ChangeKind

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

# Headings of the text report, in the order a clinician reviews them.
GROUPS: tuple[tuple[str, tuple[ChangeKind, ...]], ...] = (
    (
        "Steps",
        (
            ChangeKind.STEP_ADDED,
            ChangeKind.STEP_REMOVED,
            ChangeKind.STEP_RENAMED,
            ChangeKind.STEP_ID_CHANGED,
            ChangeKind.STEP_TYPE_CHANGED,
            ChangeKind.ROLE_CHANGED,
        ),
    ),
    (
        "Timers and deadlines",
        (
            ChangeKind.TIMER_CHANGED,
            ChangeKind.DEADLINE_ADDED,
            ChangeKind.DEADLINE_REMOVED,
            ChangeKind.DEADLINE_LIMITS_CHANGED,
            ChangeKind.ESCALATION_CHANGED,
        ),
    ),
    (
        "Forms",
        (
            ChangeKind.FIELD_ADDED,
            ChangeKind.FIELD_REMOVED,
            ChangeKind.FIELD_RENAMED,
            ChangeKind.FIELD_TYPE_CHANGED,
            ChangeKind.FIELD_NOW_REQUIRED,
            ChangeKind.FIELD_NOW_OPTIONAL,
            ChangeKind.FIELD_LIMITS_CHANGED,
            ChangeKind.CHOICE_ADDED,
            ChangeKind.CHOICE_REMOVED,
            ChangeKind.CHOICE_RENAMED,
        ),
    ),
    (
        "Decisions and conditions",
        (
            ChangeKind.DECISION_RULE_ADDED,
            ChangeKind.DECISION_RULE_REMOVED,
            ChangeKind.DECISION_RULE_CHANGED,
            ChangeKind.DECISION_TABLE_CHANGED,
            ChangeKind.CONDITION_CHANGED,
        ),
    ),
    (
        "Reminders",
        (
            ChangeKind.REMINDER_ADDED,
            ChangeKind.REMINDER_REMOVED,
            ChangeKind.REMINDER_RENAMED,
            ChangeKind.REMINDER_CHANGED,
        ),
    ),
    (
        "Variances",
        (
            ChangeKind.VARIANCE_ADDED,
            ChangeKind.VARIANCE_REMOVED,
            ChangeKind.VARIANCE_RENAMED,
            ChangeKind.VARIANCE_CHANGED,
        ),
    ),
    ("Messages", (ChangeKind.MESSAGE_ADDED, ChangeKind.MESSAGE_REMOVED)),
    ("Evidence", (ChangeKind.EVIDENCE_CHANGED,)),
    ("Other properties", (ChangeKind.PROPERTY_CHANGED,)),
)


@dataclass(frozen=True)
class Change:
    """One thing that changed: its kind, the element it is on, the sentence a clinician reads,
    whether it breaks the pathway's contract, and the values before and after (plain data)."""

    kind: ChangeKind
    element: str
    text: str
    breaking: bool = False
    before: Json = None
    after: Json = None

    def as_dict(self) -> dict[str, Any]:
        """Return the change as JSON-able data."""
        return {
            "kind": str(self.kind),
            "element": self.element,
            "text": self.text,
            "breaking": self.breaking,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class DefinitionDiff:
    """Every change from one version of a pathway to another, breaking ones first."""

    changes: tuple[Change, ...] = ()

    @property
    def breaking(self) -> tuple[Change, ...]:
        """The changes that break the pathway's contract."""
        return tuple(c for c in self.changes if c.breaking)

    def of_kind(self, kind: ChangeKind) -> tuple[Change, ...]:
        """The changes of one kind, in order."""
        return tuple(c for c in self.changes if c.kind == kind)

    def summary(self) -> dict[str, Any]:
        """Count the changes: in all, breaking, and by kind."""
        return {
            "changes": len(self.changes),
            "breaking": len(self.breaking),
            "by_kind": dict(sorted(Counter(str(c.kind) for c in self.changes).items())),
        }

    def as_dict(self) -> dict[str, Any]:
        """Return the diff as JSON-able data: the summary and each change."""
        return {"summary": self.summary(), "changes": [c.as_dict() for c in self.changes]}


def render_text(diff: DefinitionDiff) -> str:
    """Render a diff for a terminal: breaking changes first and marked, then each group."""
    if not diff.changes:
        return "No changes.\n"
    total, breaking = len(diff.changes), len(diff.breaking)
    lines = [f"{total} change(s), {breaking} breaking."]
    if breaking:
        lines += [
            "",
            "Breaking (cases, clients or scenario files that rely on these stop working):",
        ]
        lines += [f"  BREAKING  {c.text}" for c in diff.breaking]
    for heading, kinds in GROUPS:
        rest = [c for c in diff.changes if c.kind in kinds and not c.breaking]
        if rest:
            lines += ["", f"{heading}:"]
            lines += [f"  - {c.text}" for c in rest]
    return "\n".join(lines) + "\n"
