"""The elements of two versions paired up, and what changed in each pair.

Matching rule: an element keeps its id, or, when its id is gone, it is the same element
under a new id if exactly one new element (whose id is new too) has the same type, the same
name and the same enclosing stage (sub-process, itself matched first), and no other element
gone has them. Unnamed elements are never matched this way: they show as removed and added.

Every element id is part of the contract (scenario files, clients and the reminders' and
deadlines' records name them, and a case's stored state names the elements it waits at):
an element removed, given a new id, or turned into another type of element is breaking.
A new name (label) is not.
"""

from __future__ import annotations

from ..steps import Step
from ..vocabulary import ChangeKind
from .forms import field_changes
from .model import Change, Json
from .reading import Version
from .wording import (
    duration_words,
    durations_in,
    expression_shape,
    expression_words,
    quoted,
    timer_words,
    titled,
)

_GONE = "\0gone"
# Compared pathway-wide in `contracts` (reminders, variances, deadline kinds) or below.
_ELSEWHERE = (
    "pathway.evidence.",
    "pathway.reminder",
    "pathway.escalate",
    "pathway.variance.",
    "pathway.deadline",
    "pathway.escalation.",
    "pathway.role",
)
_LABELS = {
    "pathway.deadline.latest": "latest",
    "pathway.deadline.latest.rule": "rule for the latest",
    "pathway.deadline.later": "can be moved later:",
    "pathway.deadline.earliest": "earliest",
    "pathway.deadline.earlier.role": "role that may bring it earlier",
    "pathway.deadline.earlier.variance": "variance recorded when brought earlier",
    "pathway.deadline.earlier.rule": "rule for bringing it earlier",
    "pathway.escalation.message": "message that arms it",
    "pathway.escalation.urgency": "urgency that arms it",
    "pathway.escalation.clock": "clock",
    "pathway.escalation.decision": "decision that classifies the report",
    "pathway.form": "form of its message",
    "pathway.merges": "reports merged into its answers",
    "pathway.completed_on": "date of completion kept as",
    "pathway.priority": "priority",
    "message": "message it waits for",
    "decision": "decision table",
}
_EVIDENCE = (
    ("rationale", "rationale"),
    ("source", "guideline source"),
    ("quote", "guideline quote"),
)


def _parent(step: Step) -> str | None:
    return step.within[0] if step.within else None


def match_elements(old: dict[str, Step], new: dict[str, Step]) -> dict[str, str]:
    """Pair each old element id with its new id (see the matching rule above)."""
    pairs = {i: i for i in old if i in new}
    gone = sorted((s for i, s in old.items() if i not in new), key=lambda s: len(s.within))
    fresh = [s for i, s in new.items() if i not in old]
    for step in gone:
        if not step.name:
            continue
        parent = _parent(step)
        place = pairs.get(parent, _GONE) if parent is not None else None
        rivals = [o for o in gone if (o.kind, o.name, _parent(o)) == (step.kind, step.name, parent)]
        candidates = [
            s for s in fresh if (s.kind, s.name, _parent(s)) == (step.kind, step.name, place)
        ]
        if len(rivals) == 1 and len(candidates) == 1:
            pairs[step.id] = candidates[0].id
    return pairs


def _props(step: Step, prefix: str) -> dict[str, str]:
    return {k: v.strip() for k, v in step.properties.items() if k.startswith(prefix)}


def _words(name: str, value: str | None) -> str:
    if name.endswith(".later"):
        return "no" if (value or "").lower() == "never" else "yes"
    if value is None or value == "":
        return "none"
    if name.endswith((".latest", ".earliest", ".clock")):
        return expression_words(value)
    return quoted(value)


def _property_group(
    kind: ChangeKind, old: Step, new: Step, before: dict[str, str], after: dict[str, str]
) -> Change | None:
    names = [n for n in dict.fromkeys([*before, *after]) if before.get(n) != after.get(n)]
    if not names:
        return None
    parts = [
        f"{_LABELS.get(n, n)} {_words(n, before.get(n))} → {_words(n, after.get(n))}" for n in names
    ]
    return Change(
        kind,
        new.id,
        f"{titled(new)}: " + "; ".join(parts),
        before={n: before.get(n) for n in names},
        after={n: after.get(n) for n in names},
    )


def _other_properties(old: Step, new: Step) -> list[Change]:
    def rest(step: Step) -> dict[str, str]:
        props = {k: v.strip() for k, v in step.properties.items() if not k.startswith(_ELSEWHERE)}
        props.update({"message": step.message or "", "decision": step.decision or ""})
        return {k: v for k, v in props.items() if v}

    before, after = rest(old), rest(new)
    changes = []
    for name in dict.fromkeys([*before, *after]):
        group = _property_group(
            ChangeKind.PROPERTY_CHANGED,
            old,
            new,
            {name: before[name]} if name in before else {},
            {name: after[name]} if name in after else {},
        )
        if group is not None:
            changes.append(group)
    return changes


