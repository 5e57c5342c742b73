"""docker-compose.yml, checked against the code it runs (there is no Docker engine here; the
scheduler and API tests start the same processes directly): every setting it passes exists,
every command parses, and the services come up in the right order with Redis and PostgreSQL
keeping their data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from api.settings import ApiSettings
from cli.main import build_parser
from workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_every_setting_passed_is_one_pathway_reads(compose: dict[str, Any]) -> None:
    env = compose["x-pathway-env"]
    fields = {*ApiSettings.model_fields, *WorkerSettings.model_fields}
    known = {f"PATHWAY_{name.upper()}" for name in fields}
    assert set(env) - known == set()
    for name in ("api", "worker", "beat", "migrate"):
        assert compose["services"][name]["environment"] == env


@pytest.mark.parametrize("service", ["migrate", "api", "worker", "beat"])
def test_each_pathway_command_parses(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    assert command[0] == "pathway"
    build_parser().parse_args(command[1:])  # exits (failing the test) on a bad command


def test_start_order_and_persistence(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    for name in ("worker", "beat"):
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert redis_command[redis_command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    for name in ("postgres", "redis", "api", "worker"):
        assert "healthcheck" in services[name], name


def test_metrics_are_off_unless_asked_and_the_workers_stay_inside(compose: dict[str, Any]) -> None:
    env = compose["x-pathway-env"]
    assert env["PATHWAY_METRICS"] == "${PATHWAY_METRICS:-false}"
    # The worker's metrics server answers on the compose network, where Prometheus runs ...
    assert env["PATHWAY_METRICS_HOST"] == "0.0.0.0"
    assert WorkerSettings(metrics_port=env["PATHWAY_METRICS_PORT"]).metrics_port == 9464
    # ... and never on the host's own addresses: no sign-in guards it.
    assert "ports" not in compose["services"]["worker"]
