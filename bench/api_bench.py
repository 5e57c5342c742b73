"""API benchmark: task completions per second through a real server on PostgreSQL, with
latency percentiles, while 10,000 other cases are active; and, in the same run, the same
completions done in-process through the engine, for the ratio (what the web layer costs).

    .venv/bin/python bench/api_bench.py [--completions 6000] [--concurrency 32] [--workers 2]

The server is ``pathway serve`` in a subprocess on a fresh PostgreSQL database; the load
comes from one client process (a minimal asyncio HTTP/1.1 client with kept-alive
connections) on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

import engine  # noqa: E402
from api.auth import issue_token  # noqa: E402
from api.settings import ApiSettings  # noqa: E402
from bench.seeding import clone_case  # noqa: E402
from tests.data import GOOD_PLAN as PLAN  # noqa: E402
from tests.data import NO_RED_FLAGS as SCREEN  # noqa: E402

SECRET = "bench-secret-0123456789-0123456789-0123456789"


def _intake(today: datetime) -> dict[str, Any]:
    return {
        "side": "left",
        "symptom_onset": (today - timedelta(days=10)).date().isoformat(),
        "leg_pain_nrs": 6,
        "disabling_pain": True,
        "age": 44,
    }


def fresh_database(admin_url: str, name: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    db = engine.make_engine(url)
    engine.upgrade(db)
    with engine.session_factory(db).begin() as session:
        engine.deploy_bundled(session, now=datetime.now(UTC))
    db.dispose()
    return url


def seed(url: str, *, screening: int, others: int) -> list[str]:
    """``screening`` cases waiting for their red-flag screen (the ones the load completes)
    and ``others`` active cases in conservative care: clones of real engine states."""
    db = engine.make_engine(url)
    sessions = engine.session_factory(db)
    clock = engine.SystemClock()
    now = clock.now()
    sources = {}
    with sessions.begin() as session:
        for ref, steps in (
            ("SEED-SCREEN", []),
            (
                "SEED-CARE",
                [
                    ("red_flag_screen", SCREEN),
                    ("conservative_plan", PLAN),
                ],
            ),
        ):
            view = engine.start_case(
                session,
                pathway="lumbar_radiculopathy",
                clock=clock,
                actor="bench",
                patient_ref=ref,
                first_step_data=_intake(now),
            )
            for step, data in steps:
                view = engine.complete_task(
                    session, case_id=view.id, step=step, data=data, clock=clock, actor="bench"
                )
            sources[ref] = view.id
    targets = clone_case(db, sources["SEED-SCREEN"], screening, ref_prefix="SEED-SCREEN-")
    clone_case(db, sources["SEED-CARE"], others, ref_prefix="SEED-CARE-")
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    db.dispose()
    return targets


def start_server(url: str, *, port: int, workers: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PATHWAY_DATABASE_URL": url,
        "PATHWAY_JWT_SECRET": SECRET,
        "PATHWAY_DATA_DIR": str(data_dir),
        "PATHWAY_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


async def _connection(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one pre-built HTTP/1.1 request on a kept-alive connection; return its status."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return int(status_line.split()[1])


def path_steps(today: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The completions a disabling-pain case gets after intake, in order."""
    referral = {"referral_date": today.date().isoformat(), "specialty": "spine surgery"}
    return [
        ("red_flag_screen", SCREEN),
        ("conservative_plan", PLAN),
        ("specialist_referral", referral),
    ]


