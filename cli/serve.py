"""Running the API: one uvicorn process, or several that share the port fairly.

uvicorn's own ``--workers`` shares one listening socket, and an asyncio worker that wakes
first accepts every pending connection: under load one process gets nearly all of them
and the others idle. Here each worker process binds its own socket with ``SO_REUSEPORT``,
so the kernel spreads connections across them. If a worker dies the others are stopped and
the command exits non-zero, for the supervisor (systemd, Docker) to restart the service.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import time
from types import FrameType

import uvicorn

from api.settings import ApiSettings, get_settings


def _socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _config(settings: ApiSettings) -> uvicorn.Config:
    return uvicorn.Config(
        "api.app:create_app",
        factory=True,
        access_log=False,
        log_level=settings.log_level.lower(),
        lifespan="on",
    )


def _worker(host: str, port: int) -> None:
    settings = get_settings()
    server = uvicorn.Server(_config(settings))
    server.run(sockets=[_socket(host, port, reuse_port=True)])


def run(settings: ApiSettings, *, workers: int) -> int:
    """Serve until interrupted; return the exit status."""
    if workers == 1:
        server = uvicorn.Server(_config(settings))
        server.run(sockets=[_socket(settings.host, settings.port, reuse_port=False)])
        return 0
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_worker, args=(settings.host, settings.port), daemon=False)
        for _ in range(workers)
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.start()
    status = 0
    while any(child.is_alive() for child in children):
        if not stopping and any(c.exitcode not in (None, 0) for c in children):
            print("pathway serve: a worker process died; stopping the others", file=sys.stderr)
            status = 1
            stop(signal.SIGTERM, None)
        time.sleep(0.2)
    return status
