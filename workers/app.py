"""The Celery application: Redis as broker, JSON only, late acknowledgement, one message at a
time per worker process, and the beat entry that sweeps every ``PATHWAY_SWEEP_SECONDS``.

Sweeps and sends have a queue each, both consumed by every worker: a backlog of thousands of
sends never holds a sweep back behind it. A sweep message older than the interval expires
(a newer one is already queued), so sweeps don't pile up while the workers are busy. The
fire tasks a sweep publishes under a backlog share its queue and expire when its interval
ends, so they don't pile up either."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from . import outages
from .settings import WorkerSettings, get_settings

SWEEP_QUEUE = "pathway.sweep"
SEND_QUEUE = "pathway.send"
QUEUES = (SWEEP_QUEUE, SEND_QUEUE)


def create_celery(settings: WorkerSettings) -> Celery:
    """Build the Celery app from the settings."""
    app = Celery("pathway", broker=settings.broker_url, include=["workers.tasks"])
    send_limits = {
        "soft_time_limit": 0.9 * settings.reminder_send_timeout,
        "time_limit": settings.reminder_send_timeout,
    }
    sweep_limits = {
        "soft_time_limit": settings.sweep_seconds + 45,
        "time_limit": settings.sweep_seconds + 60,
    }
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A worker that dies mid-task leaves its message unacknowledged: Redis hands it out
        # again, and the claim in the database makes the second run a no-op if the first
        # had got that far.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A send task (a batch) is bounded by PATHWAY_REMINDER_SEND_TIMEOUT, which the
        # settings keep shorter than the claim timeout, so the reaper never takes back a
        # live send. At 80% the batch records what is still under way as not delivered (it
        # is retried); at 90% the worker stops the task softly, at 100% for good (its
        # reminders then stay claimed until the reaper puts them back). A sweep works for
        # one interval, then lets the next one carry on.
        task_annotations={
            "pathway.send_reminders": send_limits,
            "pathway.send_reminder": send_limits,  # messages queued before batched sends
            "pathway.sweep": sweep_limits,
            "pathway.fire": sweep_limits,
        },
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        # Celery gives up on the broker after 100 attempts (about 45 minutes at its 30 s
        # ceiling) and the worker exits; the scheduler must outlast any outage instead.
        broker_connection_max_retries=None,
        # An exchange and key of each queue's own: with the defaults both queues would be
        # bound to one key, and every message would land in both.
        task_queues=tuple(Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES),
        task_default_queue=SEND_QUEUE,
        task_default_exchange=SEND_QUEUE,
        task_default_routing_key=SEND_QUEUE,
        task_routes={
            "pathway.sweep": {"queue": SWEEP_QUEUE},
            "pathway.fire": {"queue": SWEEP_QUEUE},
        },
        beat_schedule={
            "sweep": {
                "task": "pathway.sweep",
                "schedule": settings.sweep_seconds,
                "options": {"expires": settings.sweep_seconds},
            },
        },
        worker_hijack_root_logger=False,
    )
    # An outage of Redis or the database: a line when it goes, one when it returns.
    outages.install(app, broker_url=settings.broker_url, database_url=settings.database)
    return app


app = create_celery(get_settings())
