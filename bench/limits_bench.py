"""Request limits benchmark: the API server's memory, and the latency of a plain request made
meanwhile, while three hostile ``POST /cases`` arrive at once, each a ~29 MB JSON body whose
``data`` holds 1.5 million unknown keys (what an adversarial probe sent).

    .venv/bin/python bench/limits_bench.py [--requests 3] [--keys 1500000]
                                           [--database sqlite|postgresql] [--rounds 1]

The server is ``pathway serve`` (one process) in a subprocess on a fresh database: an
embedded SQLite file in a temporary data dir, or a fresh PostgreSQL database. The hostile
bodies are sent twice, each time to a freshly started server: with a Content-Length (the
server should answer 413 before reading the body) and chunked, without one (the server should
cut it off with a 413 once it passes ``PATHWAY_MAX_BODY_BYTES``). While they are in flight,
another thread makes ``GET /worklist`` requests one after the other (at least ``--plain-min``,
so some may come after the load); a third samples the server's resident memory (VmRSS, its
child processes included) about every 10 ms. ``--rounds N`` has each hostile request sent N
times in a row, for a load that lasts long enough to overlap many plain requests.

Everything is synthetic and goes to 127.0.0.1 only. ``--code-root`` (not in ``--help``) runs
the server from another checkout, e.g. a ``git worktree`` of older code, with this script and
the same virtual environment; ``--deadline`` bounds each load (the server is killed past it,
or when its memory passes ``--rss-cap-mb``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from api.auth import issue_token  # noqa: E402
from api.settings import ApiSettings  # noqa: E402

SECRET = "bench-secret-0123456789-0123456789-0123456789"
HOST = "127.0.0.1"
MIB = 1024 * 1024
CHUNK = 64 * 1024
TIMEOUT = httpx.Timeout(60.0)
PG_NAME = "pathway_limits_bench"


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_env(code_root: Path, data_dir: Path, database_url: str) -> dict[str, str]:
    """This environment without any PATHWAY_ setting of its own, plus the bench's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATHWAY_")}
    env.update(
        PYTHONPATH=str(code_root),
        PATHWAY_DATA_DIR=str(data_dir),
        PATHWAY_DATABASE_URL=database_url,
        PATHWAY_JWT_SECRET=SECRET,
        PATHWAY_LOG_LEVEL="WARNING",
    )
    return env


