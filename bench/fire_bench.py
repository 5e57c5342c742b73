"""Firing a due timer against completing a step: CPU per case of each, measured in one run.

On a SQLite file and on PostgreSQL, seeds ``--cases`` copies of a real case waiting at its
2-week referral timer (or, with ``--timer 6w``, one whose 2-week timer has fired and that waits
at its 6-week reassessment timer), and as many copies of a case whose specialist referral is
ready. Then, in alternating rounds, it fires one batch of due cases the way the sweep does
(``engine.fire_due(limit=--batch)``, one transaction) and completes as many referrals the way
the API does (``engine.complete_task``, one transaction each). It prints the CPU per case of
each, in this process (``time.process_time``) and, on PostgreSQL, in the server backend
(``/proc/<pid>/stat``, when the server runs on this machine), and the ratio against the
target: firing at most 1.5x completing.

    .venv/bin/python bench/fire_bench.py [--cases 1000] [--batch 200] [--timer 2w|6w]
        [--profile DIR] [--pg URL]

``--profile DIR`` runs the same rounds again under cProfile, writes ``DIR/<db>-fire.prof`` and
``DIR/<db>-complete.prof`` and prints the top functions of each. PostgreSQL work happens in a
fresh database ``pathway_fire_bench`` beside the one ``--pg`` names; nothing else is touched.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, event, func, select, text

import engine
from bench.seeding import analyze, clone_case, fresh_database, source_case
from engine.store import case_timers

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = START + timedelta(days=365)  # the completed cases' own start: none of theirs is due
REFERRAL = {"referral_date": "2026-01-07", "specialty": "spine surgery"}
FIRE_AT = {"2w": START + timedelta(days=14, hours=1), "6w": START + timedelta(days=42, hours=1)}
TICK = os.sysconf("SC_CLK_TCK")


def _database(url: str) -> Engine:
    if url.startswith("postgresql"):
        return fresh_database(url, "pathway_fire_bench")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    db = engine.make_engine(url)
    engine.upgrade(db)
    return db


def seed(db: Engine, *, cases: int, timer: str) -> tuple[list[str], datetime]:
    """Copies of a case due to fire (returned: fire_due picks them itself) and copies of a
    case to complete (returned); the time at which the first ones are due."""
    sessions = engine.session_factory(db)
    due = source_case(db, care_starts=START, ref="SEED-FIRE")
    if timer == "6w":  # the 2-week timer fires first: the copies wait at the 6-week one
        with sessions.begin() as session:
            assert engine.fire_due(session, now=FIRE_AT["2w"]).cases == [due]
    clone_case(db, due, cases - 1, ref_prefix="FIRE-")
    ready = source_case(db, care_starts=LATER, ref="SEED-DONE")
    to_complete = [ready, *clone_case(db, ready, cases - 1, ref_prefix="DONE-")]
    if db.dialect.name == "postgresql":
        analyze(db)
    with db.connect() as conn:
        waiting = conn.scalar(
            select(func.count(func.distinct(case_timers.c.case_id))).where(
                case_timers.c.due_at <= FIRE_AT[timer]
            )
        )
    assert waiting == cases, (waiting, cases)
    return to_complete, FIRE_AT[timer]


class BackendCpu:
    """CPU seconds the PostgreSQL backends of an engine's connections have used (zero when
    the server is not on this machine, or for SQLite, which runs in this process)."""

    def __init__(self, db: Engine) -> None:
        self.pids: set[int] = set()
        if db.dialect.name == "postgresql":
            db.dispose()  # every connection from now on is a new one, and seen
            event.listen(db, "connect", self._connected)

    def _connected(self, dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pids.add(int(cursor.fetchone()[0]))

    def seconds(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICK


def measure(
    db: Engine,
    to_complete: list[str],
    *,
    now: datetime,
    batch: int,
    profilers: dict[str, cProfile.Profile] | None = None,
) -> dict[str, list[tuple[int, float, float]]]:
    """Alternate rounds: one fire_due batch, then as many completions. Per round and kind:
    (cases, CPU here, CPU in the server). With ``profilers``, each kind runs under its own."""
    sessions = engine.session_factory(db)
    backend = BackendCpu(db)
    clock = engine.SimulatedClock(LATER + timedelta(days=3))
    with sessions() as session:  # connect before the first reading
        session.execute(text("SELECT 1"))
    rounds: dict[str, list[tuple[int, float, float]]] = {"fire": [], "complete": []}
    left = list(to_complete)

    def timed(kind: str, work: Callable[[], int]) -> int:
        profiler = (profilers or {}).get(kind)
        cpu, server = time.process_time(), backend.seconds()
        if profiler is not None:
            profiler.enable()
        done = work()
        if profiler is not None:
            profiler.disable()
        rounds[kind].append((done, time.process_time() - cpu, backend.seconds() - server))
        return done

    def fire() -> int:
        with sessions.begin() as session:
            report = engine.fire_due(session, now=now, limit=batch)
        assert not report.failed, report.failed
        return len(report.cases)

    def complete() -> int:
        for case_id in left[:batch]:
            with sessions.begin() as session:
                engine.complete_task(
                    session,
                    case_id=case_id,
                    step="specialist_referral",
                    data=REFERRAL,
                    clock=clock,
                    actor="coordinator:bench",
                )
        done = len(left[:batch])
        del left[:batch]
        return done

    while left:
        if timed("fire", fire) == 0:
            break
        timed("complete", complete)
    return rounds


def _report(label: str, rounds: dict[str, list[tuple[int, float, float]]]) -> float:
    def per_case(kind: str, part: int) -> float:
        rows = rounds[kind]
        return sum(r[part] for r in rows) / sum(r[0] for r in rows)

    fire_cpu, fire_server = per_case("fire", 1), per_case("fire", 2)
    done_cpu, done_server = per_case("complete", 1), per_case("complete", 2)
    fired = sum(r[0] for r in rounds["fire"])
    per_round = [
        (f[1] + f[2]) / f[0] / ((c[1] + c[2]) / c[0])
        for f, c in zip(rounds["fire"], rounds["complete"], strict=False)
        if f[0] and c[0]
    ]
    ratio = (fire_cpu + fire_server) / (done_cpu + done_server)
    server = " + server" if fire_server or done_server else ""
    print(f"{label}: {fired:,} cases fired in {len(rounds['fire'])} batches")
    print(
        f"  fire_due, per fired case : {fire_cpu * 1000:6.2f} ms here + "
        f"{fire_server * 1000:5.2f} ms server = {(fire_cpu + fire_server) * 1000:6.2f} ms CPU"
    )
    print(
        f"  complete_task, per step  : {done_cpu * 1000:6.2f} ms here + "
        f"{done_server * 1000:5.2f} ms server = {(done_cpu + done_server) * 1000:6.2f} ms CPU"
    )
    print(
        f"  ratio fire / complete (CPU here{server}): {ratio:.2f}x; here only "
        f"{fire_cpu / done_cpu:.2f}x; per round median {statistics.median(per_round):.2f}x"
        "   (target <= 1.5x)",
        flush=True,
    )
    return ratio


def _print_profile(path: Path, top: int) -> None:
    """The functions with the most cumulative time (ours, SQLAlchemy's session, SpiffWorkflow's),
    then those with the most time of their own, with paths shortened."""
    root = str(Path(__file__).resolve().parent.parent) + "/"
    for order, pattern in (
        ("cumulative", r"(/engine/|orm/session|SpiffWorkflow)"),
        ("tottime", "."),
    ):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).sort_stats(order).print_stats(pattern, top)
        lines = out.getvalue().splitlines()
        first = next(n for n, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"  -- by {order}")
        for line in lines[first:]:
            if line.strip():
                line = line.replace(root, "").replace(sys.prefix + "/", "")
                print("  " + line.replace("lib/python3.11/site-packages/", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="cases fired (and completed)")
    parser.add_argument("--batch", type=int, default=200, help="fire_due's limit, as the sweep")
    parser.add_argument("--timer", choices=sorted(FIRE_AT), default="2w")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here and print them")
    parser.add_argument("--top", type=int, default=25, help="profile lines printed")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "PATHWAY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(
        f"# fire_due against complete_task ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores): {args.cases:,} cases each, batches of {args.batch}, "
        f"the {args.timer} timer"
    )
    with tempfile.TemporaryDirectory() as scratch:
        targets = []
        if not args.skip_sqlite:
            targets.append(("SQLite file", f"sqlite:///{scratch}/fire_bench.db"))
        if not args.skip_pg:
            targets.append(("PostgreSQL", args.pg))
        for label, url in targets:
            db = _database(url)
            to_complete, now = seed(db, cases=args.cases, timer=args.timer)
            _report(label, measure(db, to_complete, now=now, batch=args.batch))
            if args.profile:  # again, under the profiler: its figures are not the ones above
                args.profile.mkdir(parents=True, exist_ok=True)
                db.dispose()
                db = _database(url)
                to_complete, now = seed(db, cases=args.cases, timer=args.timer)
                profilers = {"fire": cProfile.Profile(), "complete": cProfile.Profile()}
                measure(db, to_complete, now=now, batch=args.batch, profilers=profilers)
                name = "sqlite" if url.startswith("sqlite") else "postgresql"
                for kind, profiler in profilers.items():
                    path = args.profile / f"{name}-{kind}.prof"
                    profiler.dump_stats(path)
                    print(f"{label} under cProfile, {kind} ({path.name}):")
                    _print_profile(path, args.top)
            db.dispose()


if __name__ == "__main__":
    main()
