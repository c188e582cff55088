"""Observability settings (12-factor): everything off or local by default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_", extra="ignore")

    # off: spans are not recorded (trace context still propagates); console: print spans;
    # otlp: export to an OpenTelemetry collector; file: JSON lines per process (tests, offline debugging).
    traces: Literal["off", "console", "otlp", "file"] = "off"
    otlp_endpoint: str = "http://localhost:4318"
    traces_dir: Path = Path(".fedstream/traces")
    # 0: no metrics endpoint; otherwise /metrics in Prometheus text format on this port.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in containers, where Prometheus scrapes from outside
