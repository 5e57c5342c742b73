"""The workers' metrics for Prometheus: how late sent reminders arrive, how long sweeps take,
and how many sends failed, by channel.

A worker's tasks run in its pool's child processes (prefork), which Celery replaces at will,
so the figures use ``prometheus_client``'s multiprocess mode: each process writes its own
file in one folder, and the worker's main process serves their sum over HTTP. With
``PATHWAY_METRICS=true``, ``pathway worker`` calls ``serve`` before its pool starts:

- the folder is ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied first: the files of a
  previous run would otherwise count again), else a private temporary folder removed when
  the worker stops; give each worker on a host a folder of its own;
- a child process that stops is marked dead (Celery's ``worker_process_shutdown``);
- ``http://PATHWAY_METRICS_HOST:PATHWAY_METRICS_PORT/metrics`` serves the figures, with no
  sign-in, so bind it to an address only Prometheus reaches.

Without it nothing is recorded: ``sweep_took`` and ``delivery_recorded`` do nothing, and
``prometheus_client`` is never imported (it must be imported after the folder is chosen,
as it reads ``PROMETHEUS_MULTIPROC_DIR`` once, on import).

No label holds a case id, a patient reference or anything a person typed: the failures'
only label is the channel's kind (``email``, ``webhook``, ``log``; ``other`` for a name
that is none of them).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import engine

from .channels import FACTORIES
from .settings import WorkerSettings

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

log = logging.getLogger(__name__)

FOLDER = "PROMETHEUS_MULTIPROC_DIR"

LATENESS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 86400)
"""Seconds between a reminder's due time and its sending: seconds when all is well, minutes
under a backlog, hours after an outage."""

SWEEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class _Figures:
    lateness: Histogram
    sweeps: Histogram
    failures: Counter


_figures: _Figures | None = None


class MetricsUnavailable(RuntimeError):
    """The metrics server cannot start (its port is taken, its address is not this host's)."""


def channel_label(name: str) -> str:
    """The failures' label for a channel: its kind, never a free-form name."""
    return name if name in FACTORIES else "other"


def serve(settings: WorkerSettings) -> str:
    """Record this process's and its future children's figures in multiprocess mode, and
    serve them over HTTP from a thread of this process; return the address served."""
    global _figures
    _folder()
    import prometheus_client
    from celery.signals import worker_process_shutdown
    from prometheus_client import multiprocess, values

    if not getattr(values.ValueClass, "_multiprocess", False):
        raise MetricsUnavailable(
            "prometheus_client was imported before the metrics folder was chosen"
        )
    _figures = _Figures(
        lateness=prometheus_client.Histogram(
            "pathway_reminder_lateness_seconds",
            "Sent reminders: the time they were sent minus the time they were due.",
            buckets=LATENESS_BUCKETS,
        ),
        sweeps=prometheus_client.Histogram(
            "pathway_sweep_duration_seconds",
            "How long each sweep took (reap, fire due timers, publish reminders).",
            buckets=SWEEP_BUCKETS,
        ),
        failures=prometheus_client.Counter(
            "pathway_reminder_send_failures",
            "Sends that failed on a channel (each failed attempt once), by channel.",
            labelnames=["channel"],
        ),
    )
    for name in FACTORIES:  # every channel's series exists from the start, at 0
        _figures.failures.labels(channel=name)

    def child_stopped(pid: int | None = None, **_: Any) -> None:
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]

    worker_process_shutdown.connect(child_stopped, weak=False)
    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        prometheus_client.start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=registry
        )
    except OSError as exc:
        raise MetricsUnavailable(
            f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"(PATHWAY_METRICS_HOST, PATHWAY_METRICS_PORT): {exc.strerror or exc}"
        ) from None
    return f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"


def _folder() -> Path:
    """The multiprocess folder, chosen and emptied; set in the environment for the children."""
    given = os.environ.get(FOLDER)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="pathway-metrics-"))
        owner = os.getpid()

        def remove() -> None:
            # Forked children inherit the hook: only the process that made it removes it.
            if os.getpid() == owner:
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(remove)
    os.environ[FOLDER] = str(folder)
    return folder


def sweep_took(seconds: float) -> None:
    """Record one sweep's duration."""
    if _figures is not None:
        _figures.sweeps.observe(seconds)


def delivery_recorded(
    outcomes: Mapping[str, str | None], status: str, *, due_at: datetime, at: datetime
) -> None:
    """Record one send as the database recorded it: each channel that failed, and, when the
    reminder is now sent, how late it went out (``at`` minus ``due_at``)."""
    if _figures is None:
        return
    for channel, error in outcomes.items():
        if error is not None:
            _figures.failures.labels(channel=channel_label(channel)).inc()
    if status == engine.ReminderStatus.SENT:
        _figures.lateness.observe(max(0.0, (at - due_at).total_seconds()))
