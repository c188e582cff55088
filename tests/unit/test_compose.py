"""docker-compose.yml and the Dockerfile agree with the code (Docker itself is not needed to check this)."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pytest
import tomllib
import typer
import yaml

from fedstream.cli.main import app
from fedstream.connection_security import postgres_url
from fedstream.observability.settings import ObservabilitySettings
from fedstream.settings import ServiceSettings, StackSettings
from fedstream.supervisor import module_of
from schemas.topics import KEY_CUSTODY, SERVICES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICE_DEFS: dict[str, dict[str, Any]] = COMPOSE["services"]
INFRA = ("kafka", "postgres", "redis")  # what the services need to run at all
OBSERVABILITY = ("otel-collector", "jaeger", "prometheus", "grafana")  # what operators watch them with
RUNTIME = (*SERVICES, KEY_CUSTODY)  # every process `fedstream service <name>` runs
FRONT_DOORS = ("admin-api",)  # operator-facing, not a stream service
ONE_SHOT = ("migrate",)  # runs as the database's owner before the services, then exits
METRICS_PORT = "9464"


def _bootstrap(name: str) -> ModuleType:
    return importlib.import_module(f"{module_of(name)}.bootstrap")


def _settings_class(name: str) -> type[ServiceSettings]:
    module = _bootstrap(name)
    own = [
        c for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, ServiceSettings) and c.__module__ == module.__name__
    ]
    assert len(own) == 1, f"{module.__name__} should define exactly one settings class, found {own}"
    return own[0]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# --- the six services ------------------------------------------------------------------------------


def test_the_services_and_only_infrastructure_besides() -> None:
    assert set(RUNTIME) <= set(SERVICE_DEFS)
    assert set(SERVICE_DEFS) - set(RUNTIME) == set(INFRA) | set(OBSERVABILITY) | set(FRONT_DOORS) | set(ONE_SHOT)


def test_the_admin_api_serves_through_the_cli() -> None:
    assert SERVICE_DEFS["admin-api"]["command"][:2] == ["api", "serve"]
    assert "api" in typer.main.get_command(app).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", RUNTIME)
def test_each_service_runs_itself_through_the_cli(name: str) -> None:
    service = SERVICE_DEFS[name]
    assert service["command"] == ["service", name]
    # What `fedstream service <name>` accepts and then runs.
    assert "service" in typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert callable(_bootstrap(name).main)


@pytest.mark.parametrize("name", RUNTIME)
def test_service_env_vars_are_settings_fields(name: str) -> None:
    settings_class = _settings_class(name)
    own_prefix = settings_class.model_config["env_prefix"]
    shared = {f"FEDSTREAM_{f}".upper() for f in (*StackSettings.model_fields, *ObservabilitySettings.model_fields)}
    own = {f"{own_prefix}{f}".upper() for f in settings_class.model_fields}
    env = _env(SERVICE_DEFS[name])
    assert env, f"{name} sets no environment"
    unknown = set(env) - shared - own
    assert not unknown, f"{name} sets {sorted(unknown)}, which no settings field reads (typo?)"


@pytest.mark.parametrize("name", RUNTIME)
def test_service_settings_resolve_from_the_compose_env(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [k for k in os.environ if k.startswith("FEDSTREAM_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(tmp_path))  # no endpoints file from a local stack can leak in
    env = _env(SERVICE_DEFS[name])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    endpoints = _settings_class(name).load().resolved()
    assert endpoints.kafka_bootstrap_servers == env["FEDSTREAM_KAFKA_BOOTSTRAP_SERVERS"]
    app_login = postgres_url(env["FEDSTREAM_APP_DATABASE_URL"], password=env["FEDSTREAM_APP_DATABASE_PASSWORD"])
    assert endpoints.app_database_url == app_login
    assert endpoints.database_url == app_login  # the only login this container holds
    assert endpoints.redis_url == env["FEDSTREAM_REDIS_URL"]
    assert endpoints.blob_store_url == env["FEDSTREAM_BLOB_STORE_URL"]


@pytest.mark.parametrize("name", RUNTIME)
def test_env_urls_point_at_compose_services(name: str) -> None:
    env = _env(SERVICE_DEFS[name])
    kafka_hosts = [server.rsplit(":", 1)[0] for server in env["FEDSTREAM_KAFKA_BOOTSTRAP_SERVERS"].split(",")]
    hosts = kafka_hosts + [urlparse(env[k]).hostname for k in ("FEDSTREAM_APP_DATABASE_URL", "FEDSTREAM_REDIS_URL")]
    for host in hosts:
        assert host in SERVICE_DEFS, f"{name} points at {host!r}, which the compose file does not define"


def test_kafka_bootstrap_is_an_advertised_internal_listener() -> None:
    bootstrap = _env(SERVICE_DEFS[SERVICES[0]])["FEDSTREAM_KAFKA_BOOTSTRAP_SERVERS"]
    advertised = _env(SERVICE_DEFS["kafka"])["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert any(listener.endswith(f"://{bootstrap}") for listener in advertised), advertised


def test_only_the_migrate_job_holds_the_owner_login_of_the_postgres_container() -> None:
    url = urlparse(_env(SERVICE_DEFS["migrate"])["FEDSTREAM_DATABASE_URL"])
    pg = _env(SERVICE_DEFS["postgres"])
    assert (url.hostname, url.username, url.password, url.path.lstrip("/")) == (
        "postgres", pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"],
    )
    for name in (*RUNTIME, *FRONT_DOORS):
        env = _env(SERVICE_DEFS[name])
        assert "FEDSTREAM_DATABASE_URL" not in env and "FEDSTREAM_DATABASE_PASSWORD" not in env, name


@pytest.mark.parametrize(("name", "login"), [*((n, "APP") for n in RUNTIME), ("admin-api", "API")])
def test_each_container_has_one_application_login_which_migrate_sets(name: str, login: str) -> None:
    env, migrate = _env(SERVICE_DEFS[name]), _env(SERVICE_DEFS["migrate"])
    logins = {k for k in env if k.endswith("_DATABASE_URL")}
    assert logins == {f"FEDSTREAM_{login}_DATABASE_URL"}, f"{name} should hold only the {login} login"
    url = urlparse(env[f"FEDSTREAM_{login}_DATABASE_URL"])
    assert url.username == {"APP": "fedstream_app", "API": "fedstream_api"}[login]
    assert url.hostname == "postgres" and url.password is None  # the password is a separate secret
    for key in (f"FEDSTREAM_{login}_DATABASE_URL", f"FEDSTREAM_{login}_DATABASE_PASSWORD"):
        assert migrate[key] == env[key], f"migrate must set the password {name} logs in with ({key})"


def test_migrate_runs_once_through_the_cli_before_the_services() -> None:
    migrate = SERVICE_DEFS["migrate"]
    assert migrate["command"] == ["stack", "migrate"]
    assert "migrate" in typer.main.get_command(app).commands["stack"].commands  # type: ignore[attr-defined]
    assert migrate["restart"] == "no"
    assert {dep: spec["condition"] for dep, spec in migrate["depends_on"].items()} == {"postgres": "service_healthy"}


@pytest.mark.parametrize("name", RUNTIME)
def test_blob_store_is_the_shared_volume(name: str) -> None:
    service = SERVICE_DEFS[name]
    blob_path = urlparse(_env(service)["FEDSTREAM_BLOB_STORE_URL"]).path
    mounts = {target: source for source, target in (v.split(":")[:2] for v in service["volumes"])}
    assert mounts.get(blob_path) == "blobs", f"{name} must mount the shared 'blobs' volume at {blob_path}"


@pytest.mark.parametrize("name", RUNTIME)
def test_services_wait_for_healthy_infrastructure_and_restart(name: str) -> None:
    service = SERVICE_DEFS[name]
    assert service["restart"] == "unless-stopped"
    assert {dep: spec["condition"] for dep, spec in service["depends_on"].items()} == {
        **dict.fromkeys(INFRA, "service_healthy"), "migrate": "service_completed_successfully",
    }


# --- the compose file as a whole -------------------------------------------------------------------


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    return dict.fromkeys(deps, {}) if isinstance(deps, list) else deps


def test_every_depends_on_target_exists_and_healthchecks_when_waited_on() -> None:
    for name, service in SERVICE_DEFS.items():
        for dep, spec in _depends_on(service).items():
            assert dep in SERVICE_DEFS, f"{name} depends on undefined {dep!r}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICE_DEFS[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"


def _volume_sources() -> list[tuple[str, str]]:
    return [
        (name, str(v["source"] if isinstance(v, dict) else v.split(":")[0]))
        for name, service in SERVICE_DEFS.items()
        for v in service.get("volumes", [])
    ]


def test_bind_mounts_exist_and_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for name, source in _volume_sources():
        if source.startswith((".", "/", "~")):
            assert (ROOT / source).exists(), f"{name} bind-mounts {source}, which is not in the repo"
        else:
            assert source in declared, f"{name} uses volume {source!r}, not declared under top-level volumes"


def test_build_context_has_the_dockerfile() -> None:
    builds = [s["build"] for s in SERVICE_DEFS.values() if "build" in s]
    assert builds, "the services must be built from the repo's Dockerfile"
    for build in builds:
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).is_file()


def test_kafka_runs_kraft_without_zookeeper() -> None:
    assert not any("zookeeper" in (s.get("image", "") + name).lower() for name, s in SERVICE_DEFS.items())
    kafka = _env(SERVICE_DEFS["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in kafka)
    node_id = kafka["KAFKA_NODE_ID"]
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@")
    # Topics come from schemas/topics.py with their partition counts; auto-creation would hide typos.
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert SERVICE_DEFS["kafka"]["image"].startswith("apache/kafka:")


def test_infrastructure_has_healthchecks() -> None:
    for name in INFRA:
        assert SERVICE_DEFS[name]["healthcheck"]["test"], name


# --- production: TimescaleDB and the observability stack -------------------------------------------


def _mounts(name: str) -> dict[str, str]:
    """Container path → source (a repo path or a named volume) of a service's volumes."""
    return {target: source for source, target, *_ in (v.split(":") for v in SERVICE_DEFS[name].get("volumes", []))}


