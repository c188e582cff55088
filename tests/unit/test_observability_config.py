"""Alerts, dashboards and the collector as code (infra/): structure, the metric contract, and promtool.

The metric names below are the contract the services expose; alert rules and dashboards may only use
them, so a renamed metric breaks this test instead of silently emptying a panel or muting an alert."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
COLLECTOR = ROOT / "infra" / "otel" / "collector.yaml"

METRICS = {
    "fedstream_events_consumed_total": {"service", "topic", "type"},
    "fedstream_events_failed_total": {"service", "reason"},
    "fedstream_updates_rejected_total": {"reason"},
    "fedstream_updates_accepted_total": set(),
    "fedstream_round_duration_seconds": {"le"},  # histogram: _bucket/_sum/_count
    "fedstream_round_metric": {"federation", "metric"},
    "fedstream_rounds_total": {"outcome"},
    "fedstream_privacy_epsilon": {"federation", "participant"},
    "fedstream_privacy_budget_exhausted_total": set(),
    "fedstream_live_participants": {"federation"},
    "fedstream_expected_participants": {"federation"},
    "fedstream_alerts_raised_total": {"severity", "kind", "federation"},  # validation's stream processor
    "process_cpu_seconds_total": set(),
    "process_resident_memory_bytes": set(),
    "ALERTS": {"alertname", "alertstate", "severity", "category"},  # Prometheus' own series of alerts
}
TARGET_LABELS = {"job", "instance"}  # added by the scrape, present on every series
SEVERITIES = {"critical", "warning", "info"}
# Seed §6.2, condition → the alert that raises it, at the seed's level.
SEED_ALERTS = {
    "convergence failure": ("FedstreamConvergenceFailure", "critical"),
    "privacy guarantee violation": ("FedstreamPrivacyGuaranteeViolation", "critical"),
    "security breach": ("FedstreamSecurityBreach", "critical"),
    "high error rates (updates)": ("FedstreamHighUpdateRejectionRate", "warning"),
    "high error rates (events)": ("FedstreamHighEventFailureRate", "warning"),
    "slow convergence": ("FedstreamSlowConvergence", "warning"),
    "resource saturation (cpu)": ("FedstreamCPUSaturation", "warning"),
    "resource saturation (memory)": ("FedstreamMemorySaturation", "warning"),
    "round completion": ("FedstreamRoundCompleted", "info"),
    "participant join": ("FedstreamParticipantJoined", "info"),
    "participant leave": ("FedstreamParticipantLeft", "info"),
    "configuration changes": ("FedstreamConfigurationChange", "info"),
}

_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
_LABEL_MATCH = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]]


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def _dashboard_exprs() -> list[tuple[str, str]]:
    return [
        (f"{name}/{panel['title']}", target["expr"])
        for name, dash in _dashboards().items()
        for panel in dash["panels"]
        for target in panel["targets"]
    ]


def _metric(name: str) -> str | None:
    """The contract metric a series name belongs to (histogram suffixes folded), else None."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in METRICS:
            return name.removesuffix(suffix)
    return name if name in METRICS else None


def _series_used(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, labels matched in its selector) for each metric-looking name in a PromQL expression."""
    used = []
    for name, selector in _SELECTOR.findall(expr):
        if name.startswith(("fedstream_", "process_")) or name == "ALERTS":
            used.append((name, set(_LABEL_MATCH.findall(selector or ""))))
    return used


def _all_exprs() -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for rule in _rules()] + _dashboard_exprs()


# --- the metric contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("where,expr", _all_exprs(), ids=[w for w, _ in _all_exprs()])
def test_exprs_use_only_contract_metrics_and_their_labels(where: str, expr: str) -> None:
    used = _series_used(expr)
    assert used, f"{where}: no metric in {expr!r}"
    allowed_labels: set[str] = set(TARGET_LABELS)
    for name, labels in used:
        metric = _metric(name)
        assert metric is not None, f"{where}: {name} is not a metric the services expose"
        assert labels <= METRICS[metric] | TARGET_LABELS, f"{where}: {name} has no label {labels - METRICS[metric]}"
        allowed_labels |= METRICS[metric]
    for group in _GROUPING.findall(expr):
        grouping = {label.strip() for label in group.split(",") if label.strip()}
        assert grouping <= allowed_labels, f"{where}: groups by {grouping - allowed_labels}, which no series has"


# --- alert rules -----------------------------------------------------------------------------------


def test_every_rule_has_expr_severity_category_and_summary() -> None:
    rules = _rules()
    assert len({r["alert"] for r in rules}) == len(rules), "alert names must be unique"
    for rule in rules:
        assert rule["alert"].startswith("Fedstream") and rule["expr"].strip(), rule
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["labels"]["category"], rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]


def test_the_seed_conditions_each_have_an_alert_at_the_seed_level() -> None:
    severity = {r["alert"]: r["labels"]["severity"] for r in _rules()}
    for condition, (alert, level) in SEED_ALERTS.items():
        assert severity.get(alert) == level, f"seed §6.2 {condition!r}: expected {alert} at {level}"
    assert set(severity.values()) == SEVERITIES


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        # Not a skip: CI installs it (.ci/run, from Debian's prometheus package), so absence is a broken machine.
        pytest.fail("promtool is missing: .ci/run installs it from Debian's `prometheus` package (apt-get download)")
    return path


def _run_promtool(*args: str) -> str:
    done = subprocess.run([_promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_promtool_accepts_the_prometheus_config_and_its_rules() -> None:
    out = _run_promtool("check", "config", "prometheus.yml")
    assert f"{len(_rules())} rules found" in out


def test_each_alert_fires_on_its_synthetic_condition_and_stays_silent_otherwise() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]
    }
    silent = {
        case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]
    }
    every = {r["alert"] for r in _rules()}
    assert fired == every, f"alerts never shown to fire: {every - fired}"
    assert silent == every, f"alerts never shown to stay silent: {every - silent}"
    _run_promtool("test", "rules", "alerts_test.yml")


# --- Grafana ---------------------------------------------------------------------------------------


def test_four_dashboards_with_unique_uids_on_the_provisioned_datasource() -> None:
    dashboards = _dashboards()
    assert sorted(dashboards) == ["health", "privacy", "security", "training"]
    assert len({d["uid"] for d in dashboards.values()}) == 4
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    uid = next(d["uid"] for d in datasources if d["type"] == "prometheus")
    for name, dash in dashboards.items():
        panels = dash["panels"]
        assert panels, name
        assert len({p["id"] for p in panels}) == len(panels), f"{name}: panel ids must be unique"
        for panel in panels:
            assert panel["datasource"]["uid"] == uid and panel["targets"], f"{name}/{panel['title']}"
            assert all(t["datasource"]["uid"] == uid and t["expr"].strip() for t in panel["targets"])
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


# --- OpenTelemetry collector -----------------------------------------------------------------------


def test_collector_pipelines_use_only_defined_components_and_send_traces_to_jaeger() -> None:
    config = yaml.safe_load(COLLECTOR.read_text())
    pipelines = config["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"pipeline {name} uses undefined {kind[:-1]} {component}"
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    trace_endpoints = [config["exporters"][e]["endpoint"] for e in pipelines["traces"]["exporters"]]
    assert "jaeger:4317" in trace_endpoints
    assert set(config["service"].get("extensions", [])) <= set(config.get("extensions", {}))
