"""Web benchmark: how soon the pages are usable in a real browser, against a real server.

    .venv/bin/python bench/web_bench.py [--database URL] [--items 1000] [--repeats 5]
    .venv/bin/python bench/web_bench.py --screenshots docs/images

Measured in Debian's headless Chromium (``/usr/bin/chromium``, driven by Playwright for
Python), against ``pathway serve`` (one process) on a fresh SQLite file, or with
``--database`` on a fresh PostgreSQL database made beside the one the URL names (dropped
afterwards):

- the case page: from navigation until the diagram is drawn with the case's markers (the
  "Ready" badge bpmn-js overlays on the ready step is added in the same task as every other
  marker, after the diagram is imported), for a case in conservative care;
- the worklist with ``--items`` ready steps for the signed-in role (copies of a real case
  waiting for its red-flag screen, with their ready-step and role rows): from navigation
  until the table shows its rows, and until a filter control answers a click; then applying
  a role filter (a new page) until its rows show.

Times are the page's own clock (``performance.now()``, from the navigation's start). The
first load is in a new browser context (empty cache); the warm loads follow in the same one.

``--screenshots DIR`` instead seeds a few synthetic cases and saves the three pages
(worklist, case page, modeler) as 1280x800 PNG files in DIR.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

import engine  # noqa: E402
from bench.seeding import clone_case  # noqa: E402
from tests.api.conftest import Server, start_server, stop_server  # noqa: E402
from tests.data import GOOD_PLAN as PLAN  # noqa: E402
from tests.data import NO_RED_FLAGS as SCREEN  # noqa: E402
from tests.web.conftest import CHROMIUM, sign_in  # noqa: E402

TARGET_MS = 1000.0
VIEWPORT = {"width": 1280, "height": 800}
PATHWAY = "lumbar_radiculopathy"
# The case page's diagram is drawn with its markers once a ready step carries its badge.
CASE_DRAWN = "#diagram .ready-badge"


def _intake(today: datetime, *, disabling: bool = True, nrs: int = 6) -> dict[str, Any]:
    return {
        "side": "left",
        "symptom_onset": (today - timedelta(days=10)).date().isoformat(),
        "leg_pain_nrs": nrs,
        "disabling_pain": disabling,
        "age": 44,
    }


@contextmanager
def database(url: str | None, data_dir: Path) -> Iterator[str]:
    """A fresh database: a SQLite file in ``data_dir``, or a new PostgreSQL database."""
    if url is None:
        yield f"sqlite:///{data_dir / 'pathway.db'}"
        return
    name = "pathway_web_bench"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = url.rsplit("/", 1)[0] + f"/{name}"
    db = engine.make_engine(fresh)
    engine.upgrade(db)
    with engine.session_factory(db).begin() as session:
        engine.deploy_bundled(session, now=datetime.now(UTC))
    db.dispose()
    try:
        yield fresh
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def start_case(
    steps: list[tuple[str, dict[str, Any]]], ref: str, **intake: Any
) -> Callable[..., str]:
    def run(session: Any, clock: engine.SystemClock) -> str:
        view = engine.start_case(
            session,
            pathway=PATHWAY,
            clock=clock,
            actor="bench",
            patient_ref=ref,
            first_step_data=_intake(clock.now(), **intake),
        )
        for step, data in steps:
            view = engine.complete_task(
                session, case_id=view.id, step=step, data=data, clock=clock, actor="bench"
            )
        return str(view.id)

    return run


def seed(url: str, makers: list[Callable[..., str]]) -> list[str]:
    """Cases driven through the engine; their ids in the order given."""
    db = engine.make_engine(url)
    clock = engine.SystemClock()
    with engine.session_factory(db).begin() as session:
        ids = [make(session, clock) for make in makers]
    db.dispose()
    return ids


def in_care(ref: str) -> Callable[..., str]:
    """A case in conservative care: its specialist referral ready, the 6-week timer waiting."""
    return start_case([("red_flag_screen", SCREEN), ("conservative_plan", PLAN)], ref)


def at_screen(ref: str, **intake: Any) -> Callable[..., str]:
    """A case waiting for its red-flag screen (a clinician's step)."""
    return start_case([], ref, **intake)


def until(page: Page, script: str, arg: Any = None) -> float:
    """The page's clock when ``script`` (a function of ``arg``) first returns true."""
    found = page.wait_for_function(
        f"(arg) => ({script})(arg) ? performance.now() : false", arg=arg, polling="raf"
    )
    return float(found.json_value())


def where_the_time_goes(page: Page) -> dict[str, float]:
    """Navigation timing, the ends of the page's requests and the stages the page marks
    (``performance.mark("pathway:…")``), on the page's clock (ms)."""
    return dict(
        page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const out = {html: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd};
              for (const r of performance.getEntriesByType('resource')) {
                const path = new URL(r.name).pathname;
                let key = null;
                if (path.endsWith('.js')) key = 'scripts';
                else if (path.endsWith('.bpmn')) key = 'diagram_file';
                else if (path.endsWith('/timeline')) key = 'api_timeline';
                else if (path.startsWith('/cases/')) key = 'api_case';
                else if (path === '/worklist') key = 'api_worklist';
                if (key) out[key] = Math.max(out[key] || 0, r.responseEnd);
                if (key && key.startsWith('api')) out[key + '_took'] = r.responseEnd - r.startTime;
              }
              // The stages the case page marks: the diagram fetched, imported, marked.
              for (const m of performance.getEntriesByType('mark')) {
                if (m.name.startsWith('pathway:')) out[m.name.slice(8).replaceAll('-', '_')] = m.startTime;
              }
              return out;
            }"""
        )
    )


def measure_case(page: Page, server: Server, case_id: str) -> tuple[float, dict[str, float]]:
    page.goto(f"{server.url}/cases/{case_id}", wait_until="commit")
    drawn = until(page, "(sel) => document.querySelector(sel)", CASE_DRAWN)
    return drawn, where_the_time_goes(page)


def measure_worklist(
    page: Page, server: Server, rows: int
) -> tuple[float, float, float, dict[str, float]]:
    page.goto(f"{server.url}/", wait_until="commit")
    shown = until(page, "(n) => document.querySelectorAll('#items tr').length >= n", rows)
    timing = where_the_time_goes(page)
    box = page.get_by_label("Overdue only")
    box.click()
    answered = until(page, "() => document.getElementById('overdue').checked")
    box.click()
    # Applying a filter loads a new page: from its navigation until its rows show.
    page.get_by_label("Role").select_option("clinician")
    with page.expect_navigation(wait_until="commit"):
        page.get_by_role("button", name="Apply filters").click()
    filtered = until(page, "(n) => document.querySelectorAll('#items tr').length >= n", rows)
    return shown, answered, filtered, timing


def report(name: str, first: float, warm: list[float]) -> None:
    mark = lambda ms: "met" if ms <= TARGET_MS else "MISSED"  # noqa: E731
    print(
        f"{name}: first load {first:7.0f} ms ({mark(first)}); warm loads "
        f"median {statistics.median(warm):6.0f} ms, max {max(warm):6.0f} ms "
        f"({mark(max(warm))})   (target <= {TARGET_MS:.0f} ms)"
    )


def breakdown(timing: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(timing.items(), key=lambda kv: kv[1]))


def bench(browser: Browser, server: Server, *, items: int, repeats: int) -> None:
    started = datetime.now(UTC)
    case_id, worklist_source = seed(
        server.database, [in_care("BENCH-CARE"), at_screen("BENCH-SCREEN")]
    )
    clone_case(
        engine.make_engine(server.database), worklist_source, items - 1, ref_prefix="BENCH-SCREEN-"
    )
    with server.client("bo", "clinician") as client:
        page_of = client.get("/worklist", params={"role": "clinician"}).json()
    total, rows = page_of["total"], len(page_of["items"])
    print(
        f"seeded in {(datetime.now(UTC) - started).total_seconds():.1f} s: "
        f"{total} ready steps for the clinician role; the worklist shows the first {rows}"
    )
    token = server.token("bo", "clinician")

    print("\n## case page: navigation until the diagram is drawn with its markers")
    runs = []
    for _ in range(repeats):
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = context.new_page()
        sign_in(page, server, token)
        runs.append([measure_case(page, server, case_id) for _ in range(repeats + 1)])
        context.close()
    first = [r[0] for r in runs]
    warm = [w for r in runs for w in r[1:]]
    report("case page", statistics.median(t for t, _ in first), [t for t, _ in warm])
    print(f"  first loads: {', '.join(f'{t:.0f}' for t, _ in first)} ms")
    print(f"  a first load, ms from navigation: {breakdown(first[0][1])}")
    print(f"  a warm load,  ms from navigation: {breakdown(warm[0][1])}")

    print(f"\n## worklist of {total} ready steps: navigation until usable")
    runs = []
    for _ in range(repeats):
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = context.new_page()
        sign_in(page, server, token)
        runs.append([measure_worklist(page, server, rows) for _ in range(repeats + 1)])
        context.close()
    first_w = [r[0] for r in runs]
    warm_w = [w for r in runs for w in r[1:]]
    report("rows shown", statistics.median(r[0] for r in first_w), [r[0] for r in warm_w])
    report("filter answers", statistics.median(r[1] for r in first_w), [r[1] for r in warm_w])
    report("role filter applied", statistics.median(r[2] for r in first_w), [r[2] for r in warm_w])
    print(f"  first loads (rows shown): {', '.join(f'{r[0]:.0f}' for r in first_w)} ms")
    print(f"  a first load, ms from navigation: {breakdown(first_w[0][3])}")
    print(f"  a warm load,  ms from navigation: {breakdown(warm_w[0][3])}")


def screenshots(browser: Browser, server: Server, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ids = seed(
        server.database,
        [
            in_care("MRN-100231"),
            at_screen("MRN-100244", nrs=8),
            at_screen("MRN-100257", disabling=False, nrs=4),
            in_care("MRN-100262"),
            at_screen("MRN-100270", nrs=5),
        ],
    )
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    sign_in(page, server, server.token("ana", "clinician", "coordinator"))
    page.wait_for_selector("#items tr")
    page.screenshot(path=str(folder / "page-worklist.png"))
    page.goto(f"{server.url}/cases/{ids[0]}")
    page.wait_for_selector(CASE_DRAWN)
    # Conservative care, collapsed, carries the ready step inside it and the 6-week date.
    page.wait_for_selector('#diagram [data-host-deadline="reassessment_due_6_weeks"]')
    page.get_by_role("heading", name="Where the case stands").evaluate(
        "(heading) => window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 8)"
    )
    page.wait_for_timeout(300)
    page.screenshot(path=str(folder / "page-case.png"))
    context.close()
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    sign_in(page, server, server.token("mo", "modeler"), next_page="/modeler")
    page.get_by_role("button", name=f"Open {PATHWAY} version 1").click()
    page.wait_for_selector("#bio-properties-panel-id, .bio-properties-panel", state="attached")
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / "page-modeler.png"))
    context.close()
    for name in ("page-worklist.png", "page-case.png", "page-modeler.png"):
        print(f"saved {folder / name} ({(folder / name).stat().st_size:,} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--items", type=int, default=1000, help="ready steps on the worklist")
    parser.add_argument("--repeats", type=int, default=5, help="first loads (and warm per first)")
    parser.add_argument("--screenshots", type=Path, help="save the three pages' PNGs here instead")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(args.database, Path(tmp)) as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        server = start_server(
            kind=url.split(":", 1)[0],
            database=url,
            data_dir=Path(tmp) / "server",
            extra_env={"PATHWAY_TIMEZONE": "Europe/Oslo", "PATHWAY_LOG_LEVEL": "WARNING"},
        )
        try:
            if args.screenshots:
                screenshots(browser, server, args.screenshots)
            else:
                bench(browser, server, items=args.items, repeats=args.repeats)
        finally:
            stop_server(server)
            browser.close()


if __name__ == "__main__":
    main()
