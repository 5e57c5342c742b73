"""Broker and database outages, logged as two lines each: one when the service goes, one when
it returns with how long it was away, instead of an error and a traceback every tick.

Each process keeps its own account. The beat knows the broker is gone when a sweep's message
cannot be sent, and back when one is sent again. The worker's main process knows the broker
is gone when its consumer loses the connection or cannot connect, and back when its
consumer has connected again. The process running tasks (a prefork child) knows the
database is gone when a task fails on a database connection, and back when a task
succeeds. A task that stops because the broker went (a sweep publishing its reminders) is
one line, not a traceback: the reaper publishes those reminders again.

Only errors of the connection itself are quietened: anything else, a database error such as
a deadlock included, is logged as before, traceback and all.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import redis.exceptions
from celery import Celery, bootsteps, signals
from celery.beat import SchedulingError
from celery.worker.consumer.consumer import CONNECTION_ERROR, CONNECTION_RETRY
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

# SQLSTATEs of a server going away or not yet taking connections: class 08 (connection
# exception), admin_shutdown, crash_shutdown, cannot_connect_now (starting or stopping).
_DATABASE_DOWN_STATES = ("08", "57P01", "57P02", "57P03")
_BEAT_CONNECTION_ERROR = "beat: Connection error:"
_CANCEL_ADVICE = "In Celery 5.1 we introduced an optional breaking change"


class Outage:
    """One service's state in this process: logs the first failure and the return."""

    def __init__(self, service: str, waiting: str) -> None:
        self.service = service
        self.waiting = waiting
        self.where = ""
        self.since: float | None = None

    def gone(self, error: BaseException | None) -> None:
        if self.since is not None:
            return
        self.since = time.monotonic()
        log.warning(
            "%s unreachable (%s): %s wait until it returns [%s]",
            self.service,
            self.where,
            self.waiting,
            describe(error),
        )

    def back(self) -> None:
        if self.since is None:
            return
        seconds = time.monotonic() - self.since
        self.since = None
        log.warning("%s back after %d s", self.service, round(seconds))


BROKER = Outage("broker", "reminders")
DATABASE = Outage("database", "sweeps and sends")


def describe(error: BaseException | None) -> str:
    """An error's class and the first line of its text (a connection error's text names the
    server, never task data), shortened."""
    while isinstance(error, SchedulingError):  # the beat's wrapper
        error = error.__cause__ or error.__context__
    if error is None:
        return "no detail"
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def is_broker_outage(error: BaseException | None) -> bool:
    """Whether an error is the broker's connection failing (Celery's beat wraps it)."""
    while isinstance(error, SchedulingError):  # the beat's wrapper
        error = error.__cause__ or error.__context__
    return isinstance(
        error,
        KombuOperationalError
        | redis.exceptions.ConnectionError
        | redis.exceptions.TimeoutError
        | ConnectionError,
    )


def is_database_outage(error: BaseException | None) -> bool:
    """Whether an error is the database's connection failing: one SQLAlchemy found to be a
    disconnect, or a PostgreSQL driver's connection error (no SQLSTATE: the client found the
    server gone; or a SQLSTATE of a server stopping or starting)."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if orig is None or not type(orig).__module__.startswith(("psycopg", "psycopg2")):
        return False  # SQLite's "database is locked" is no outage
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state is None or str(state).startswith(_DATABASE_DOWN_STATES)


class _CeleryAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _CANCEL_ADVICE not in record.getMessage()


def _record_error(record: logging.LogRecord) -> BaseException | None:
    if record.exc_info:
        return record.exc_info[1]
    return next((a for a in record.args or () if isinstance(a, BaseException)), None)


class _BrokerNotices(logging.Filter):
    """On the consumer's and the beat's loggers: a connection notice marks the broker gone
    and is dropped; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        notice = (
            record.msg is CONNECTION_ERROR
            or (record.msg == "%s (%r)" and args[:1] == (CONNECTION_RETRY,))
            or str(record.msg).startswith(_BEAT_CONNECTION_ERROR)
        )
        error = _record_error(record)
        if notice or (record.exc_info and is_broker_outage(error)):
            BROKER.gone(error)
            return False
        return True