async def load(
    port: int,
    token: str,
    targets: list[str],
    concurrency: int,
    steps: list[tuple[str, dict[str, Any]]],
) -> tuple[float, list[float], dict[int, int]]:
    """Walk each target case through ``steps`` (one completion each, in order, If-Match the
    version it expects) over ``concurrency`` kept-alive connections.

    A minimal HTTP/1.1 client keeps the load generator's own CPU small: it shares the two
    cores with the server and the database.
    """
    import json

    bodies = [(step, json.dumps({"data": data}).encode()) for step, data in steps]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for case_id in targets:
        queue.put_nowait(case_id)

    async def worker() -> None:
        reader, writer = await _connection("127.0.0.1", port)
        try:
            while True:
                try:
                    case_id = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                for version, (step, body) in enumerate(bodies, start=1):
                    request = (
                        f"POST /cases/{case_id}/tasks/{step}/complete HTTP/1.1\r\n"
                        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                        f'If-Match: "{version}"\r\nContent-Type: application/json\r\n'
                        f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode() + body
                    t0 = time.perf_counter()
                    status = await _post(reader, writer, request)
                    latencies.append(time.perf_counter() - t0)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, statuses


def in_process(url: str, targets: list[str], steps: list[tuple[str, dict[str, Any]]]) -> float:
    """Completions per second through the engine directly, one transaction each."""
    db = engine.make_engine(url)
    sessions = engine.session_factory(db)
    clock = engine.SystemClock()
    t0 = time.perf_counter()
    for case_id in targets:
        for version, (step, data) in enumerate(steps, start=1):
            with sessions.begin() as session:
                engine.complete_task(
                    session,
                    case_id=case_id,
                    step=step,
                    data=data,
                    clock=clock,
                    actor="bench",
                    roles=frozenset({"clinician", "coordinator"}),
                    expected_version=version,
                )
    elapsed = time.perf_counter() - t0
    db.dispose()
    return len(targets) * len(steps) / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=6000, help="per workload")
    parser.add_argument("--in-process", type=int, default=900, help="per workload")
    parser.add_argument("--others", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "PATHWAY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()

    now = datetime.now(UTC)
    steps = path_steps(now)
    workloads = [
        ("red-flag screen (starts conservative care: the heaviest step)", steps[:1]),
        ("a case's path: screen, conservative plan, specialist referral", steps),
    ]
    print(f"# API benchmark ({now:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores)")
    url = fresh_database(args.pg, "pathway_api_bench")
    t0 = time.perf_counter()
    per_workload = [
        (args.completions + 200) // len(w) + args.in_process // len(w) for _, w in workloads
    ]
    targets = seed(url, screening=sum(per_workload), others=args.others)
    print(
        f"seeded {len(targets) + args.others:,} active cases in {time.perf_counter() - t0:.1f} s "
        f"({args.others:,} in conservative care, the rest waiting for their red-flag screen); "
        f"{args.workers} server workers, {args.concurrency} concurrent connections"
    )
    data_dir = Path("/tmp/pathway-api-bench")
    settings = ApiSettings(data_dir=data_dir, database_url=url, jwt_secret=SECRET)  # type: ignore[arg-type]
    token = issue_token(settings, sub="bench", roles=["clinician", "coordinator"])
    offset = 0
    for (label, workload), count in zip(workloads, per_workload, strict=True):
        mine = targets[offset : offset + count]
        offset += count
        warm = 200 // len(workload)
        http_cases = mine[: (args.completions + 200) // len(workload)]
        engine_cases = mine[len(http_cases) :]
        server = start_server(url, port=args.port, workers=args.workers, data_dir=data_dir)
        try:
            asyncio.run(load(args.port, token, http_cases[:warm], args.concurrency, workload))
            elapsed, latencies, statuses = asyncio.run(
                load(args.port, token, http_cases[warm:], args.concurrency, workload)
            )
        finally:
            server.terminate()
            server.wait(timeout=20)
        done = len(latencies)
        rate = done / elapsed
        errors = sum(n for code, n in statuses.items() if code != 200)
        print(f"\n## {label}")
        print(f"HTTP: {done:,} completions: {rate:7.1f} completions/s   (target >= 300)")
        print(
            f"latency p50 {percentile(latencies, 0.50) * 1000:6.1f} ms   "
            f"p95 {percentile(latencies, 0.95) * 1000:6.1f} ms   "
            f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   (target p99 <= 100 ms)"
        )
        print(f"errors: {errors}   statuses: {dict(sorted(statuses.items()))}")
        engine_rate = in_process(url, engine_cases, workload)
        print(f"in-process engine, one transaction each: {engine_rate:7.1f} completions/s")
        print(f"ratio HTTP / in-process: {rate / engine_rate:.2f}")


if __name__ == "__main__":
    main()