def test_postgres_is_timescaledb_on_postgres_16() -> None:
    assert re.fullmatch(r"timescale/timescaledb:[\w.-]*pg16", SERVICE_DEFS["postgres"]["image"])


@pytest.mark.parametrize("name", OBSERVABILITY)
def test_observability_services_run_pinned_images(name: str) -> None:
    image = SERVICE_DEFS[name]["image"]
    assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image version ({image})"


@pytest.mark.parametrize("name", RUNTIME)
def test_services_export_traces_to_the_collector_and_serve_metrics_to_prometheus(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("FEDSTREAM_")]:
        monkeypatch.delenv(key)
    for key, value in _env(SERVICE_DEFS[name]).items():
        monkeypatch.setenv(key, value)
    settings = ObservabilitySettings()  # what `fedstream service` reads
    assert settings.traces == "otlp"
    # The span exporter is OTLP/HTTP: the endpoint must be the collector's HTTP receiver.
    endpoint = urlparse(settings.otlp_endpoint)
    collector = yaml.safe_load((ROOT / _mounts("otel-collector")["/etc/otelcol-contrib/config.yaml"]).read_text())
    http_receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert endpoint.hostname == "otel-collector" and endpoint.port == int(http_receiver.rsplit(":", 1)[1])
    # Prometheus reaches the service from another container, on the port it scrapes.
    assert settings.metrics_port == int(METRICS_PORT) and settings.metrics_host == "0.0.0.0"
    assert METRICS_PORT in [str(p) for p in SERVICE_DEFS[name]["expose"]]