def start_server(
    code_root: Path, env: dict[str, str], *, port: int, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--host", HOST, "--port", str(port)],
            cwd=code_root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(process)
    tail = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the server did not start; its output ends with:\n{tail}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def fresh_postgres(admin_url: str, code_root: Path, env: dict[str, str]) -> str:
    """An empty database, its schema brought up by ``pathway db upgrade`` of ``code_root``
    (the server deploys the bundled pathways itself when it starts)."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_NAME}"'))
    admin.dispose()
    url = admin_url.rsplit("/", 1)[0] + f"/{PG_NAME}"
    subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "upgrade"],
        cwd=code_root,
        env={**env, "PATHWAY_DATABASE_URL": url},
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    return url


def drop_postgres(admin_url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
    admin.dispose()


# --- memory ---------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/<tid>/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as children:
                    todo.extend(int(child) for child in children.read().split())
            except OSError:
                pass
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (VmRSS), in bytes; 0 once it is gone."""
    total = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class RssSampler(threading.Thread):
    """Samples a process tree's RSS every ``interval`` seconds until stopped; keeps the peak
    and, past ``cap`` bytes, calls ``on_cap`` once (to kill the server)."""

    def __init__(
        self, pid: int, *, interval: float, cap: int, on_cap: Callable[[int], None]
    ) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.cap, self.on_cap = pid, interval, cap, on_cap
        self.peak = 0
        self.samples = 0
        self.capped = False
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss = rss_bytes(self.pid)
            self.samples += 1
            self.peak = max(self.peak, rss)
            if rss > self.cap and not self.capped:
                self.capped = True
                self.on_cap(rss)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


# --- the requests ---------------------------------------------------------------------------


def hostile_body(keys: int) -> bytes:
    """``POST /cases`` with ``keys`` unknown fields in ``data`` (19 bytes each: ~29 MB for
    1.5 million)."""
    data = {f"field{i:07d}": 0 for i in range(1, keys + 1)}
    case = {"pathway": "lumbar_radiculopathy", "patient_ref": "SYN-BENCH-1", "data": data}
    return json.dumps(case).encode()


def intake(today: datetime) -> dict[str, object]:
    """A valid intake, for the one real case the worklist shows."""
    return {
        "side": "left",
        "symptom_onset": (today - timedelta(days=10)).date().isoformat(),
        "leg_pain_nrs": 6,
        "disabling_pain": True,
        "age": 44,
    }


@dataclass
class Outcome:
    """What one hostile request got (the last of its rounds): a status or the client-side
    exception's class; ``seconds`` is the slowest round."""

    started: float = 0.0
    seconds: float = 0.0
    status: int | None = None
    error: str | None = None
    answer_bytes: int = 0
    body_consumed: int = 0  # bytes the client handed to the connection (chunked only)
    connection: str = ""  # the answer's Connection header ("close": the server hung up)
    tally: dict[str, int] = field(default_factory=dict)  # outcomes of all rounds

    def label(self) -> str:
        if self.status is not None:
            return str(self.status)
        if self.error and "Timeout" in self.error:
            return f"no answer within the client's 60 s ({self.error})"
        return f"closed early ({self.error})"


def send_hostile(
    port: int,
    token: str,
    body: bytes,
    *,
    chunked: bool,
    go: threading.Barrier,
    out: Outcome,
    rounds: int = 1,
) -> None:
    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(body), CHUNK):
            piece = body[offset : offset + CHUNK]
            out.body_consumed += len(piece)
            yield piece

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=TIMEOUT) as client:
        go.wait(timeout=60)
        for _ in range(rounds):
            out.status, out.error, out.connection = None, None, ""
            out.answer_bytes = out.body_consumed = 0
            out.started = time.perf_counter()
            try:
                with client.stream(
                    "POST", "/cases", content=chunks() if chunked else body, headers=headers
                ) as response:
                    out.status = response.status_code
                    out.connection = response.headers.get("connection", "")
                    for piece in response.iter_bytes():  # drained, not kept: it may be huge
                        out.answer_bytes += len(piece)
            except httpx.HTTPError as exc:
                out.error = type(exc).__name__
                cause = exc.__cause__ or exc.__context__
                if cause is not None:
                    out.error += f" <- {type(cause).__name__}"
            out.seconds = max(out.seconds, time.perf_counter() - out.started)
            key = out.label()
            out.tally[key] = out.tally.get(key, 0) + 1


