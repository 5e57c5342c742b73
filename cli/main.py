"""The ``pathway`` command: validate diagrams, simulate scenarios, serve the API, issue local
tokens, manage the database."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import engine
from cli import simulate

from . import modeling, status

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

_DIAGRAMS = (".bpmn", ".dmn")


def _diagram_paths(names: list[str]) -> tuple[list[Path], list[str]]:
    """The diagrams named, a folder standing for the BPMN and DMN files in it; and a note for
    each file left out because it is not a diagram (``bpmn/*`` also names the README)."""
    paths: list[Path] = []
    skipped: list[str] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in _DIAGRAMS)
            if not found:
                skipped.append(f"{name}: a folder with no .bpmn or .dmn file in it")
            paths.extend(found)
        elif path.is_file() and path.suffix.lower() not in _DIAGRAMS:
            skipped.append(f"{name}: skipped, not a .bpmn or .dmn file")
        else:
            paths.append(path)  # a missing file is reported as a problem of its own
    return paths, skipped


def _validate(args: argparse.Namespace) -> int:
    paths, skipped = _diagram_paths(args.files)
    for note in skipped:
        print(note)
    if not paths:
        print("pathway validate: no diagram to check", file=sys.stderr)
        return EXIT_USAGE
    reports = engine.validate_paths(paths)
    bad = 0
    for report in reports:
        if report.deployable:
            print(f"{report.file}: deployable")
            continue
        bad += 1
        count = len(report.problems)
        print(f"{report.file}: {count} problem{'s' if count != 1 else ''}")
        for problem in report.problems:
            where = f"line {problem.line}" if problem.line else "no line"
            element = f" [{problem.element_id}]" if problem.element_id else ""
            print(f"  - {where}{element}: {problem.message}")
            if problem.fix:
                print(f"    fix: {problem.fix}")
    if len(reports) > 1:
        print(f"{len(reports) - bad} of {len(reports)} files deployable")
    return EXIT_PROBLEMS if bad else EXIT_OK


def _command_name() -> str:
    """How to run ``pathway`` again: by name when the PATH finds this installation's, else by
    its path (``.venv/bin/pathway`` in a checkout)."""
    beside = Path(sys.executable).parent / "pathway"  # not resolved: a venv's python is a link
    found = shutil.which("pathway")
    if not beside.exists() or (found and Path(found).resolve() == beside.resolve()):
        return "pathway"
    relative = os.path.relpath(beside)
    return relative if not relative.startswith("..") else str(beside)


def _serve(args: argparse.Namespace) -> int:
    # Flags become settings through the environment, so every worker process sees them.
    for name, value in (("PATHWAY_HOST", args.host), ("PATHWAY_PORT", args.port)):
        if value is not None:
            os.environ[name] = str(value)
    from api.settings import get_settings

    try:
        _check_settings()
        settings = get_settings()
    except ValueError as exc:
        print(f"pathway serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers < 1:
        print("pathway serve: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE

    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    base = f"http://{settings.host}:{settings.port}"
    where = (
        "SQLite " + settings.database[len("sqlite:///") :] if settings.is_embedded else "PostgreSQL"
    )
    print(f"Pathway is serving at {base} (database: {where})")
    print(f"  interactive API docs: {base}/docs")
    print(f"  get a token:          {_command_name()} token --sub ana --role coordinator")
    print(f"  then:                 curl -H 'Authorization: Bearer <token>' {base}/worklist")
    sys.stdout.flush()
    if settings.is_embedded:
        # Migrate once here, before several workers could race to do it.
        db = engine.make_engine(settings.database)
        settings.private_data_dir()
        engine.upgrade(db)
        db.dispose()
    from cli import serve

    return serve.run(settings, workers=args.workers)


def _worker(args: argparse.Namespace) -> int:
    from workers.settings import get_settings

    settings = get_settings()  # first: a bad setting is reported, not a traceback
    from workers.app import app

    print(
        f"Pathway worker on {settings.broker_url.split('@')[-1]}; reminders go to: "
        + settings.describe_channels()
    )
    if settings.metrics:  # before the pool starts: its children inherit the set-up
        from workers import metrics

        try:
            address = metrics.serve(settings)
        except metrics.MetricsUnavailable as exc:
            print(f"pathway worker: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"  metrics (Prometheus, no sign-in): {address}")
    sys.stdout.flush()
    # The pool's size, for the sweep to leave one process to send (see scheduler.firers).
    app.conf.worker_concurrency = args.concurrency
    app.worker_main(
        [
            "worker",
            f"--loglevel={settings.log_level}",
            f"--concurrency={args.concurrency}",
            f"--pool={args.pool}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return EXIT_OK


def _beat(_args: argparse.Namespace) -> int:
    from workers.settings import get_settings

    settings = get_settings()
    from workers.app import app

    settings.private_data_dir()
    print(f"Pathway beat: sweeping every {settings.sweep_seconds:g} s")
    sys.stdout.flush()
    app.start(
        [
            "beat",
            f"--loglevel={settings.log_level}",
            f"--schedule={settings.data_dir / 'celerybeat-schedule'}",
        ]
    )
    return EXIT_OK


def _up(_args: argparse.Namespace) -> int:
    from cli import up
    from workers.settings import get_settings

    settings = get_settings()
    if settings.is_embedded:
        db = engine.make_engine(settings.database)
        settings.private_data_dir()
        engine.upgrade(db)
        db.dispose()
    return up.run(settings)


def _token(args: argparse.Namespace) -> int:
    from api.auth import issue_token
    from api.sessions import CODE_SECONDS, create_code
    from api.settings import get_settings

    settings = get_settings()
    try:
        token = issue_token(settings, sub=args.sub, roles=args.role, hours=args.hours)
    except ValueError as exc:
        print(f"pathway token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.link:
        print(token)
        return EXIT_OK
    # A one-time code, not the token, goes into the address; the service (sharing this data
    # folder) exchanges it for a session once.
    code = create_code(settings, token)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = (os.environ.get("PATHWAY_PUBLIC_URL") or f"http://{host}:{settings.port}").rstrip("/")
    print(f"{base}/signin/once/{code}")
    print(f"(open it within {CODE_SECONDS // 60} minutes; it works once)", file=sys.stderr)
    return EXIT_OK


def _db_upgrade(_args: argparse.Namespace) -> int:
    settings = engine.get_settings()
    if settings.is_embedded:
        settings.private_data_dir()
    db = engine.make_engine(settings.database)
    try:
        engine.upgrade(db)
        print(f"database schema at revision {engine.current_revision(db)}")
    finally:
        db.dispose()
    return EXIT_OK


_READS_SETTINGS = (_worker, _beat, _up, _token, _db_upgrade)  # _serve checks after its flags


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog="pathway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check BPMN/DMN files (or the folders holding them): deployable or why not"
    )
    validate.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER")
    validate.set_defaults(func=_validate)

    simulate.add_parser(commands)

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", help="address to listen on (default PATHWAY_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default PATHWAY_PORT, 8000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; one per core)"
    )
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="run a Celery worker (sends reminders)")
    worker.add_argument("--concurrency", type=int, default=2, help="worker processes")
    worker.add_argument(
        "--pool", choices=("prefork", "threads"), default="prefork", help="Celery pool"
    )
    worker.set_defaults(func=_worker)

    beat = commands.add_parser("beat", help="run the Celery beat (sweeps due timers)")
    beat.set_defaults(func=_beat)

    up_all = commands.add_parser("up", help="run the API, a worker and the beat together")
    up_all.set_defaults(func=_up)

    token = commands.add_parser("token", help="print a signed token for local use")
    token.add_argument("--sub", required=True, help="who the token is for (goes into the audit)")
    token.add_argument(
        "--role",
        required=True,
        action="append",
        choices=[str(role) for role in engine.Role],
        help="a role; repeat for several",
    )
    token.add_argument("--hours", type=float, default=8, help="validity in hours (default 8)")
    token.add_argument(
        "--link",
        action="store_true",
        help="print a one-time sign-in address for the web pages instead of the token",
    )
    token.set_defaults(func=_token)

    modeling.register(commands)
    status.register(commands)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="bring the schema up to date").set_defaults(
        func=_db_upgrade
    )
    return parser


def _check_settings() -> None:
    """Read every layer's settings, so that a bad one stops any process at once, by name: a
    deployment gives all its processes the same environment (see docker-compose.yml)."""
    from api.settings import get_settings as api_settings
    from workers.settings import get_settings as worker_settings

    problems = []
    for read in (api_settings, worker_settings):
        read.cache_clear()  # the environment may have changed (pathway serve's flags)
        try:
            read()
        except engine.SettingsInvalid as exc:
            problems.append(str(exc).removeprefix("invalid settings: "))
    if problems:
        # A setting both layers read is named once.
        unique = list(dict.fromkeys(p for found in problems for p in found.split("; ")))
        raise engine.SettingsInvalid("invalid settings: " + "; ".join(unique))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.func in _READS_SETTINGS:
            _check_settings()
        code: int = args.func(args)
    except (engine.PathwayError, engine.SettingsInvalid) as exc:
        print(f"pathway {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
