"""The engine's errors: one small hierarchy, each carrying what a person needs to act.

PathwayError
├── DefinitionInvalid      a diagram that cannot be deployed (problems: list of Problem)
├── DefinitionNotFound     no deployed version of that pathway
├── CaseNotFound           no case with that id
├── CaseClosed             the case has ended or was cancelled
├── TaskNotReady           the step is not ready (ready: the steps that are)
├── StepNotCompleted       an amendment names a step the case has not completed
├── DecisionWouldChange    an amendment would change a decision already taken
├── MessageNotExpected     the case is not waiting for that message now
├── InvalidTaskData        form data refused (errors: list of FieldError)
├── VersionConflict        the case changed since the caller saw it
├── DeadlineNotFound       no waiting deadline of that kind on the case
├── DuplicateCase          the patient already has an active case on the pathway
├── IdempotencyKeyReused   the same Idempotency-Key came with a different request
├── IdempotencyKeyInUse    the first request with that key is still running
├── NotPermitted           the caller's roles may not do this step
├── ScenarioInvalid        a scenario file that cannot be run
└── ExecutionFailed        the diagram failed while running (an expression, a decision)
"""

from __future__ import annotations

from dataclasses import dataclass


class PathwayError(Exception):
    """Base class of every error the engine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a diagram: where it is and what to change."""

    file: str
    message: str
    element_id: str | None = None
    line: int | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.element_id:
            where += f" [{self.element_id}]"
        text = f"{where}: {self.message}"
        if self.fix:
            text += f" ({self.fix})"
        return text


class DefinitionInvalid(PathwayError):
    """A diagram has problems that stop it from being deployed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems) or "invalid definition")


class DefinitionNotFound(PathwayError):
    """No deployed definition matches the request."""

    def __init__(
        self, pathway: str, *, version: int | None = None, file: str | None = None
    ) -> None:
        self.pathway = pathway
        if version is None:
            message = f"no deployed pathway '{pathway}'"
        elif file is None:
            message = f"pathway '{pathway}' has no version {version}"
        else:
            message = f"version {version} of pathway '{pathway}' has no file '{file}'"
        super().__init__(message)


class MigrationInvalid(PathwayError):
    """A migration asked for versions that cannot be migrated between."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class MigrationConflict(PathwayError):
    """A migration of the pathway is already running."""

    def __init__(self, pathway: str, migration_id: int | None) -> None:
        self.pathway = pathway
        self.migration_id = migration_id
        which = f"migration {migration_id}" if migration_id else "another migration"
        super().__init__(f"{which} of {pathway} is still running: wait for it to finish")


class MigrationNotFound(PathwayError):
    """No migration has the given id."""

    def __init__(self, migration_id: int) -> None:
        self.migration_id = migration_id
        super().__init__(f"migration {migration_id} not found")


class CaseNotFound(PathwayError):
    """No case has the given id."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"case {case_id} not found")


class CaseClosed(PathwayError):
    """The case is no longer active."""

    def __init__(self, case_id: str, status: str) -> None:
        self.case_id = case_id
        self.status = status
        super().__init__(f"case {case_id} is {status}; nothing more can be done on it")


class TaskNotReady(PathwayError):
    """A step was named that is not ready on the case."""

    def __init__(self, case_id: str, task: str, ready: list[str]) -> None:
        self.case_id = case_id
        self.task = task
        self.ready = ready
        listed = ", ".join(ready) if ready else "none"
        super().__init__(f"step '{task}' is not ready on case {case_id}; ready steps: {listed}")


class MessageNotExpected(PathwayError):
    """The case is not waiting for this message in its current state."""

    def __init__(self, case_id: str, message: str, hint: str) -> None:
        self.case_id = case_id
        self.message = message
        super().__init__(f"case {case_id} is not waiting for '{message}': {hint}")


@dataclass(frozen=True)
class FieldError:
    """One form field that was refused, and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidTaskData(PathwayError):
    """Form data was refused; nothing was changed."""

    def __init__(self, task: str, errors: list[FieldError]) -> None:
        self.task = task
        self.errors = errors
        super().__init__(f"data for '{task}' refused: " + "; ".join(str(e) for e in errors))