class _TaskFailures(logging.Filter):
    """On the task tracer's logger: a task failing on the database's connection marks the
    database gone; one failing on the broker's is one line. Both lose their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if is_database_outage(error):
            DATABASE.gone(error)
            return False
        if is_broker_outage(error):
            context = record.args if isinstance(record.args, dict) else {}
            log.warning(
                "task %s[%s] stopped: the broker went away [%s]; the reaper publishes its "
                "reminders again",
                context.get("name", "?"),
                context.get("id", "?"),
                describe(error),
            )
            return False
        return True


class _Connected(bootsteps.StartStopStep):  # type: ignore[misc]
    """A step of the worker's consumer after its connection: starting means connected."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, parent: Any) -> None:
        BROKER.back()


def _task_succeeded(**_: Any) -> None:
    DATABASE.back()


def _beat_published(**_: Any) -> None:
    BROKER.back()


def _beat_started(**_: Any) -> None:
    # Only the beat: in a worker, the consumer's connection tells, not a task's publish.
    signals.after_task_publish.connect(_beat_published, weak=False)


def _display(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the database"


def install(app: Celery, *, broker_url: str, database_url: str) -> None:
    """Quieten outages in this process: filters on Celery's loggers, the consumer's step,
    and the signals that tell a service is back."""
    BROKER.where = maybe_sanitize_url(broker_url)
    DATABASE.where = _display(database_url)
    notices = _BrokerNotices()
    for name in ("celery.worker.consumer.consumer", "celery.beat"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _BrokerNotices) for f in logger.filters):
            logger.addFilter(notices)
    tracer = logging.getLogger("celery.app.trace")
    if not any(isinstance(f, _TaskFailures) for f in tracer.filters):
        tracer.addFilter(_TaskFailures())
    app.steps["consumer"].add(_Connected)
    signals.task_success.connect(_task_succeeded, weak=False)
    signals.beat_init.connect(_beat_started, weak=False)
    signals.worker_process_init.connect(_pool_process_started, weak=False)
    # Celery's advice about a setting of its 6.0, a warning on every connection loss (the
    # worker logs warnings, and lets each through every time). Tasks under way keep running,
    # the default: a send finishes and records its outcome.
    captured = logging.getLogger("py.warnings")
    if not any(isinstance(f, _CeleryAdvice) for f in captured.filters):
        captured.addFilter(_CeleryAdvice())


# A stray soft time limit. While the worker's main process reconnects to the broker its event
# loop stands still: a send that ends meanwhile is not seen to have ended, and once the loop
# runs again the send's soft time limit fires and signals the pool process, idle by then or
# on its next task. Billiard's handler would raise in its idle loop and end the process,
# traceback and all. Between tasks the signal is noted in one line and ignored; a task's own
# soft limit is untouched, and the hard limit still ends a task that overruns.
_SOFT_LIMIT = getattr(signal, "SIGUSR1", None)
_during_task: list[Any] = []


def _between_tasks(signum: int, frame: Any) -> None:
    log.info("a soft time limit arrived after its task had ended: ignored")


def _task_started(**_: Any) -> None:
    if _SOFT_LIMIT is not None and _during_task:
        signal.signal(_SOFT_LIMIT, _during_task.pop())


def _task_ended(**_: Any) -> None:
    if _SOFT_LIMIT is not None and not _during_task:
        _during_task.append(signal.signal(_SOFT_LIMIT, _between_tasks))


def _pool_process_started(**_: Any) -> None:
    # A prefork pool process runs its tasks in its main thread, where handlers can be set.
    signals.task_prerun.connect(_task_started, weak=False)
    signals.task_postrun.connect(_task_ended, weak=False)
