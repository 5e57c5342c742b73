"""Step forms: the fields a person fills in to complete a step, and their validation.

Forms are written in the diagram as Camunda Modeler writes them (``camunda:formData`` with
``camunda:formField``, ``camunda:validation`` constraints and ``camunda:value`` options), so
a modeler edits them in the properties panel and bpmn.io keeps them when it saves.

Field types: ``string``, ``long`` (integer), ``boolean``, ``date`` (ISO ``YYYY-MM-DD``),
``enum``. Constraints: ``required``, ``min``, ``max`` (long), ``minlength``, ``maxlength``
(string), ``not_future`` (date).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .clock import CLINICAL_RANGE, in_clinical_range
from .errors import FieldError, InvalidTaskData
from .inputs import free_text_problem

MAX_UNKNOWN_LISTED = 20
"""Unknown fields named one by one in a refusal; the rest are counted, so that a body of a
hundred thousand made-up fields costs no more than one of twenty."""

FIELD_TYPES = ("string", "long", "boolean", "date", "enum")
CONSTRAINTS = ("required", "min", "max", "minlength", "maxlength", "not_future", "readonly")


@dataclass(frozen=True)
class FormField:
    """One field of a step's form."""

    id: str
    label: str
    type: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    not_future: bool = False
    options: tuple[tuple[str, str], ...] = ()

    def describe(self) -> dict[str, Any]:
        """Return the field as plain data, for an API or a form renderer."""
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "type": self.type,
            "required": self.required,
        }
        for key, value in (
            ("min", self.minimum),
            ("max", self.maximum),
            ("minlength", self.min_length),
            ("maxlength", self.max_length),
        ):
            if value is not None:
                out[key] = value
        if self.not_future:
            out["not_future"] = True
        if self.options:
            out["options"] = [{"id": i, "name": n} for i, n in self.options]
        return out


@dataclass(frozen=True)
class Form:
    """The fields of one step."""

    fields: tuple[FormField, ...] = field(default_factory=tuple)

    def field_ids(self) -> list[str]:
        """Return the field ids in form order."""
        return [f.id for f in self.fields]

    def describe(self) -> list[dict[str, Any]]:
        """Return the form as plain data."""
        return [f.describe() for f in self.fields]


def _check_value(spec: FormField, value: Any, *, today: date) -> str | None:
    if spec.type == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if spec.type == "long":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        if spec.minimum is not None and value < spec.minimum:
            return f"must be at least {spec.minimum}"
        if spec.maximum is not None and value > spec.maximum:
            return f"must be at most {spec.maximum}"
        return None
    if spec.type == "date":
        if not isinstance(value, str):
            return "must be a date written YYYY-MM-DD"
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            return "must be a date written YYYY-MM-DD"
        if len(value) != 10:
            return "must be a date written YYYY-MM-DD"
        if not in_clinical_range(parsed):
            return f"must be a date {CLINICAL_RANGE}"
        if spec.not_future and parsed > today:
            return f"must not be in the future (today is {today.isoformat()})"
        return None
    if spec.type == "enum":
        allowed = [option for option, _ in spec.options]
        if value not in allowed:
            return "must be one of " + ", ".join(allowed)
        return None
    if not isinstance(value, str):
        return "must be text"
    if (problem := free_text_problem(value)) is not None:
        return problem
    if spec.min_length is not None and len(value.strip()) < spec.min_length:
        return f"must have at least {spec.min_length} character(s)"
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"must have at most {spec.max_length} characters"
    return None


def validate(form: Form, data: Any, *, task: str, today: date) -> dict[str, Any]:
    """Check data against a form; return the accepted values or raise InvalidTaskData."""
    if not isinstance(data, dict):
        raise InvalidTaskData(task, [FieldError("data", "must be an object of field values")])
    known = {f.id: f for f in form.fields}
    unknown = [name for name in data if name not in known]
    listed = ", ".join(known)
    errors = [
        FieldError(str(name), f"is not a field of {task}; fields: {listed}")
        for name in unknown[:MAX_UNKNOWN_LISTED]
    ]
    if len(unknown) > MAX_UNKNOWN_LISTED:
        more = len(unknown) - MAX_UNKNOWN_LISTED
        errors.append(FieldError("data", f"and {more} more field(s) that {task} does not have"))
    accepted: dict[str, Any] = {}
    for spec in form.fields:
        value = data.get(spec.id)
        if value is None:
            if spec.required:
                errors.append(FieldError(spec.id, "is required"))
            continue
        problem = _check_value(spec, value, today=today)
        if problem:
            errors.append(FieldError(spec.id, problem))
        else:
            accepted[spec.id] = value
    if errors:
        raise InvalidTaskData(task, errors)
    return accepted