def _timer_title(step: Step, version: Version) -> str:
    title = f"Timer {quoted(step.name) if step.name else step.id}"
    host = version.elements.get(version.attached.get(step.id, ""))
    if host is not None:
        title += f" on {quoted(host.name) if host.name else host.id}"
    if step.deadline:
        title += f" (deadline {step.deadline})"
    return title


def _timer(old: Step, new: Step, old_v: Version, new_v: Version) -> Change | None:
    before, after = old_v.timers.get(old.id), new_v.timers.get(new.id)
    if before == after:
        return None
    title = _timer_title(new, new_v) if after else _timer_title(old, old_v)
    if before is None or after is None:
        detail = f"now waits {timer_words(after)}" if after else "no longer waits on a timer"
    else:
        old_d, new_d = durations_in(before[1]), durations_in(after[1])
        if (
            before[0] == after[0]
            and old_d
            and expression_shape(before[1]) == expression_shape(after[1])
        ):
            moved = [(a, b) for a, b in zip(old_d, new_d, strict=True) if a != b]
            detail = "; ".join(f"{duration_words(a)} → {duration_words(b)}" for a, b in moved)
            stale = [
                str(duration_words(a))
                for a, b in moved
                if new.name
                and str(duration_words(a)) in new.name
                and str(duration_words(b)) not in new.name
            ]
            if stale:
                detail += f" (its name still says {quoted(stale[0])})"
        else:
            detail = f"{timer_words(before)} → {timer_words(after)}"
    data: list[Json] = [None, None]
    for i, timer in enumerate((before, after)):
        if timer is not None:
            data[i] = {"type": timer[0], "expression": timer[1]}
    return Change(
        ChangeKind.TIMER_CHANGED, new.id, f"{title}: {detail}", before=data[0], after=data[1]
    )


def _evidence(old: Step, new: Step) -> Change | None:
    before, after = old.evidence.describe(), new.evidence.describe()
    parts = [
        f"{label} now reads {quoted(after[key])}"
        for key, label in _EVIDENCE
        if before[key] != after[key]
    ]
    if not parts:
        return None
    return Change(
        ChangeKind.EVIDENCE_CHANGED,
        new.id,
        f"{titled(new)}: " + "; ".join(parts),
        before=dict(before),
        after=dict(after),
    )


def _roles(step: Step) -> list[str]:
    return sorted({r.strip() for r in (step.role or "").split(",") if r.strip()})


def pair_changes(old: Step, new: Step, old_v: Version, new_v: Version) -> list[Change]:
    """What changed in one element between two versions."""
    changes: list[Change] = []
    if old.id != new.id:
        changes.append(
            Change(
                ChangeKind.STEP_ID_CHANGED,
                new.id,
                f"{titled(old)} has a new id: {old.id} → {new.id}",
                breaking=True,
                before=old.id,
                after=new.id,
            )
        )
    if old.name != new.name:
        changes.append(
            Change(
                ChangeKind.STEP_RENAMED,
                new.id,
                f"{titled(old)} is now called {quoted(new.name)}",
                before=old.name,
                after=new.name,
            )
        )
    if old.kind != new.kind:
        changes.append(
            Change(
                ChangeKind.STEP_TYPE_CHANGED,
                new.id,
                f"{titled(new)} was a {old.kind} and is now a {new.kind}",
                breaking=True,
                before=old.kind,
                after=new.kind,
            )
        )
    if _roles(old) != _roles(new):
        changes.append(
            Change(
                ChangeKind.ROLE_CHANGED,
                new.id,
                f"{titled(new)}: done by {', '.join(_roles(old)) or 'anyone'} → "
                f"{', '.join(_roles(new)) or 'anyone'}",
                before=list(_roles(old)),
                after=list(_roles(new)),
            )
        )
    changes += [c for c in (_timer(old, new, old_v, new_v),) if c is not None]
    for kind, prefix in (
        (ChangeKind.DEADLINE_LIMITS_CHANGED, "pathway.deadline."),
        (ChangeKind.ESCALATION_CHANGED, "pathway.escalation."),
    ):
        group = _property_group(kind, old, new, _props(old, prefix), _props(new, prefix))
        changes += [group] if group is not None else []
    changes += field_changes(old, new)
    changes += [c for c in (_evidence(old, new),) if c is not None]
    return changes + _other_properties(old, new)


def element_changes(old_v: Version, new_v: Version, pairs: dict[str, str]) -> list[Change]:
    """Elements added, removed, renamed or changed, in the new version's document order."""
    olds = {new_id: old_v.elements[old_id] for old_id, new_id in pairs.items()}
    changes: list[Change] = []
    for step in new_v.elements.values():
        was = olds.get(step.id)
        if was is not None:
            changes += pair_changes(was, step, old_v, new_v)
        else:
            title = titled(step)
            changes.append(
                Change(
                    ChangeKind.STEP_ADDED,
                    step.id,
                    f"New {title[0].lower()}{title[1:]}",
                    after=step.name,
                )
            )
    for step in old_v.elements.values():
        if step.id not in pairs:
            changes.append(
                Change(
                    ChangeKind.STEP_REMOVED,
                    step.id,
                    f"{titled(step)} removed",
                    breaking=True,
                    before=step.name,
                )
            )
    return changes
