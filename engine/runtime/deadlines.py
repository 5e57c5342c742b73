"""Moving a deadline: a person sets a waiting timer to a new due time, with a reason, within
the limits the diagram writes on the timer (``pathway.deadline.*``, see ``steps``): never into
the past, never past its latest, never later when it may only come earlier, and earlier than
its earliest only by the role it names, recording the variance it names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState

from ..clock import Clock, clinic_zone
from ..diagrams import to_utc
from ..errors import DeadlineNotFound, ExecutionFailed, FieldError, InvalidTaskData
from ..sandbox import expressions
from ..steps import Step
from ..vocabulary import EventType
from .records import DeadlineBounds
from .tree import due_of, timer_definition, timer_step

if TYPE_CHECKING:
    from .run import CaseRun

NOW_TOLERANCE = timedelta(minutes=1)
"""A due time this far in the past still means "now" (a clock a little behind, the time a
request takes); further back it is refused."""


def reschedule(run: CaseRun, kind: str, due_at: datetime, reason: str) -> None:
    """Move the waiting timer(s) of a deadline to a new due time, with the reason."""
    now = run.clock.now()
    if due_at < now - NOW_TOLERANCE:
        raise _refused(f"must not be in the past (it is {_local(now, run.clock)} now)")
    moved = []
    for task, step in _deadline_tasks(run):
        if kind not in (step.deadline, step.id):
            continue
        _within_limits(run, step, task, kind=kind, due_at=due_at)
        value = task.internal_data.get("event_value")
        if isinstance(value, dict):
            previous = value.get("next")
            value["next"] = due_at.isoformat()
        else:
            previous = value
            task.internal_data["event_value"] = due_at.isoformat()
        moved.append((step, previous))
    if not moved:
        raise DeadlineNotFound(
            run.case_id, kind, sorted({t.deadline or t.step for t in run.waiting_timers()})
        )
    for step, previous in moved:
        run.journal.event(
            EventType.DEADLINE_RESCHEDULED,
            step,
            actor=run.actor,
            deadline=kind,
            previous_due_at=previous,
            due_at=due_at.isoformat(),
            reason=reason,
        )
    run.run_engine()


def _refused(message: str) -> InvalidTaskData:
    return InvalidTaskData("reschedule", [FieldError("due_at", message)])


def _local(when: datetime, clock: Clock) -> str:
    """A time as the clinic reads it."""
    return when.astimezone(clinic_zone(clock)).strftime("%Y-%m-%d %H:%M %Z")


def _deadline_tasks(run: CaseRun) -> Iterator[tuple[Any, Step]]:
    """The waiting timers that keep a deadline, each with its step (a timer waiting unarmed
    is no deadline yet: only its report arms it)."""
    for task in run.workflow.get_tasks(state=TaskState.WAITING):
        if timer_definition(task.task_spec) is None:
            continue
        step = run.pathway.step(timer_step(task.task_spec, run.pathway))
        if step is not None and due_of(task) is not None:
            yield task, step


def deadline_bounds(run: CaseRun) -> dict[str, DeadlineBounds]:
    """What the limits of every waiting deadline come to on this case, by timer task id: the
    bounds a move is checked against (a limit that cannot be worked out is left unknown)."""
    return {
        str(task.id): bounds(run, step, task, strict=False) for task, step in _deadline_tasks(run)
    }


def bounds(run: CaseRun, step: Step, task: Any, *, strict: bool = True) -> DeadlineBounds:
    """The times a deadline's limits come to on this case's data. ``strict``: a limit that
    cannot be worked out fails the move (ExecutionFailed); otherwise it is left unknown."""
    limits = step.limits

    def limit(expression: str | None) -> datetime | None:
        if not expression:
            return None
        try:
            return _limit(run, step, task, expression)
        except ExecutionFailed:
            if strict:
                raise
            return None

    latest = limit(limits.latest)
    return DeadlineBounds(
        latest=latest,
        current=None if limits.later else due_of(task),
        earliest=limit(limits.earliest),
        latest_unknown=bool(limits.latest) and latest is None,
    )


def _limit(run: CaseRun, step: Step, task: Any, expression: str) -> datetime:
    try:
        value = expressions.evaluate(expression, names=task.data, clock=run.clock)
    except expressions.ExpressionFailed as exc:
        raise ExecutionFailed(run.case_id, step.id, f"deadline limit: {exc.reason}") from None
    try:
        return to_utc(value, zone=clinic_zone(run.clock))
    except (TypeError, ValueError):
        raise ExecutionFailed(
            run.case_id,
            step.id,
            f"deadline limit: {expression} gives a {type(value).__name__}, not a date",
        ) from None


def _within_limits(run: CaseRun, step: Step, task: Any, *, kind: str, due_at: datetime) -> None:
    """Refuse a move past the guideline's limits; record a move earlier than its earliest
    as the variance the diagram names, by the role it names."""
    limits = step.limits
    found = bounds(run, step, task)
    quote = f' The guideline: "{step.evidence.quote}"' if step.evidence.quote else ""
    if found.latest is not None and due_at > found.latest:
        why = f" {limits.latest_rule}" if limits.latest_rule else ""
        raise _refused(
            f"must not be later than {_local(found.latest, run.clock)} for {kind}.{why}{quote}"
        )
    if found.current is not None and due_at > found.current:
        raise _refused(
            f"{kind} may be brought forward, never moved later than it is "
            f"({_local(found.current, run.clock)}).{quote}"
        )
    if found.earliest is not None and due_at < found.earliest:
        if limits.earlier_role:
            run.check_roles(limits.earlier_role, f"{kind} earlier")
        if limits.earlier_variance:
            run.journal.variance(step, code=limits.earlier_variance, rule=limits.earlier_rule)