@dataclass
class Plain:
    """Latencies of the plain requests; how many started while a hostile one was in flight."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    overlapping: list[float] = field(default_factory=list)


def plain_requests(
    port: int,
    token: str,
    *,
    go: threading.Barrier,
    hostile: list[threading.Thread],
    at_least: int,
    out: Plain,
) -> None:
    """``GET /worklist`` one after another, from the moment the hostile requests start until
    they are all done and at least ``at_least`` were made."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=TIMEOUT) as client:
        client.get("/worklist", headers=headers)  # connected before the load starts
        go.wait(timeout=60)
        while any(t.is_alive() for t in hostile) or len(out.latencies) < at_least:
            in_flight = any(t.is_alive() for t in hostile)
            t0 = time.perf_counter()
            try:
                key = str(client.get("/worklist", headers=headers).status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                if not any(t.is_alive() for t in hostile):
                    out.statuses[key] = out.statuses.get(key, 0) + 1
                    return  # the server is gone (killed at the deadline)
            out.latencies.append(time.perf_counter() - t0)
            out.statuses[key] = out.statuses.get(key, 0) + 1
            if in_flight:
                out.overlapping.append(out.latencies[-1])


@dataclass
class Load:
    outcomes: list[Outcome]
    plain: Plain
    baseline: int
    peak: int
    samples: int
    seconds: float
    killed: str | None


def run_load(
    server: subprocess.Popen[bytes],
    port: int,
    token: str,
    body: bytes,
    *,
    requests: int,
    rounds: int,
    chunked: bool,
    plain_min: int,
    deadline: float,
    rss_cap: int,
) -> Load:
    """``requests`` hostile requests at once (a barrier releases them and the plain-request
    thread together), the server's RSS sampled from just before until the last one ends."""
    killed: list[str] = []

    def kill(reason: str) -> None:
        if server.poll() is None:
            killed.append(reason)
            server.send_signal(signal.SIGKILL)

    outcomes = [Outcome() for _ in range(requests)]
    go = threading.Barrier(requests + 1)
    hostile = [
        threading.Thread(
            target=send_hostile,
            args=(port, token, body),
            kwargs={"chunked": chunked, "go": go, "out": out, "rounds": rounds},
            daemon=True,
        )
        for out in outcomes
    ]
    plain = Plain()
    plain_thread = threading.Thread(
        target=plain_requests,
        args=(port, token),
        kwargs={"go": go, "hostile": hostile, "at_least": plain_min, "out": plain},
        daemon=True,
    )
    sampler = RssSampler(
        server.pid,
        interval=0.01,
        cap=rss_cap,
        on_cap=lambda rss: kill(f"its RSS passed {rss / MIB:,.0f} MiB"),
    )
    baseline = rss_bytes(server.pid)
    sampler.start()
    t0 = time.perf_counter()
    for thread in [*hostile, plain_thread]:
        thread.start()
    for thread in hostile:
        thread.join(timeout=max(0.0, deadline - (time.perf_counter() - t0)))
    if any(t.is_alive() for t in hostile):
        kill(f"still busy after {deadline:.0f} s")
    for thread in [*hostile, plain_thread]:
        thread.join(timeout=90)
    elapsed = time.perf_counter() - t0
    sampler.stop()
    return Load(
        outcomes, plain, baseline, sampler.peak, sampler.samples, elapsed, "; ".join(killed) or None
    )


def alone(
    server: subprocess.Popen[bytes], port: int, token: str, body: bytes, *, chunked: bool
) -> Outcome:
    """One hostile request on its own (the server is killed if it takes over a minute)."""
    out = Outcome()

    def kill() -> None:
        if server.poll() is None:
            server.kill()

    watchdog = threading.Timer(60, kill)
    watchdog.start()
    try:
        send_hostile(port, token, body, chunked=chunked, go=threading.Barrier(1), out=out)
    finally:
        watchdog.cancel()
    return out


# --- the report -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _latencies(values: list[float]) -> str:
    return (
        f"max {max(values):.3f} s, p50 {percentile(values, 0.5):.3f} s over {len(values)} requests"
    )


def report(load: Load, *, body_size: int, chunked: bool, rounds: int) -> None:
    peak, base = load.peak / MIB, load.baseline / MIB
    print(f"peak server RSS: {peak:,.0f} MiB (baseline {base:,.0f} MiB)   (target < 300 MB)")
    print(
        f"ratio peak / baseline: {load.peak / max(load.baseline, 1):.2f}x   "
        f"({load.samples:,} samples in {load.seconds:.2f} s)"
    )
    plain = load.plain
    if plain.latencies:
        print(
            f"plain request latency while loaded: {_latencies(plain.latencies)}   (target <= 1 s)"
        )
    if plain.overlapping:
        print(f"  started while a hostile request was in flight: {_latencies(plain.overlapping)}")
    else:
        print("  none started while a hostile request was in flight")
    print(f"  answers: {dict(sorted(plain.statuses.items()))}")
    times = [o.seconds for o in load.outcomes]
    each = "slowest round " if rounds > 1 else ""
    print(
        f"hostile requests: {', '.join(o.label() for o in load.outcomes)} "
        f"in {each}{min(times):.3f}-{max(times):.3f} s"
    )
    for i, o in enumerate(load.outcomes, start=1):
        sent = f", {o.body_consumed / MIB:.1f} of {body_size / MIB:.1f} MiB handed to the socket"
        tally = f" (all {rounds} rounds: {dict(sorted(o.tally.items()))})" if rounds > 1 else ""
        hung_up = "Connection: close" if o.connection.lower() == "close" else "kept alive"
        print(
            f"  #{i}: {o.label()} after {o.seconds:.3f} s, answer {o.answer_bytes:,} bytes"
            + (f" ({hung_up})" if o.status is not None else "")
            + (sent if chunked else "")
            + tally
        )
    if load.killed:
        print(f"the server was killed: {load.killed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3, help="hostile requests at once")
    parser.add_argument("--keys", type=int, default=1_500_000, help="unknown keys in each")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--rounds", type=int, default=1, help="each hostile request sent this many times in a row"
    )
    parser.add_argument(
        "--plain-min", type=int, default=20, help="plain requests made at least, per load"
    )
    parser.add_argument("--deadline", type=float, default=120, help="seconds a load may take")
    parser.add_argument("--rss-cap-mb", type=int, default=8192, help="kill the server past it")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "PATHWAY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--code-root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    code_root = args.code_root.resolve()

    now = datetime.now(UTC)
    commit = subprocess.run(
        ["git", "-C", str(code_root), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"# Request limits benchmark ({now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores)")
    print(f"server code: {code_root} ({commit or 'not a git checkout'})")
    t0 = time.perf_counter()
    body = hostile_body(args.keys)
    print(
        f"hostile body: {args.keys:,} unknown keys in data, {len(body):,} bytes "
        f"({len(body) / MIB:.1f} MiB), built in {time.perf_counter() - t0:.1f} s; "
        f"{args.requests} at once" + (f", {args.rounds} rounds each" if args.rounds > 1 else "")
    )

    with tempfile.TemporaryDirectory(prefix="pathway-limits-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        log = Path(tmp) / "server.log"
        env = server_env(code_root, data_dir, "")
        if args.database == "postgresql":
            url = fresh_postgres(args.pg, code_root, env)
            env["PATHWAY_DATABASE_URL"] = url
            print(f"database: fresh PostgreSQL database {PG_NAME}")
        else:
            url = ""
            print("database: embedded SQLite in a fresh data dir")
        settings = ApiSettings(data_dir=data_dir, database_url=url, jwt_secret=SECRET)  # type: ignore[arg-type]
        token = issue_token(settings, sub="bench", roles=["coordinator"])
        headers = {"Authorization": f"Bearer {token}"}
        print("limit: PATHWAY_MAX_BODY_BYTES unset (the server's default; 1 MiB where it exists)")
        try:
            for chunked in (False, True):
                port = free_port()
                server = start_server(code_root, env, port=port, log=log)
                try:
                    base = f"http://{HOST}:{port}"
                    if not chunked:
                        made = httpx.post(
                            f"{base}/cases",
                            json={
                                "pathway": "lumbar_radiculopathy",
                                "patient_ref": "SYN-BENCH-0",
                                "data": intake(now),
                            },
                            headers=headers,
                            timeout=TIMEOUT,
                        )
                        print(f"one real case for the worklist: POST /cases {made.status_code}")
                    for _ in range(5):  # warm the plain request's path
                        httpx.get(f"{base}/worklist", headers=headers, timeout=TIMEOUT)
                    how = "chunked (no Content-Length)" if chunked else "with Content-Length"
                    print(f"\n## {args.requests} concurrent hostile POST /cases, {how}")
                    load = run_load(
                        server,
                        port,
                        token,
                        body,
                        requests=args.requests,
                        rounds=args.rounds,
                        chunked=chunked,
                        plain_min=args.plain_min,
                        deadline=args.deadline,
                        rss_cap=args.rss_cap_mb * MIB,
                    )
                    report(load, body_size=len(body), chunked=chunked, rounds=args.rounds)
                    if server.poll() is None:
                        one = alone(server, port, token, body, chunked=chunked)
                        print(
                            f"one hostile request alone, {how}: {one.label()} "
                            f"in {one.seconds:.3f} s, answer {one.answer_bytes:,} bytes"
                            + (f", {one.body_consumed / MIB:.1f} MiB sent" if chunked else "")
                        )
                        after = rss_bytes(server.pid) / MIB
                        print(f"server RSS afterwards: {after:,.0f} MiB")
                finally:
                    stop_server(server)
        finally:
            if args.database == "postgresql":
                drop_postgres(args.pg)


if __name__ == "__main__":
    main()
