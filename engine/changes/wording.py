"""The words a change is told in: durations, timer expressions, elements, form limits."""

from __future__ import annotations

import re

from ..forms import FormField
from ..steps import Step

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_CYCLE = re.compile(r"^R(?P<times>\d*)/(?:(?P<start>[^/]+)/)?(?P<every>P[^/]+)$")
_QUOTED = re.compile(r"(?P<q>[\"'])(?P<body>[^\"']*)(?P=q)")
_ADD = re.compile(r"add_(?P<unit>days|weeks|months)\(\s*(?P<name>\w+)\s*,\s*(?P<n>\d+)\s*\)")
_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")

_FIELD_TYPES = {
    "string": "text",
    "long": "whole number",
    "boolean": "yes/no",
    "date": "date",
    "enum": "choice",
}
_NOUNS = {
    "process": "pathway",
    "subProcess": "stage",
    "callActivity": "stage",
    "businessRuleTask": "decision step",
    "startEvent": "start",
    "endEvent": "end",
    "exclusiveGateway": "branch point",
    "inclusiveGateway": "branch point",
    "eventBasedGateway": "branch point",
    "complexGateway": "branch point",
    "parallelGateway": "parallel split or join",
}
_TIMER_TYPES = {"timeDuration": "after", "timeDate": "on", "timeCycle": "every"}


def plural(count: str, unit: str) -> str:
    """Write a count of a unit: "1 day", "14 days"."""
    return f"{count} {unit[:-1] if count == '1' else unit}"


def listed(parts: list[str]) -> str:
    """Join words as a list is read: "a", "a and b", "a, b and c"."""
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def duration_words(text: str) -> str | None:
    """Say an ISO 8601 duration or cycle in words (P14D: 14 days), or None if it is neither."""
    text = text.strip()
    if (cycle := _CYCLE.match(text)) is not None:
        every = duration_words(cycle["every"])
        if every is None:
            return None
        times = cycle["times"]
        words = f"every {every}" + (f", {plural(times, 'times')}" if times else "")
        return words + (f" from {cycle['start']}" if cycle["start"] else "")
    found = _DURATION.match(text)
    if found is None:
        return None
    return listed([plural(found[u], u) for u in _UNITS if found[u]])


def expression_words(expression: str) -> str:
    """Say a timer or date expression with its durations in words: ``"P14D" if disabling_pain
    else null`` reads ``14 days if disabling_pain else null``."""
    body = " ".join(expression.split())
    bare = duration_words(body)
    if bare is not None:
        return bare

    def quoted(match: re.Match[str]) -> str:
        return duration_words(match["body"]) or match[0]

    def added(match: re.Match[str]) -> str:
        return f"{match['name']} + {plural(match['n'], match['unit'])}"

    return _ADD.sub(added, _QUOTED.sub(quoted, body))


def durations_in(expression: str) -> list[str]:
    """The ISO durations an expression names, in order (a bare literal is one)."""
    body = expression.strip()
    if duration_words(body) is not None:
        return [body]
    return [m["body"] for m in _QUOTED.finditer(body) if duration_words(m["body"]) is not None]


def timer_words(timer: tuple[str, str]) -> str:
    """Say a timer (its type and expression): ``after 14 days``, ``on symptom_onset + 3
    months``."""
    kind, expression = timer
    return f"{_TIMER_TYPES.get(kind, kind)} {expression_words(expression)}"


def noun(step: Step) -> str:
    """What a clinician calls this kind of element."""
    if step.kind in ("boundaryEvent", "intermediateCatchEvent", "startEvent") and step.timer:
        return "timer"
    if step.reminder is not None:
        return "reminder event"
    if step.message is not None and step.kind != "intermediateThrowEvent":
        return "message event"
    if step.kind.endswith("Event"):
        return _NOUNS.get(step.kind, "event")
    return _NOUNS.get(step.kind, "step")


def called(step: Step) -> str:
    """Name an element: its name in quotes with its id, or its id alone."""
    return f'"{step.name}" ({step.id})' if step.name else step.id


def titled(step: Step) -> str:
    """Name an element with its noun, capitalised: ``Step "Intake" (intake)``."""
    text = f"{noun(step)} {called(step)}"
    return text[0].upper() + text[1:]


def field_type(form_field: FormField) -> str:
    """Say a form field's type."""
    return _FIELD_TYPES.get(form_field.type, form_field.type)


def limits_words(form_field: FormField) -> str:
    """Say the limits on what a field accepts (``0 to 10``, ``at most 100 characters``)."""
    parts = []
    low, high = form_field.minimum, form_field.maximum
    if low is not None and high is not None:
        parts.append(f"{low} to {high}")
    elif low is not None:
        parts.append(f"at least {low}")
    elif high is not None:
        parts.append(f"at most {high}")
    short, long = form_field.min_length, form_field.max_length
    if short is not None and long is not None:
        parts.append(f"{short} to {long} characters")
    elif short is not None:
        parts.append(f"at least {plural(str(short), 'characters')}")
    elif long is not None:
        parts.append(f"at most {plural(str(long), 'characters')}")
    if form_field.not_future:
        parts.append("not in the future")
    return ", ".join(parts) or "no limits"


def limits_data(form_field: FormField) -> dict[str, int | bool | None]:
    """The limits on what a field accepts, as plain data."""
    return {
        "min": form_field.minimum,
        "max": form_field.maximum,
        "minlength": form_field.min_length,
        "maxlength": form_field.max_length,
        "not_future": form_field.not_future,
    }


def quoted(value: str | None) -> str:
    """Quote a value for a sentence; say "none" for no value."""
    return "none" if value is None or value == "" else f'"{value}"'


def expression_shape(expression: str) -> str:
    """An expression with each duration it names replaced by one mark, to tell whether two
    expressions differ only in their durations."""
    body = " ".join(expression.split())
    if duration_words(body) is not None:
        return "§"
    return _QUOTED.sub(lambda m: "§" if duration_words(m["body"]) else m[0], body)
