"""The timer benchmarks' rig: a keep-alive webhook receiver in a process of its own, and a
`pathway worker` with a `pathway beat` around it for the length of a ``with`` block; then
what arrived, and when. Used by ``bench/timer_bench.py``; ``python bench/delivery_rig.py
--receiver PORT FILE`` runs the receiver alone."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import redis

SECRET = "whsec_" + "YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldC0wMTIz"
JWT = "bench-jwt-secret-that-is-long-enough-0123456789"
ROOT = Path(__file__).resolve().parent.parent


# -- the webhook receiver (a process of its own) ---------------------------------------------
def run_receiver(port: int, out: Path) -> None:
    """A minimal keep-alive HTTP/1.1 server that answers 204 and writes one line per request:
    arrival time, webhook-id, the payload's due time."""
    lines: list[str] = []
    sink = out.open("a", buffering=1 << 16)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                arrived = time.time()
                due = json.loads(body).get("due_at", "")
                lines.append(f"{arrived:.6f} {headers.get('webhook-id', '-')} {due}\n")
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def flush() -> None:
        while True:
            await asyncio.sleep(0.25)
            if lines:
                sink.writelines(lines)
                lines.clear()
                sink.flush()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        flusher = asyncio.create_task(flush())
        async with server:
            await stop.wait()
        flusher.cancel()
        sink.writelines(lines)
        sink.close()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_busy_seconds() -> float:
    """Machine-wide CPU time spent busy so far (all cores, all processes), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Processes:
    """The webhook receiver, a `pathway worker` and a `pathway beat` on the benchmark's
    database, for the length of a ``with`` block; then what arrived."""

    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url
        self.work = Path(args.workdir)
        self.arrivals = self.work / "arrivals.txt"
        self.started: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Processes:
        args = self.args
        self.work.mkdir(parents=True, exist_ok=True)
        self.arrivals.unlink(missing_ok=True)
        port = free_port()
        broker = f"redis://127.0.0.1:6379/{args.broker_db}"
        redis.Redis.from_url(broker).flushdb()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATHWAY_DATABASE_URL": self.url,
            "PATHWAY_DATA_DIR": str(self.work),
            "PATHWAY_JWT_SECRET": JWT,
            "PATHWAY_BROKER_URL": broker,
            "PATHWAY_SWEEP_SECONDS": str(args.sweep_seconds),
            "PATHWAY_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks/pathway",
            "PATHWAY_WEBHOOK_SECRET": SECRET,
            "PATHWAY_LOG_LEVEL": "WARNING",
        }
        logs = (self.work / "processes.log").open("ab")
        commands = [
            [sys.executable, __file__, "--receiver", str(port), str(self.arrivals)],
            [sys.executable, "-m", "cli.main", "worker", "--concurrency", str(args.concurrency)],
            [sys.executable, "-m", "cli.main", "beat"],
        ]
        for command in commands:
            self.started.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=logs,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    start_new_session=True,  # the worker's pool children go with it
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.started:
            process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def delivered(self) -> int:
        """Requests received so far (duplicates included)."""
        return sum(1 for _ in self.arrivals.open()) if self.arrivals.exists() else 0

    def lateness(self) -> tuple[list[float], int]:
        """Each reminder's first arrival minus its due time, and how many arrived again."""
        rows = [line.split() for line in self.arrivals.read_text().splitlines() if line.strip()]
        first_by_id: dict[str, float] = {}
        lateness = []
        for arrived, webhook_id, due in rows:
            if webhook_id in first_by_id:
                continue
            first_by_id[webhook_id] = float(arrived)
            lateness.append(float(arrived) - datetime.fromisoformat(due).timestamp())
        return lateness, len(rows) - len(first_by_id)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        run_receiver(int(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: delivery_rig.py --receiver PORT FILE")
