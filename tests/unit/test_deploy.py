"""compose.yaml and deploy/ stay in step with the CLI and the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from parkstream.cli import build_parser
from parkstream.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
OURS = {
    name: svc
    for name, svc in COMPOSE["services"].items()
    if svc.get("image") == "parkstream:latest"
}


def test_every_parkstream_service_runs_a_real_command() -> None:
    assert set(OURS) >= {"bridge", "worker", "projector", "migrate", "topics"}
    parser = build_parser()
    for name, service in OURS.items():
        args = parser.parse_args(service["command"])
        assert callable(args.handler), name


@pytest.mark.parametrize("name", sorted(OURS))
def test_its_environment_names_real_settings(name: str) -> None:
    fields = set(Settings.model_fields)
    for var in OURS[name]["environment"]:
        assert var.startswith(ENV_PREFIX)
        key = var.removeprefix(ENV_PREFIX).lower().removesuffix("_file")
        assert key in fields, var


def test_prometheus_scrapes_the_ports_the_processes_serve() -> None:
    from parkstream.cli import bridge, projector, worker

    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = set(config["scrape_configs"][0]["static_configs"][0]["targets"])
    assert targets == {
        f"bridge:{bridge.DEFAULT_METRICS_PORT}",
        f"worker:{worker.DEFAULT_METRICS_PORT}",
        f"projector:{projector.DEFAULT_METRICS_PORT}",
    }


def test_published_ports_bind_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), name