def test_the_collector_runs_the_config_it_mounts() -> None:
    config = next(a.split("=", 1)[1] for a in SERVICE_DEFS["otel-collector"]["command"] if a.startswith("--config="))
    assert _mounts("otel-collector")[config] == "./infra/otel/collector.yaml"


def test_prometheus_scrapes_every_service_and_loads_the_mounted_rules() -> None:
    mounts = _mounts("prometheus")
    config_source = mounts["/etc/prometheus/prometheus.yml"]  # the image's default --config.file
    config = yaml.safe_load((ROOT / config_source).read_text())
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    assert {f"{name}:{METRICS_PORT}" for name in RUNTIME} <= targets
    for job in config["scrape_configs"]:  # every target is a compose service (or Prometheus itself)
        for target in (t for group in job["static_configs"] for t in group["targets"]):
            assert target.split(":")[0] in set(SERVICE_DEFS) | {"localhost"}, target
    # rule_files are relative to the config file: each must be mounted beside it, from the repo
    for rule_file in config["rule_files"]:
        assert (ROOT / mounts[f"/etc/prometheus/{rule_file}"]).is_file(), rule_file


def test_grafana_mounts_provisioning_and_the_dashboards_where_the_provider_reads_them() -> None:
    mounts = _mounts("grafana")
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    providers = yaml.safe_load((provisioning / "dashboards" / "fedstream.yml").read_text())["providers"]
    for provider in providers:
        source = mounts[provider["options"]["path"]]
        assert sorted(p.stem for p in (ROOT / source).glob("*.json")) == ["health", "privacy", "security", "training"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    assert urlparse(prometheus["url"]).hostname == "prometheus"


# --- the Dockerfile --------------------------------------------------------------------------------


DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(keyword: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.upper().startswith(keyword + " ")]


def test_dockerfile_copies_only_paths_that_exist() -> None:
    for copy in _instructions("COPY"):
        *sources, _ = copy.split()
        for source in sources:
            if not any(ch in source for ch in "*?["):  # globs may legitimately match nothing
                assert (ROOT / source).exists(), f"COPY {source}: not in the repo"


def test_dockerfile_runs_the_cli_as_a_non_root_user() -> None:
    assert _instructions("ENTRYPOINT") == ['["fedstream"]']
    users = _instructions("USER")
    assert users and users[-1] not in ("root", "0")


def test_dockerfile_installs_the_torch_version_the_project_pins() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = next(d for d in deps if re.match(r"torch\s*==", d)).replace(" ", "")
    assert any(pinned in run.replace(" ", "") for run in _instructions("RUN")), f"Dockerfile should install {pinned}"


def test_dockerfile_prepares_the_blob_mount_point() -> None:
    blob_path = urlparse(_env(SERVICE_DEFS[SERVICES[0]])["FEDSTREAM_BLOB_STORE_URL"]).path
    assert any(blob_path in run for run in _instructions("RUN")), "the volume would be root-owned"
