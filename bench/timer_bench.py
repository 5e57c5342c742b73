"""Scheduler benchmarks, with a real `pathway worker` and `pathway beat` on PostgreSQL and Redis.

1. Delivery: ``--due`` cases (default 10,000) whose 2-week referral deadline falls due at the
   same instant, among ``--waiting`` cases in all (default 100,000; the others' timers are
   days away). Every reminder goes to a local webhook receiver (only the webhook is
   configured, so every role uses it); the benchmark prints how many arrived, when the last
   one did, duplicates, the p50/p99 lateness (arrival minus due time), the machine's CPU per
   reminder and, measured in the same run, the CPU of completing one step in-process, with
   the targets: all within 30 s, p50 within 15 s, at most 5 ms and 1.5x a step completion.
2. A steady trickle: one reminder due every 0.2 s for 2 minutes, each case seeded on its
   own; target p99 lateness at most the sweep interval plus 1 s.
3. Sweep cost: the sweep task run in a process of its own against a database with 10,000
   waiting timers and then with 1,000,000, each with one batch of cases due (after one more
   is fired to warm up) and a sent reminder for each of the first 100,000 cases; it prints
   the cost of a sweep that fires the batch and of an idle sweep (median of 20), and the
   ratios (target <= 1.5x).

    .venv/bin/python bench/timer_bench.py [--due 10000] [--waiting 100000]
        [--concurrency 4] [--sweep-seconds 5] [--skip-delivery] [--skip-trickle]
        [--skip-sweep]

Each part works in a fresh database of its own beside the one ``--pg`` names, and on Redis
database ``--broker-db`` (emptied first); nothing else is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from sqlalchemy import Engine, func, insert, select, text

import engine
from bench.delivery_rig import JWT, Processes, cpu_busy_seconds, percentile
from bench.seeding import analyze, clone_case, fresh_database, progress, source_case
from engine.store import case_timers, cases, reminders

TWO_WEEKS = timedelta(days=14)
ROOT = Path(__file__).resolve().parent.parent


# -- part 1: delivery ---------------------------------------------------------------------
def bench_delivery(args: argparse.Namespace) -> None:
    print(f"\n## delivery: {args.due:,} reminders due at once among {args.waiting:,} waiting cases")
    db = fresh_database(args.pg, "pathway_timer_bench")
    url = db.url.render_as_string(hide_password=False)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    waiting_source = source_case(db, care_starts=now - timedelta(days=2), ref="SEED-WAIT")
    clone_case(
        db,
        waiting_source,
        args.waiting - args.due - 1,
        ref_prefix="BENCH-WAIT-",
        progress=progress("waiting cases", args.waiting - args.due - 1),
    )
    # The due cases last: their deadline is a fixed moment a little after seeding ends.
    due_at = datetime.now(UTC) + timedelta(seconds=args.lead)
    due_source = source_case(db, care_starts=due_at - TWO_WEEKS, ref="SEED-DUE")
    due_ids = clone_case(
        db,
        due_source,
        args.due - 1,
        ref_prefix="BENCH-DUE-",
        progress=progress("due cases", args.due - 1),
    )
    due_ids.append(due_source)
    analyze(db)
    with db.connect() as conn:
        counted = conn.scalar(select(func.count()).select_from(cases))
        timers = conn.scalar(select(func.count()).select_from(case_timers))
    seeded = time.perf_counter() - t0
    print(f"seeded {counted:,} cases with {timers:,} waiting timers in {seeded:.1f} s")
    left = (due_at - datetime.now(UTC)).total_seconds()
    if left < 8:
        sys.exit(f"seeding ran past the planned due time; rerun with --lead above {args.lead}")

    busy: float | None = None
    with Processes(args, url) as processes:
        print(
            f"worker (--concurrency {args.concurrency}) and beat (sweep every "
            f"{args.sweep_seconds:g} s) started; the deadlines fall due in {left:.0f} s"
        )
        time.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()))
        busy_at_due = cpu_busy_seconds()
        deadline = due_at + timedelta(seconds=args.timeout)
        while datetime.now(UTC) < deadline:
            time.sleep(1)
            count = processes.delivered()
            since = (datetime.now(UTC) - due_at).total_seconds()
            print(f"  {since:5.1f} s after due: {count:,} delivered", flush=True)
            if count >= args.due:
                busy = cpu_busy_seconds() - busy_at_due
                time.sleep(2 * args.sweep_seconds)  # anything sent twice shows up now
                break
    lateness, duplicates = processes.lateness()
    with db.connect() as conn:
        statuses = {
            row.status: row.n
            for row in conn.execute(
                select(reminders.c.status, func.count().label("n")).group_by(reminders.c.status)
            )
        }
    print(
        f"delivered: {len(lateness):,} of {args.due:,} reminders; statuses in the database: {statuses}"
    )
    print(f"duplicates (same webhook-id again): {duplicates}")
    if lateness:
        last, p50 = max(lateness), percentile(lateness, 0.5)
        print(
            f"lateness p50 {p50:6.2f} s (target <= 15 s: {'met' if p50 <= 15 else 'missed'}), "
            f"p99 {percentile(lateness, 0.99):6.2f} s"
        )
        print(
            f"last one {last:6.2f} s after due (target: all within 30 s: "
            f"{'met' if last <= 30 and len(lateness) == args.due else 'missed'})"
        )
    step = step_completion_cpu(db, count=args.steps)
    print(
        f"CPU of completing one step in-process (specialist_referral on {args.steps} of the "
        f"waiting cases, same run): {step * 1000:.2f} ms"
    )
    if busy is not None:
        cores = os.cpu_count() or 1
        per_reminder = busy / args.due
        print(
            f"machine CPU from the due time to the last arrival: {busy:.0f} core-seconds, "
            f"{per_reminder * 1000:.2f} ms per reminder (its case's advance, publish, send, "
            f"receive, database, broker; target <= 5 ms: "
            f"{'met' if per_reminder <= 0.005 else 'missed'}); on {cores} cores that alone "
            f"takes {busy / cores:.0f} s for {args.due:,} reminders"
        )
        ratio = per_reminder / step
        print(
            f"CPU per reminder / CPU per step completion: {ratio:.2f} "
            f"(target <= 1.5: {'met' if ratio <= 1.5 else 'missed'})"
        )
    db.dispose()


def step_completion_cpu(db: Engine, *, count: int) -> float:
    """CPU seconds (this process) per completion of the ready specialist referral of a
    waiting case, through the same command the API uses: lock, load, complete, run, save."""
    sessions = engine.session_factory(db)
    clock = engine.SystemClock()
    with db.connect() as conn:
        ids = list(
            conn.scalars(
                select(cases.c.id)
                .where(cases.c.patient_ref.like("BENCH-WAIT-%"))
                .order_by(cases.c.id)
                .limit(count + 1)
            )
        )
    data = {"referral_date": datetime.now(UTC).date().isoformat(), "specialty": "spine surgery"}

    def complete(case_id: str) -> None:
        with sessions.begin() as session:
            engine.complete_task(
                session,
                case_id=case_id,
                step="specialist_referral",
                data=data,
                clock=clock,
                actor="bench",
            )

    complete(ids[0])  # warm up: the definition, the connection
    started = time.process_time()
    for case_id in ids[1:]:
        complete(case_id)
    return (time.process_time() - started) / max(1, len(ids) - 1)


# -- part 2: a steady trickle ---------------------------------------------------------------
def bench_trickle(args: argparse.Namespace) -> None:
    """One reminder due every ``--trickle-every`` seconds for ``--trickle-seconds``: the
    lateness a steady load sees (target: p99 at most the sweep interval plus 1 s)."""
    count = round(args.trickle_seconds / args.trickle_every)
    print(
        f"\n## a steady trickle: one reminder due every {args.trickle_every:g} s "
        f"for {args.trickle_seconds:g} s ({count:,} reminders)"
    )
    db = fresh_database(args.pg, "pathway_trickle_bench")
    url = db.url.render_as_string(hide_password=False)
    first_due = datetime.now(UTC) + timedelta(seconds=args.trickle_lead)
    report = progress("cases, each with its own due time", count)
    for index in range(count):
        due_at = first_due + timedelta(seconds=index * args.trickle_every)
        source_case(db, care_starts=due_at - TWO_WEEKS, ref=f"TRICKLE-{index:05d}")
        if (index + 1) % 100 == 0:
            report(index + 1)
    analyze(db)
    if (first_due - datetime.now(UTC)).total_seconds() < 5:
        sys.exit(
            f"seeding ran past the first due time; rerun with --trickle-lead above {args.trickle_lead}"
        )
    last_due = first_due + timedelta(seconds=(count - 1) * args.trickle_every)
    with Processes(args, url) as processes:
        print(
            f"worker and beat started; the first reminder falls due in "
            f"{(first_due - datetime.now(UTC)).total_seconds():.0f} s"
        )
        deadline = last_due + timedelta(seconds=args.timeout)
        delivered = 0
        while datetime.now(UTC) < deadline:
            time.sleep(5)
            delivered = processes.delivered()
            print(f"  {delivered:,} of {count:,} delivered", flush=True)
            if delivered >= count:
                time.sleep(2 * args.sweep_seconds)
                break
    lateness, duplicates = processes.lateness()
    target = args.sweep_seconds + 1
    print(
        f"delivered: {len(lateness):,} of {count:,}; duplicates (same webhook-id again): {duplicates}"
    )
    if lateness:
        p99 = percentile(lateness, 0.99)
        print(
            f"lateness p50 {percentile(lateness, 0.5):5.2f} s   p99 {p99:5.2f} s   "
            f"max {max(lateness):5.2f} s   (target p99 <= sweep interval + 1 s = {target:g} s: "
            f"{'met' if p99 <= target else 'missed'})"
        )
    db.dispose()


# -- part 3: sweep cost ---------------------------------------------------------------------
def _sweep_database(args: argparse.Namespace, timers: int) -> Engine:
    """``timers`` waiting timers (cases of three each), ``--batch`` + 1 cases due now (one
    fired to warm up, then one batch), and a sent reminder for each of the first 100,000
    cases."""
    db = fresh_database(args.pg, f"pathway_sweep_bench_{timers}")
    now = datetime.now(UTC)
    waiting = source_case(db, care_starts=now - timedelta(days=1), ref="SEED-WAIT")
    with db.connect() as conn:
        per_case = conn.scalar(
            select(func.count()).select_from(case_timers).where(case_timers.c.case_id == waiting)
        )
    clone_case(
        db,
        waiting,
        timers // per_case - 1,
        ref_prefix="BENCH-WAIT-",
        progress=progress(f"cases with {per_case} timers each", timers // per_case - 1),
    )
    due = source_case(db, care_starts=now - TWO_WEEKS - timedelta(minutes=1), ref="SEED-DUE")
    clone_case(db, due, args.batch, ref_prefix="BENCH-DUE-")  # one more: the warm-up
    # A history of sent reminders, as a running service has.
    with db.begin() as conn:
        ids = list(conn.scalars(select(cases.c.id).limit(100_000)))
        conn.execute(
            insert(reminders),
            [
                {
                    "case_id": case_id,
                    "kind": "reassessment_due_6_weeks",
                    "step": "reassessment_due",
                    "recipients": ["coordinator"],
                    "due_at": now - timedelta(days=30),
                    "raised_at": now - timedelta(days=30),
                    "status": "sent",
                    "attempts": 1,
                    "sent_at": now - timedelta(days=30),
                }
                for case_id in ids
            ],
        )
    analyze(db)
    return db


def bench_sweep(args: argparse.Namespace) -> None:
    print("\n## sweep cost: 10,000 against 1,000,000 waiting timers")
    broker = f"redis://127.0.0.1:6379/{args.broker_db}"
    results = {}
    for timers in (10_000, 1_000_000):
        db = _sweep_database(args, timers)
        url = db.url.render_as_string(hide_password=False)
        with db.connect() as conn:
            counted = conn.scalar(select(func.count()).select_from(case_timers))
        redis.Redis.from_url(broker).flushdb()
        code = (
            "import json, time, statistics\n"
            "import engine\n"
            "from workers.tasks import _clock, sessions, sweep\n"
            "clock = _clock()\n"
            "with sessions().begin() as session:  # warm up: load the definition, connect\n"
            "    assert len(engine.fire_due(session, now=clock.now(), limit=1).cases) == 1\n"
            "t = time.perf_counter(); fired = sweep(); busy = time.perf_counter() - t\n"
            "idle = []\n"
            "for _ in range(20):\n"
            "    t = time.perf_counter(); sweep(); idle.append(time.perf_counter() - t)\n"
            "print(json.dumps({'busy': busy, 'fired': fired, 'idle': statistics.median(idle)}))\n"
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATHWAY_DATABASE_URL": url,
            "PATHWAY_JWT_SECRET": JWT,
            "PATHWAY_BROKER_URL": broker,
            "PATHWAY_SWEEP_BATCH": str(args.batch),
            "PATHWAY_LOG_LEVEL": "WARNING",
        }
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["fired"]["cases"] == args.batch, result
        results[timers] = result
        print(
            f"{counted:>9,} waiting timers: sweep firing {result['fired']['cases']} cases "
            f"{result['busy'] * 1000:8.1f} ms; idle sweep {result['idle'] * 1000:6.2f} ms",
            flush=True,
        )
        redis.Redis.from_url(broker).flushdb()
        db.dispose()
        admin = engine.make_engine(args.pg).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                text(f'DROP DATABASE IF EXISTS "pathway_sweep_bench_{timers}" WITH (FORCE)')
            )
        admin.dispose()
    small, large = results[10_000], results[1_000_000]
    print(
        f"ratio 1,000,000 / 10,000: firing sweep {large['busy'] / small['busy']:.2f}x, "
        f"idle sweep {large['idle'] / small['idle']:.2f}x   (target <= 1.5x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--waiting", type=int, default=100_000, help="cases in all")
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes")
    parser.add_argument("--sweep-seconds", type=float, default=5)
    parser.add_argument("--batch", type=int, default=200, help="PATHWAY_SWEEP_BATCH")
    parser.add_argument("--lead", type=float, default=30, help="seconds from seeding to due")
    parser.add_argument("--timeout", type=float, default=120, help="seconds after due to wait")
    parser.add_argument("--broker-db", type=int, default=13)
    parser.add_argument("--workdir", default="/tmp/pathway-timer-bench")
    parser.add_argument("--steps", type=int, default=200, help="step completions to time")
    parser.add_argument("--trickle-every", type=float, default=0.2)
    parser.add_argument("--trickle-seconds", type=float, default=120)
    parser.add_argument("--trickle-lead", type=float, default=90, help="seconds to the first due")
    parser.add_argument("--skip-delivery", action="store_true")
    parser.add_argument("--skip-trickle", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "PATHWAY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(
        f"# scheduler benchmarks ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores)"
    )
    if not args.skip_delivery:
        bench_delivery(args)
    if not args.skip_trickle:
        bench_trickle(args)
    if not args.skip_sweep:
        bench_sweep(args)


if __name__ == "__main__":
    main()
