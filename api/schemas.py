"""Request and response bodies of the API (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

import engine


class Strict(BaseModel):
    """A request body that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


class NewCase(Strict):
    pathway: str = Field(min_length=1, max_length=200, examples=["lumbar_radiculopathy"])
    patient_ref: str = Field(
        min_length=1,
        max_length=64,
        description="An MRN or pseudonymous id: never a name.",
        examples=["MRN-000123"],
    )
    data: dict[str, Any] | None = Field(
        default=None,
        description="Values of the pathway's first step (intake): when given, that step is "
        "completed in the same request, by the caller.",
    )


class TaskData(Strict):
    data: dict[str, Any] = Field(default_factory=dict)


class Reason(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class Reschedule(Strict):
    due_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)


class FormFieldOut(BaseModel):
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


class Evidence(BaseModel):
    rationale: str | None
    source: str | None
    quote: str | None


class ReadyTaskOut(BaseModel):
    id: str
    name: str | None
    role: str | None
    form: list[FormFieldOut]
    evidence: Evidence | None
    urgent: bool
    due_at: datetime | None
    overdue: bool


class DeadlineOut(BaseModel):
    kind: str
    step: str
    due_at: datetime
    status: str


class ReminderOut(BaseModel):
    kind: str
    step: str
    recipients: list[str]
    due_at: datetime
    raised_at: datetime
    status: str = Field(description="pending, enqueued, sending, sent, failed or cancelled")
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None


class ReminderRecordOut(ReminderOut):
    id: int
    case_id: str
    next_attempt_at: datetime | None = None


class ReminderPageOut(BaseModel):
    items: list[ReminderRecordOut]
    total: int
    limit: int
    offset: int


class VarianceOut(BaseModel):
    code: str
    step: str
    rule: str | None
    evidence: Evidence | None
    at: datetime


class CaseOut(BaseModel):
    id: str
    pathway: str
    definition_version: int
    patient_ref: str | None
    status: Literal["active", "ended", "cancelled"]
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

    @classmethod
    def of(cls, view: engine.CaseView) -> CaseOut:
        """Shape an engine case view for the API."""
        return cls(
            id=view.id,
            pathway=view.pathway,
            definition_version=view.definition_version,
            patient_ref=view.patient_ref,
            status=view.status,  # type: ignore[arg-type]
            version=view.version,
            escalated=view.escalated,
            end=view.end,
            ready_tasks=[
                ReadyTaskOut(
                    id=t.id,
                    name=t.name,
                    role=t.role,
                    form=[FormFieldOut(**f) for f in t.form],
                    evidence=Evidence(**t.evidence) if t.evidence else None,
                    urgent=t.urgent,
                    due_at=t.due_at,
                    overdue=t.overdue,
                )
                for t in view.ready_tasks
            ],
            deadlines=[DeadlineOut(**vars(d)) for d in view.deadlines],
            reminders=[ReminderOut(**vars(r)) for r in view.reminders],
            variances=[
                VarianceOut(
                    code=v.code,
                    step=v.step,
                    rule=v.rule,
                    evidence=Evidence(**v.evidence) if v.evidence else None,
                    at=v.at,
                )
                for v in view.variances
            ],
            created_at=view.created_at,
            updated_at=view.updated_at,
            cancel_reason=view.cancel_reason,
        )


class CaseSummaryOut(BaseModel):
    id: str
    pathway: str
    patient_ref: str | None
    status: Literal["active", "ended", "cancelled"]
    version: int
    escalated: bool
    overdue: bool
    end: str | None
    created_at: datetime
    updated_at: datetime


class CasePageOut(BaseModel):
    items: list[CaseSummaryOut]
    total: int
    limit: int
    offset: int


class EventOut(BaseModel):
    at: datetime
    type: str
    step: str | None
    actor: str | None = Field(description="Who did it (the token's sub); null for the engine.")
    detail: dict[str, Any]
    evidence: Evidence | None = Field(description="Why the step is there.")


class WorkItemOut(BaseModel):
    case_id: str
    patient_ref: str | None
    pathway: str
    task: str
    name: str | None
    role: str | None
    urgent: bool
    due_at: datetime | None
    overdue: bool
    ready_at: datetime


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
    errors: list[dict[str, str]] | None = None
    ready_tasks: list[str] | None = None
    current_version: int | None = None
    existing_case_id: str | None = None
