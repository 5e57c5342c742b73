"""The floor under the scheduler's speed: how fast this machine runs Celery tasks that do
nothing, with Pathway's own Celery settings (Redis, JSON, late acknowledgement, prefetch 1).
Every reminder is one such task plus its real work, so ``tasks`` divided by this rate is the
least time any number of reminders can take here.

    .venv/bin/python bench/celery_floor.py [--tasks 5000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from workers.app import SEND_QUEUE, create_celery
from workers.settings import WorkerSettings

BROKER = os.environ.get("PATHWAY_BENCH_BROKER", "redis://127.0.0.1:6379/14")
app = create_celery(WorkerSettings(broker_url=BROKER, data_dir=Path("/tmp/pathway-floor")))


@app.task(name="bench.nothing", ignore_result=True)
def nothing(n: int) -> int:
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    with app.producer_or_acquire() as producer:
        for n in range(args.tasks):
            nothing.apply_async((n,), producer=producer)
    root = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "bench.celery_floor", "worker"),
            *(f"--concurrency={args.concurrency}", "--without-gossip", "--without-mingle"),
            "--loglevel=WARNING",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while client.llen(SEND_QUEUE) >= args.tasks:  # the worker is still starting
            time.sleep(0.01)
        started, left = time.perf_counter(), client.llen(SEND_QUEUE)
        while client.llen(SEND_QUEUE) > 0:
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        client.flushdb()
    rate = left / elapsed
    print(
        f"# Celery floor: {left:,} tasks that do nothing, {args.concurrency} worker processes, "
        f"{os.cpu_count()} cores"
    )
    print(f"{rate:,.0f} tasks/s, {1000 / rate * (os.cpu_count() or 1):.2f} ms of machine CPU each")
    print(f"so 10,000 reminders take at least {10_000 / rate:.1f} s here in Celery alone")


if __name__ == "__main__":
    main()
