"""The pathway's contract ids compared across the whole diagram: reminders, variances,
deadlines and messages, each by its id wherever it is drawn; and the flows' conditions.

Reminders compare every ``pathway.reminder.*`` property (and ``pathway.escalate``) by name,
so a property added later shows up without code here. Breaking: a reminder, variance,
deadline or message id removed or renamed (a renamed id is one gone with a new one in its
place: on the same element for a reminder, on the same step with the same condition for a
variance). Not breaking: one added, or a change of its roles, wording, rule or condition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..steps import Step
from ..vocabulary import ChangeKind
from .model import Change, Json
from .reading import Flow, Version
from .wording import called, quoted

_REMINDER_LABELS = {
    "pathway.reminder.to": "sent to",
    "pathway.reminder.text": "wording",
    "pathway.escalate": "marks the case escalated",
}
_VARIANCE_LABELS = {"condition": "raised when", "rule": "rule", "quote": "guideline quote"}


@dataclass(frozen=True)
class _Entry:
    """A contract id, where it is drawn, and its properties."""

    key: str
    element: str
    props: dict[str, str]


def _reminders(version: Version) -> dict[str, _Entry]:
    found: dict[str, _Entry] = {}
    for step in version.elements.values():
        kind = step.properties.get("pathway.reminder", "").strip()
        if not kind or kind in found:
            continue
        props = {
            name: value.strip()
            for name, value in step.properties.items()
            if name.startswith("pathway.reminder.") or name == "pathway.escalate"
        }
        if "pathway.reminder.to" in props:
            props["pathway.reminder.to"] = ", ".join(
                sorted(step.reminder.to if step.reminder else ())
            )
        found[kind] = _Entry(kind, step.id, props)
    return found


def _variances(version: Version) -> dict[str, _Entry]:
    found: dict[str, _Entry] = {}
    for step in version.elements.values():
        for rule in step.variances:
            prefix = f"pathway.variance.{rule.code}."
            props = {"condition": " ".join(rule.condition.split())}
            props.update(
                (name[len(prefix) :], value.strip())
                for name, value in step.properties.items()
                if name.startswith(prefix)
            )
            found.setdefault(rule.code, _Entry(rule.code, step.id, props))
    return found


def _deadlines(version: Version) -> dict[str, _Entry]:
    found: dict[str, _Entry] = {}
    for step in version.elements.values():
        if step.deadline:
            found.setdefault(step.deadline.strip(), _Entry(step.deadline.strip(), step.id, {}))
    return found


def _at(version: Version, element: str) -> str:
    step = version.elements.get(element)
    return called(step) if step is not None else element


def _aspects(before: _Entry, after: _Entry, labels: dict[str, str]) -> tuple[list[str], list[str]]:
    names = [
        n
        for n in dict.fromkeys([*before.props, *after.props])
        if before.props.get(n) != after.props.get(n)
    ]
    words = [
        f"{labels.get(n, n)} {quoted(before.props.get(n))} → {quoted(after.props.get(n))}"
        for n in names
    ]
    return names, words


def _compare(
    what: str,
    kinds: tuple[ChangeKind, ChangeKind, ChangeKind, ChangeKind],
    old: dict[str, _Entry],
    new: dict[str, _Entry],
    *,
    old_v: Version,
    new_v: Version,
    pairs: dict[str, str],
    labels: dict[str, str],
    same: Callable[[_Entry, _Entry], bool],
) -> list[Change]:
    """Compare contract ids: added, removed, renamed (``same`` says an id gone and a new one
    are one renamed), changed."""
    added, removed, renamed, changed = kinds
    changes: list[Change] = []
    renames: dict[str, _Entry] = {}
    for entry in old.values():
        if entry.key in new:
            continue
        heirs = [
            e
            for e in new.values()
            if e.key not in old and e.element == pairs.get(entry.element) and same(entry, e)
        ]
        if len(heirs) == 1 and heirs[0].key not in renames:
            renames[heirs[0].key] = entry
            changes.append(
                Change(
                    renamed,
                    heirs[0].element,
                    f"{what} {entry.key} is now {heirs[0].key} (at {_at(new_v, heirs[0].element)})",
                    breaking=True,
                    before=entry.key,
                    after=heirs[0].key,
                )
            )
        else:
            changes.append(
                Change(
                    removed,
                    entry.element,
                    f"{what} {entry.key} removed (was at {_at(old_v, entry.element)})",
                    breaking=True,
                    before=entry.key,
                )
            )
    for entry in new.values():
        was = old.get(entry.key) or renames.get(entry.key)
        if was is None:
            details = "; ".join(f"{labels.get(n, n)} {quoted(v)}" for n, v in entry.props.items())
            changes.append(
                Change(
                    added,
                    entry.element,
                    f"New {what.lower()} {entry.key} at {_at(new_v, entry.element)}"
                    + (f": {details}" if details else ""),
                    after=entry.key,
                )
            )
            continue
        names, words = _aspects(was, entry, labels)
        if pairs.get(was.element) != entry.element:
            words.append(f"now at {_at(new_v, entry.element)} (was at {_at(old_v, was.element)})")
        if words:
            before: dict[str, Json] = {n: was.props.get(n) for n in names}
            after: dict[str, Json] = {n: entry.props.get(n) for n in names}
            changes.append(
                Change(
                    changed,
                    entry.element,
                    f"{what} {entry.key}: " + "; ".join(words),
                    before=before | {"element": was.element},
                    after=after | {"element": entry.element},
                )
            )
    return changes


def _messages(old_v: Version, new_v: Version) -> list[Change]:
    changes = [
        Change(
            ChangeKind.MESSAGE_REMOVED,
            name,
            f"Message {name} removed: reports sent as {name} are refused",
            breaking=True,
            before=name,
        )
        for name in old_v.messages
        if name not in new_v.messages
    ]
    return changes + [
        Change(ChangeKind.MESSAGE_ADDED, name, f"New message {name}", after=name)
        for name in new_v.messages
        if name not in old_v.messages
    ]


def _route(flow: Flow, version: Version) -> str:
    def end(element: str) -> str:
        step: Step | None = version.elements.get(element)
        return quoted(step.name) if step is not None and step.name else element

    label = f"{quoted(flow.name)} " if flow.name else ""
    return f"Route {label}from {end(flow.source)} to {end(flow.target)}"


def _conditions(old_v: Version, new_v: Version) -> list[Change]:
    changes = []
    for flow_id in dict.fromkeys([*new_v.flows, *old_v.flows]):
        before, after = old_v.flows.get(flow_id), new_v.flows.get(flow_id)
        old_c = before.condition if before else None
        new_c = after.condition if after else None
        if old_c == new_c:
            continue
        route = _route(after, new_v) if after else _route(before, old_v) if before else flow_id
        changes.append(
            Change(
                ChangeKind.CONDITION_CHANGED,
                flow_id,
                f"{route}: taken when {old_c or 'always'} → {new_c or 'always'}",
                before=old_c,
                after=new_c,
            )
        )
    return changes


def contract_changes(old_v: Version, new_v: Version, pairs: dict[str, str]) -> list[Change]:
    """Reminders, variances, deadlines, messages and conditions that changed."""
    changes = _compare(
        "Reminder",
        (
            ChangeKind.REMINDER_ADDED,
            ChangeKind.REMINDER_REMOVED,
            ChangeKind.REMINDER_RENAMED,
            ChangeKind.REMINDER_CHANGED,
        ),
        _reminders(old_v),
        _reminders(new_v),
        labels=_REMINDER_LABELS,
        same=lambda _old, _new: True,
        old_v=old_v,
        new_v=new_v,
        pairs=pairs,
    )
    changes += _compare(
        "Variance",
        (
            ChangeKind.VARIANCE_ADDED,
            ChangeKind.VARIANCE_REMOVED,
            ChangeKind.VARIANCE_RENAMED,
            ChangeKind.VARIANCE_CHANGED,
        ),
        _variances(old_v),
        _variances(new_v),
        labels=_VARIANCE_LABELS,
        same=lambda old, new: old.props.get("condition") == new.props.get("condition"),
        old_v=old_v,
        new_v=new_v,
        pairs=pairs,
    )
    changes += _compare(
        "Deadline",
        (
            ChangeKind.DEADLINE_ADDED,
            ChangeKind.DEADLINE_REMOVED,
            ChangeKind.DEADLINE_REMOVED,
            ChangeKind.PROPERTY_CHANGED,
        ),
        _deadlines(old_v),
        _deadlines(new_v),
        labels={},
        same=lambda _old, _new: True,
        old_v=old_v,
        new_v=new_v,
        pairs=pairs,
    )
    return changes + _messages(old_v, new_v) + _conditions(old_v, new_v)
