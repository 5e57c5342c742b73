"""What changed in the form of a step that both versions have.

Breaking, because a client or scenario file that completes the step as before is refused
(the form refuses missing required fields and fields it does not know): a required field
added, a field made required, a field removed, a field's type changed, and a choice removed
from a choice field (data naming it is refused, and a rule that tests for it can no longer
match). Not breaking: a new optional field, a field made optional, new labels, new choices,
new limits (values already entered stay; new entries are checked against the new limits).
"""

from __future__ import annotations

from ..forms import Form, FormField
from ..steps import Step
from ..vocabulary import ChangeKind
from .model import Change
from .wording import field_type, limits_data, limits_words, titled


def _a(words: str) -> str:
    return words if words in ("text", "yes/no") else f"a {words}"


def _called(form_field: FormField) -> str:
    return f'"{form_field.label}" ({form_field.id})'


def _choices(old: FormField, new: FormField, *, step: str, where: str) -> list[Change]:
    changes: list[Change] = []
    before, after = dict(old.options), dict(new.options)
    element = f"{step}.{new.id}"
    for option, name in new.options:
        if option not in before:
            changes.append(
                Change(
                    ChangeKind.CHOICE_ADDED,
                    element,
                    f'{where}: {_called(new)} has a new choice "{name}" ({option})',
                    after=option,
                )
            )
        elif before[option] != name:
            changes.append(
                Change(
                    ChangeKind.CHOICE_RENAMED,
                    element,
                    f'{where}: {_called(new)} choice {option} now reads "{name}" '
                    f'(was "{before[option]}")',
                    before=before[option],
                    after=name,
                )
            )
    for option, name in old.options:
        if option not in after:
            changes.append(
                Change(
                    ChangeKind.CHOICE_REMOVED,
                    element,
                    f'{where}: {_called(new)} no longer offers "{name}" ({option})',
                    breaking=True,
                    before=option,
                )
            )
    return changes


def _field(old: FormField, new: FormField, *, step: str, where: str) -> list[Change]:
    changes: list[Change] = []
    element = f"{step}.{new.id}"
    if old.label != new.label:
        changes.append(
            Change(
                ChangeKind.FIELD_RENAMED,
                element,
                f'{where}: field {new.id} now reads "{new.label}" (was "{old.label}")',
                before=old.label,
                after=new.label,
            )
        )
    if old.type != new.type:
        changes.append(
            Change(
                ChangeKind.FIELD_TYPE_CHANGED,
                element,
                f"{where}: {_called(new)} is now a {field_type(new)} (was a {field_type(old)})",
                breaking=True,
                before=old.type,
                after=new.type,
            )
        )
    if new.required and not old.required:
        changes.append(
            Change(
                ChangeKind.FIELD_NOW_REQUIRED,
                element,
                f"{where}: {_called(new)} is now required",
                breaking=True,
                before=False,
                after=True,
            )
        )
    elif old.required and not new.required:
        changes.append(
            Change(
                ChangeKind.FIELD_NOW_OPTIONAL,
                element,
                f"{where}: {_called(new)} is now optional",
                before=True,
                after=False,
            )
        )
    if limits_data(old) != limits_data(new):
        changes.append(
            Change(
                ChangeKind.FIELD_LIMITS_CHANGED,
                element,
                f"{where}: {_called(new)} limits {limits_words(old)} → {limits_words(new)}",
                before=dict(limits_data(old)),
                after=dict(limits_data(new)),
            )
        )
    if old.type == new.type == "enum":
        changes += _choices(old, new, step=step, where=where)
    return changes


def field_changes(old: Step, new: Step) -> list[Change]:
    """What changed in a step's form between two versions of the step."""
    where = titled(new)
    before = {f.id: f for f in (old.form or Form()).fields}
    after = {f.id: f for f in (new.form or Form()).fields}
    changes: list[Change] = []
    for form_field in after.values():
        element = f"{new.id}.{form_field.id}"
        was = before.get(form_field.id)
        if was is not None:
            changes += _field(was, form_field, step=new.id, where=where)
            continue
        required = "required" if form_field.required else "optional"
        limits = limits_words(form_field)
        details = field_type(form_field) + ("" if limits == "no limits" else f", {limits}")
        changes.append(
            Change(
                ChangeKind.FIELD_ADDED,
                element,
                f"{where}: new {required} field {_called(form_field)} ({details})",
                breaking=form_field.required,
                after=form_field.describe(),
            )
        )
    for form_field in before.values():
        if form_field.id not in after:
            changes.append(
                Change(
                    ChangeKind.FIELD_REMOVED,
                    f"{new.id}.{form_field.id}",
                    f"{where}: field {_called(form_field)} removed",
                    breaking=True,
                    before=form_field.describe(),
                )
            )
    return changes
