"""The wheel, installed as the Dockerfile installs it, outside the checkout.

The project is built with ``pip wheel`` from a copy of the checkout, installed with
``--no-deps`` into a fresh virtual environment in a temporary folder, and its ``pathway``
command run there. Its dependencies come from the project's .venv through PYTHONPATH: no
package index is needed, and since PYTHONPATH entries are not site folders their .pth files
(among them the editable install's finder, which would import the checkout) are not read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import engine
from tests.api.conftest import free_port, intake

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "disabling_pain_procedure_candidate.json"
# Not the project's: what a checkout has beside it that a build must not see. The build
# output (build/, dist/) only at the top: web/static/dist holds the pages' bundled assets,
# which the wheel ships.
_BESIDE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "__pycache__", "*.egg-info", ".pathway", ".*_cache"
)


def NOT_SOURCE(folder: str, names: list[str]) -> set[str]:
    ignored = set(_BESIDE(folder, names))
    if Path(folder) == ROOT:
        ignored |= {"build", "dist"} & set(names)
    return ignored


WHERE = """
import json, sys
import engine, engine.bundled, engine.store
folder = engine.bundled.directory()
print(json.dumps({
    "engine": engine.__file__,
    "diagrams": sorted(str(folder / p.name) for p in folder.iterdir()),
    "migrations": str(engine.store.MIGRATIONS),
    "editable": [str(f) for f in sys.meta_path if "editable" in str(f).lower()]
    + [p for p in sys.path if "editable" in p.lower() or p.rstrip("/") == sys.argv[1]],
}))
"""


@dataclass
class Installed:
    """A fresh virtual environment with the wheel in it, and where to run it."""

    venv: Path
    home: Path  # the working directory of every command: outside the checkout
    env: dict[str, str]

    def pathway(self, *args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / "pathway"), *args],
            cwd=self.home,
            env={**self.env, "PATHWAY_DATA_DIR": str(data_dir)},
            text=True,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    assert not base.resolve().is_relative_to(ROOT)
    source, dist, venv, home = base / "source", base / "dist", base / "venv", base / "home"
    # A copy, so that no stale build/ of the checkout ends up in the wheel.
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(dist)]
    subprocess.run(build, check=True, capture_output=True, timeout=120)
    (wheel,) = dist.glob("pathway-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps"]
    subprocess.run([*install, "--no-index", str(wheel)], check=True, timeout=120)
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATHWAY_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # the project's .venv
    return Installed(venv, home, env)


def test_the_wheel_runs_its_own_engine_and_diagrams_not_the_checkouts(
    installed: Installed,
) -> None:
    python = installed.venv / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", WHERE, str(ROOT)],
        cwd=installed.home,
        env=installed.env,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    where = json.loads(result.stdout)
    venv = str(installed.venv)
    assert where["engine"].startswith(venv), where
    assert where["migrations"].startswith(venv), where
    assert [Path(p).name for p in where["diagrams"]] == [
        "lumbar_radiculopathy.bpmn",
        "red_flags.dmn",
    ]
    assert all(p.startswith(venv) for p in where["diagrams"]), where
    assert where["editable"] == [], "the checkout is importable beside the wheel"


def test_validate_finds_the_shipped_diagrams_deployable(installed: Installed) -> None:
    shipped = next((installed.venv / "lib").glob("python3*/site-packages/bpmn"))
    files = [str(shipped / "lumbar_radiculopathy.bpmn"), str(shipped / "red_flags.dmn")]
    result = installed.pathway("validate", *files, data_dir=installed.home / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:2] == [f"{f}: deployable" for f in files]


def test_simulate_gives_the_same_timeline_as_the_checkout(installed: Installed) -> None:
    result = installed.pathway("simulate", "--json", str(EXAMPLE), data_dir=installed.home)
    assert result.returncode == 0, result.stderr
    expected = engine.run_scenario(engine.load_scenario(EXAMPLE)).as_json()
    assert json.loads(result.stdout) == expected


def test_db_upgrade_finds_the_shipped_migrations(installed: Installed, tmp_path: Path) -> None:
    result = installed.pathway("db", "upgrade", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    head = engine.make_engine(f"sqlite:///{tmp_path / 'head.db'}")
    engine.upgrade(head)
    assert result.stdout.strip() == f"database schema at revision {engine.current_revision(head)}"
    head.dispose()


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`pathway serve` from the wheel on SQLite in a fresh data folder: its URL and data dir."""
    port = free_port()
    log = tmp_path / "serve.log"
    data_dir = tmp_path / "data"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "pathway"), "serve", "--port", str(port)],
            cwd=installed.home,
            env={**installed.env, "PATHWAY_DATA_DIR": str(data_dir)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url, data_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_serve_starts_a_case_on_the_bundled_pathway(
    installed: Installed, served: tuple[str, Path]
) -> None:
    url, data_dir = served
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    token = installed.pathway("token", "--sub", "ana", "--role", "coordinator", data_dir=data_dir)
    assert token.returncode == 0, token.stderr
    created = httpx.post(
        f"{url}/cases",
        json={"pathway": "lumbar_radiculopathy", "patient_ref": "MRN-WHEEL", "data": intake()},
        headers={"Authorization": f"Bearer {token.stdout.strip()}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert [t["id"] for t in created.json()["ready_tasks"]] == ["red_flag_screen"]
    # The pages and their bundled assets are in the wheel: no Node.js, no checkout.
    signin = httpx.get(f"{url}/signin", timeout=5)
    assert signin.status_code == 200 and "<form" in signin.text, signin.text[:300]
    sheet = signin.text.split('rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    assert httpx.get(f"{url}{sheet}", timeout=5).status_code == 200


def test_the_image_installs_the_wheel_not_the_checkout() -> None:
    # No Docker engine here: read the Dockerfile's stages instead of building them.
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    stages: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            stages.append([])
        elif stages and not line.startswith("#"):
            stages[-1].append(line)
    assert len(stages) == 3, "the pages' assets, a build stage and the image"
    web, build, image = stages
    # Node.js builds the assets; the wheel carries them; the image has no Node.js.
    assert any(line.startswith("RUN node web/build.mjs") for line in web), web
    assert "COPY --from=web /src/web/static/dist ./web/static/dist" in build, build
    assert any(line.startswith("RUN pip wheel . --no-deps") for line in build), build
    assert any(line.startswith("COPY --from=build") for line in image), image
    installs = [line for line in image if "pip install" in line]
    assert installs and all(".whl" in line and " -e" not in line for line in installs), image
    # The image holds no source of its own: the diagrams reach it inside the wheel.
    assert not [
        line for line in image if line.startswith(("COPY ", "ADD ")) and "--from" not in line
    ]
