"""Request and response bodies of the API (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

import engine


def identifier(value: str) -> str:
    """An id, a filter or a name: no control, invisible or bidirectional character."""
    problem = engine.identifier_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def free_text(value: str) -> str:
    """A reason or a note: tabs and line breaks, but no other control character."""
    problem = engine.free_text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def patient_ref(value: str) -> str:
    """A patient reference in its one spelling (NFKC, trimmed), never blank."""
    return engine.normalise_patient_ref(value)


def json_text(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Form data: field names are identifiers and every text in it is free text. The error
    names the field inside ``data`` (``data.specialty``), not just ``data``."""
    if value is not None and (found := engine.json_problem(value, "data")) is not None:
        where, problem = found
        raise PydanticCustomError("text_refused", "{problem}", {"problem": problem, "field": where})
    return value


Identifier = Annotated[str, AfterValidator(identifier)]
FreeText = Annotated[str, AfterValidator(free_text)]
PatientRef = Annotated[str, AfterValidator(patient_ref)]
FormData = Annotated[dict[str, Any], AfterValidator(json_text)]


class Strict(BaseModel):
    """A request body that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class NewCase(Strict):
    pathway: Identifier = Field(min_length=1, max_length=200, examples=["lumbar_radiculopathy"])
    patient_ref: PatientRef = Field(
        min_length=1,
        max_length=engine.PATIENT_REF_MAX,
        description="An MRN or pseudonymous id: never a name. Stored in one spelling: Unicode "
        "NFKC, surrounding space trimmed; blank, invisible, bidirectional and control "
        "characters are refused.",
        examples=["MRN-000123"],
    )
    data: FormData | None = Field(
        default=None,
        description="Values of the pathway's first step (intake): when given, that step is "
        "completed in the same request, by the caller.",
    )


class TaskData(Strict):
    data: FormData = Field(default_factory=dict)


class Reason(Strict):
    reason: FreeText = Field(min_length=1, max_length=2000)


class Amendment(Strict):
    data: FormData = Field(description="The fields to correct and their new values.")
    reason: FreeText = Field(min_length=1, max_length=2000)


class NewNote(Strict):
    text: FreeText = Field(min_length=1, max_length=engine.MAX_NOTE)


class Reschedule(Strict):
    due_at: AwareDatetime
    reason: FreeText = Field(min_length=1, max_length=2000)


class Record(BaseModel):
    """An answer read straight from an engine record (a dataclass), attribute by attribute."""

    model_config = ConfigDict(from_attributes=True)


class FormFieldOut(Record):
    id: str
    label: str
    type: str
    required: bool
    min: int | None = None
    max: int | None = None
    minlength: int | None = None
    maxlength: int | None = None
    not_future: bool | None = None
    options: list[dict[str, str]] | None = None


class Evidence(Record):
    rationale: str | None
    source: str | None
    quote: str | None


def _none_when_empty(value: Any) -> Any:
    return value or None


# The engine gives evidence as a dict, empty when there is none; the API says null then.
MaybeEvidence = Annotated[Evidence | None, BeforeValidator(_none_when_empty)]

STEP_ROLE = (
    "The role that does the step (a pathway may name several, joined by commas); "
    "null when the diagram names none."
)


class ReadyTaskOut(Record):
    id: str
    name: str | None
    role: str | None = Field(description=STEP_ROLE)
    form: list[FormFieldOut]
    evidence: MaybeEvidence
    urgent: bool
    due_at: datetime | None
    overdue: bool


class DeadlineOut(Record):
    kind: str
    step: str
    due_at: datetime
    status: str = Field(description="waiting, or due when its time has passed")
    latest_at: datetime | None = Field(
        default=None,
        description="The latest time this deadline may be moved to on this case: the "
        "diagram's pathway.deadline.latest worked out on its data, or its due time when it "
        "may never move later (pathway.deadline.later = never), whichever is earlier; null "
        "when nothing bounds it or the limit cannot be worked out. A move to a later time "
        "is refused.",
    )
    earliest_at: datetime | None = Field(
        default=None,
        description="pathway.deadline.earliest worked out on this case's data: moving the "
        "deadline earlier needs the role the diagram names (pathway.deadline.earlier.role) "
        "and records its variance; null when there is no such limit or it cannot be worked "
        "out. (Whatever the limits, no deadline moves into the past.)",
    )


class ReminderOut(Record):
    kind: str
    step: str
    recipients: list[str]
    due_at: datetime
    raised_at: datetime
    status: engine.ReminderStatus
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None


class ReminderRecordOut(ReminderOut):
    id: int
    case_id: str
    next_attempt_at: datetime | None = None


class ReminderPageOut(Record):
    items: list[ReminderRecordOut]
    total: int
    limit: int
    offset: int


class VarianceOut(Record):
    code: str
    step: str
    rule: str | None
    evidence: MaybeEvidence
    at: datetime


class RecordEntryOut(Record):
    step: str = Field(description="The step (or message) the value was entered at.")
    field: str
    value: Any = Field(description="The value as it now stands; null when not recorded.")
    entered_by: str | None = Field(description="Who entered it (the token's sub).")
    entered_at: datetime
    recorded: bool = Field(
        description="False for a step completed before Pathway kept the values entered."
    )


class DecisionOut(Record):
    step: str
    decision: str = Field(description="The decision's id in the diagram (a DMN decision).")
    outputs: dict[str, Any]
    rule: str | None = Field(description="The id of the rule that matched.")
    rule_text: str | None = Field(description="What that rule says.")
    at: datetime


class CaseOut(Record):
    id: str
    pathway: str
    definition_version: int
    patient_ref: str | None
    status: engine.CaseStatus
    version: int
    escalated: bool
    end: str | None
    ready_tasks: list[ReadyTaskOut]
    deadlines: list[DeadlineOut]
    reminders: list[ReminderOut]
    variances: list[VarianceOut]
    created_at: datetime
    updated_at: datetime
    cancel_reason: str | None
    record: list[RecordEntryOut] = Field(
        description="The clinical record: every field entered, as it now stands, with who "
        "entered it and when."
    )
    decisions: list[DecisionOut] = Field(description="Every decision taken, oldest first.")


class CaseSummaryOut(Record):
    id: str
    pathway: str
    patient_ref: str | None
    status: engine.CaseStatus
    version: int
    escalated: bool
    overdue: bool
    end: str | None
    created_at: datetime
    updated_at: datetime


class CasePageOut(Record):
    items: list[CaseSummaryOut]
    total: int
    limit: int
    offset: int


class EventOut(Record):
    at: datetime
    type: engine.EventType
    step: str | None
    actor: str | None = Field(description="Who did it (the token's sub); null for the engine.")
    detail: dict[str, Any]
    evidence: MaybeEvidence = Field(description="Why the step is there.")


class WorkItemOut(Record):
    case_id: str
    patient_ref: str | None
    pathway: str
    task: str
    name: str | None
    role: str | None = Field(description=STEP_ROLE)
    urgent: bool
    due_at: datetime | None
    overdue: bool
    ready_at: datetime
    escalated: bool = Field(description="The case is escalated (past the 3-month limit).")
    claimed_by: str | None = Field(description="Who said they are working it (a signpost).")
    claimed_at: datetime | None


class WorkPageOut(Record):
    items: list[WorkItemOut]
    total: int
    limit: int
    offset: int


class ClaimOut(BaseModel):
    case_id: str
    task: str
    claimed_by: str | None = Field(description="Who holds the step now; null once released.")
    claimed_at: datetime | None


class Health(BaseModel):
    status: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, str]] | None = Field(
        default=None, description="Each field refused and why: at most 50, the first ones."
    )
    more_errors: int | None = Field(
        default=None, description="How many more errors there were than are listed."
    )
    ready_tasks: list[str] | None = None
    current_version: int | None = None
    existing_case_id: str | None = None