class StepNotCompleted(PathwayError):
    """An amendment names a step the case has not completed (completed: those it has)."""

    def __init__(self, case_id: str, step: str, completed: list[str]) -> None:
        self.case_id = case_id
        self.step = step
        self.completed = completed
        listed = ", ".join(completed) if completed else "none"
        super().__init__(
            f"step '{step}' has not been completed on case {case_id}, so there is nothing of it "
            f"to correct; completed steps: {listed}"
        )


class DecisionWouldChange(PathwayError):
    """An amendment would change the outcome of a decision the case already took."""

    def __init__(
        self,
        case_id: str,
        decision: str,
        before: dict[str, object],
        after: dict[str, object],
        *,
        messages: tuple[str, ...] = (),
    ) -> None:
        self.case_id = case_id
        self.decision = decision
        self.before = before
        self.after = after
        shown = ", ".join(f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(after))
        # The messages the pathway's diagram takes (such as a reported red flag) are how new
        # findings come in; the engine names them rather than knowing any one pathway's.
        report = f", and a new finding is reported with {' or '.join(messages)}" if messages else ""
        super().__init__(
            f"the correction would change decision '{decision}' already taken on case {case_id} "
            f"({shown}): nothing is de-escalated by a correction{report}"
        )


class VersionConflict(PathwayError):
    """The case was changed by someone else since the caller read it."""

    def __init__(self, case_id: str, expected: int, actual: int) -> None:
        self.case_id = case_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"case {case_id} is at version {actual}, not {expected}: reload it and try again"
        )


class DeadlineNotFound(PathwayError):
    """No waiting deadline of that kind on the case."""

    def __init__(self, case_id: str, kind: str, waiting: list[str]) -> None:
        self.case_id = case_id
        self.kind = kind
        self.waiting = waiting
        listed = ", ".join(waiting) if waiting else "none"
        super().__init__(
            f"case {case_id} has no waiting deadline '{kind}'; waiting deadlines: {listed}"
        )


class DuplicateCase(PathwayError):
    """A patient may have only one active case per pathway."""

    def __init__(self, pathway: str, existing_case_id: str) -> None:
        self.pathway = pathway
        self.existing_case_id = existing_case_id
        super().__init__(f"the patient already has an active '{pathway}' case: {existing_case_id}")


class IdempotencyKeyReused(PathwayError):
    """An idempotency key was sent again with a different request."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Idempotency-Key '{key}' was already used for a different request: "
            "use a new key for a new request"
        )


class IdempotencyKeyInUse(PathwayError):
    """A retry waited its bound for the first request with its key, which still runs."""

    def __init__(self, key: str, *, waited_seconds: float) -> None:
        self.key = key
        self.waited_seconds = waited_seconds
        super().__init__(
            f"the first request with Idempotency-Key '{key}' is still running after "
            f"{waited_seconds:g} s: retry shortly with the same key"
        )


class NotPermitted(PathwayError):
    """The caller's roles do not include the role the pathway names for the step."""

    def __init__(self, what: str, roles: list[str]) -> None:
        self.what = what
        self.roles = roles
        super().__init__(f"'{what}' is done by {' or '.join(roles)} (or admin)")


class ScenarioInvalid(PathwayError):
    """A scenario file cannot be run as written."""


class ExecutionFailed(PathwayError):
    """The diagram failed while running; the case was left as it was."""

    def __init__(self, case_id: str, step: str, reason: str) -> None:
        self.case_id = case_id
        self.step = step
        self.reason = reason
        super().__init__(f"case {case_id}: step '{step}' failed: {reason}")
