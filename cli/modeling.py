"""The modelers' commands, run against a Pathway server over its API (a modeler's machine
has no database of its own): ``deploy``, ``diff`` and ``migrate``.

The server is ``--server`` or ``PATHWAY_SERVER`` (default http://127.0.0.1:8000) and the
token ``PATHWAY_TOKEN`` (``pathway token --sub modeler:you --role modeler`` prints one for a
local server). The token is read from the environment, never from the command line, where
other users of the machine could see it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_NOT_ALL_MOVED = 0, 1, 2, 4
DEFAULT_SERVER = "http://127.0.0.1:8000"


class _Refused(Exception):
    """The server refused the request; ``message`` says why, for a person."""

    def __init__(self, message: str, code: int = EXIT_PROBLEMS) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _client(args: argparse.Namespace) -> httpx.Client:
    token = os.environ.get("PATHWAY_TOKEN", "").strip()
    if not token:
        raise _Refused(
            "set PATHWAY_TOKEN to a modeler's token "
            "(for a local server: export PATHWAY_TOKEN=$(pathway token --sub modeler:you "
            "--role modeler))",
            EXIT_USAGE,
        )
    server = args.server or os.environ.get("PATHWAY_SERVER") or DEFAULT_SERVER
    return httpx.Client(
        base_url=server.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(120, connect=10),
    )


def _checked(response: httpx.Response, *, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code in ok:
        return dict(body)
    detail = body.get("detail") if isinstance(body, dict) else None
    raise _Refused(f"the server answered {response.status_code}: {detail or response.text[:300]}")


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        with _client(args) as client:
            return client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        server = args.server or os.environ.get("PATHWAY_SERVER") or DEFAULT_SERVER
        raise _Refused(f"cannot reach {server}: {type(exc).__name__}", EXIT_USAGE) from None


def _deploy(args: argparse.Namespace) -> int:
    parts = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise _Refused(f"{name}: no such file", EXIT_USAGE)
        parts.append(("files", (path.name, path.read_bytes(), "application/xml")))
    response = _call(args, "POST", "/definitions", files=parts)
    if response.status_code == 422 and "problems" in response.text:
        body = response.json()
        if args.json:
            print(json.dumps(body, indent=2))
        else:
            print(f"not deployed: {len(body['problems'])} problem(s)")
            for p in body["problems"]:
                where = p["file"] + (f":{p['line']}" if p.get("line") else "")
                where += f" [{p['element_id']}]" if p.get("element_id") else ""
                fix = f"\n    fix: {p['fix']}" if p.get("fix") else ""
                print(f"  {where}: {p['message']}{fix}")
        return EXIT_PROBLEMS
    body = _checked(response, ok=(200, 201))
    if args.json:
        print(json.dumps(body, indent=2))
    elif body["created"]:
        print(f"deployed {body['pathway']} version {body['version']}: new cases start on it")
    else:
        latest = body["latest_version"]
        print(
            f"{body['pathway']} version {body['version']} already holds these files; "
            + (
                "new cases start on it"
                if latest == body["version"]
                else f"new cases start on version {latest} (deploy changed files to go back)"
            )
        )
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    path = f"/definitions/{args.pathway}/versions/{args.a}/diff/{args.b}"
    body = _checked(_call(args, "GET", path))
    if args.json:
        print(json.dumps(body, indent=2))
        return EXIT_OK
    changes = body["changes"]
    summary = body["summary"]
    print(
        f"{args.pathway} version {args.a} -> {args.b}: {summary['changes']} change(s), "
        f"{summary['breaking']} breaking"
    )
    for change in changes:
        mark = "BREAKING " if change["breaking"] else ""
        print(f"  {mark}{change['text']}")
    return EXIT_OK


def _bar(done: int, total: int, counts: dict[str, int], width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n and k != "pending")
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {tally}"


def _print_cases(cases: list[dict[str, Any]], *, only_problems: bool) -> None:
    for case in cases:
        if only_problems and case["outcome"] in ("moved", "can_move"):
            continue
        reason = f": {case['reason']}" if case.get("reason") else ""
        print(f"  {case['case_id']}  {case['outcome']}{reason}")


def _migrate(args: argparse.Namespace) -> int:
    path = f"/definitions/{args.pathway}/migrations"
    payload = {"from": args.from_version, "to": args.to_version, "dry_run": args.dry_run}
    if args.dry_run:
        body = _checked(_call(args, "POST", path, json=payload))
        counts = body["counts"]
        if args.json:
            print(json.dumps(body, indent=2))
            return EXIT_OK if counts["refused"] == 0 else EXIT_NOT_ALL_MOVED
        print(
            f"dry run, {args.pathway} version {args.from_version} -> {args.to_version}: "
            f"{body['total']} running case(s), {counts['can_move']} can move, "
            f"{counts['refused']} cannot"
        )
        _print_cases(body["cases"], only_problems=not args.all)
        return EXIT_OK if counts["refused"] == 0 else EXIT_NOT_ALL_MOVED
    started = _checked(_call(args, "POST", path, json=payload), ok=(202,))
    href = started["href"]
    body = started
    show = sys.stderr.isatty() and not args.json
    last_done, last_change = -1, time.monotonic()
    while body["status"] == "running":
        if show:
            print("\r" + _bar(body["done"], body["total"], body["counts"]), end="", file=sys.stderr)
        if body["done"] != last_done:
            last_done, last_change = body["done"], time.monotonic()
        elif time.monotonic() - last_change > args.wait:
            raise _Refused(
                f"no progress for {args.wait:.0f} s: the migration may have stopped "
                f"(the server marks it interrupted after 2 minutes without progress; run the "
                f"same command again to move the rest); its state: {href}"
            )
        time.sleep(0.5)
        body = _checked(_call(args, "GET", href))
    if show:
        print("\r" + _bar(body["done"], body["total"], body["counts"]), file=sys.stderr)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        counts = body["counts"]
        print(
            f"migration {body['id']} {body['status']}: {counts['moved']} moved, "
            f"{counts['refused']} could not move, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, of {body['total']}"
        )
        _print_cases(body["cases"], only_problems=not args.all)
    moved_all = body["status"] == "finished" and body["counts"]["moved"] == body["total"]
    return EXIT_OK if moved_all else EXIT_NOT_ALL_MOVED


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = func(args)
        except _Refused as exc:
            print(f"pathway {args.command}: {exc.message}", file=sys.stderr)
            return exc.code
        return code

    return run


def register(commands: Any) -> None:
    """Add the modelers' commands to the ``pathway`` parser."""
    server_help = f"the Pathway server (default PATHWAY_SERVER or {DEFAULT_SERVER})"

    deploy = commands.add_parser(
        "deploy", help="deploy a pathway (its BPMN file and DMN files) to a server"
    )
    deploy.add_argument("files", nargs="+", metavar="FILE")
    deploy.add_argument("--server", help=server_help)
    deploy.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    deploy.set_defaults(func=_guarded(_deploy))

    diff = commands.add_parser(
        "diff", help="what changed between two versions of a pathway, in clinical words"
    )
    diff.add_argument("pathway")
    diff.add_argument("a", type=int, metavar="A")
    diff.add_argument("b", type=int, metavar="B")
    diff.add_argument("--server", help=server_help)
    diff.add_argument("--json", action="store_true", help="print the changes as JSON")
    diff.set_defaults(func=_guarded(_diff))

    migrate = commands.add_parser(
        "migrate",
        help="move a pathway's running cases from one version to another",
        description="Move running cases; exit 4 when some case could not move (each is "
        "listed with why), 0 when every case moved.",
    )
    migrate.add_argument("pathway")
    migrate.add_argument("--from", dest="from_version", type=int, required=True, metavar="A")
    migrate.add_argument("--to", dest="to_version", type=int, required=True, metavar="B")
    migrate.add_argument(
        "--dry-run", action="store_true", help="say which cases can move, and why not; move none"
    )
    migrate.add_argument("--all", action="store_true", help="list every case, not only problems")
    migrate.add_argument(
        "--wait",
        type=float,
        default=300,
        help="give up after this many seconds without progress (default 300)",
    )
    migrate.add_argument("--server", help=server_help)
    migrate.add_argument("--json", action="store_true", help="print the result as JSON")
    migrate.set_defaults(func=_guarded(_migrate))
