"""The Celery application: Redis as broker, JSON only, late acknowledgement, one message at a
time per worker process, and the beat entry that sweeps every ``PATHWAY_SWEEP_SECONDS``."""

from __future__ import annotations

from celery import Celery

import engine


def create_celery(settings: engine.Settings) -> Celery:
    """Build the Celery app from the settings."""
    app = Celery("pathway", broker=settings.broker_url, include=["workers.tasks"])
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
        task_soft_time_limit=45,
        task_time_limit=60,
        broker_transport_options={"visibility_timeout": 3600},
        broker_connection_retry_on_startup=True,
        beat_schedule={
            "sweep": {"task": "pathway.sweep", "schedule": settings.sweep_seconds},
        },
        worker_hijack_root_logger=False,
    )
    return app


app = create_celery(engine.get_settings())
