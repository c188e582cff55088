"""Choosing the broker and resolving endpoints when some or all servers are given in the settings."""

import json
import socket

import pytest

from fedstream.settings import StackSettings
from fedstream.stack import LocalStack, StackError
from fedstream.stack.manager import choose_broker, external_host_port, local_endpoints, run_sync


@pytest.mark.parametrize(
    ("setting", "java", "expected"),
    [
        ("auto", "/usr/bin/java", "kafka"),
        ("auto", None, "tansu"),
        ("kafka", "/usr/bin/java", "kafka"),
        ("tansu", "/usr/bin/java", "tansu"),
        ("TANSU", None, "tansu"),
    ],
)
def test_the_broker_follows_the_setting_and_the_java_found(setting, java, expected):
    assert choose_broker(setting, java) == expected


def test_kafka_without_java_is_a_stack_error():
    with pytest.raises(StackError, match="java"):
        choose_broker("kafka", None)


def test_an_unknown_broker_is_a_stack_error():
    with pytest.raises(StackError, match="redpanda"):
        choose_broker("redpanda", "/usr/bin/java")


@pytest.mark.parametrize(
    ("name", "address", "expected"),
    [
        ("kafka", "broker-1:9092,broker-2:9092", ("broker-1", 9092)),
        ("kafka", "PLAINTEXT://10.0.0.5:19092", ("10.0.0.5", 19092)),
        ("postgres", "postgresql://u:p@db.internal:6543/fedstream", ("db.internal", 6543)),
        ("postgres", "postgresql://u@db/fedstream", ("db", 5432)),
        ("redis", "redis://cache:6380/0", ("cache", 6380)),
        ("redis", "redis://cache/0", ("cache", 6379)),
        ("redis", "unix:///run/redis.sock", None),
    ],
)
def test_external_addresses_give_the_port_to_check(name, address, expected):
    assert external_host_port(name, address) == expected


def test_explicit_settings_win_over_started_servers(tmp_path):
    settings = StackSettings(state_dir=tmp_path, redis_url="redis://cache:6379/1")
    started = {"kafka": "127.0.0.1:1", "postgres": "postgresql://x@127.0.0.1:2/fedstream", "redis": "unused"}
    endpoints = local_endpoints(settings, tmp_path, started, "kafka")
    assert endpoints == {
        "kafka_bootstrap_servers": "127.0.0.1:1",
        "database_url": "postgresql://x@127.0.0.1:2/fedstream",
        "redis_url": "redis://cache:6379/1",
        "blob_store_url": (tmp_path / "blobs").as_uri(),
        "kafka_flavour": "kafka",
    }


def all_external(tmp_path, **overrides) -> StackSettings:
    values = {
        "state_dir": tmp_path,
        "kafka_bootstrap_servers": "kafka.internal:9092",
        "database_url": "postgresql://fedstream@db.internal:5432/fedstream",
        "redis_url": "redis://cache.internal:6379/0",
        "blob_store_url": "s3://bucket/fedstream",
        **overrides,
    }
    return StackSettings(**values)


def test_up_with_every_address_given_starts_nothing_and_writes_them(tmp_path):
    settings = all_external(tmp_path)
    endpoints = LocalStack(settings).up()
    assert endpoints["kafka_bootstrap_servers"] == "kafka.internal:9092"
    assert endpoints["kafka_flavour"] == "kafka"
    assert json.loads(settings.endpoints_path().read_text()) == endpoints
    assert not (tmp_path / "run").exists()
    resolved = StackSettings(state_dir=tmp_path).resolved()
    assert resolved.database_url == "postgresql://fedstream@db.internal:5432/fedstream"
    assert resolved.blob_store_url == "s3://bucket/fedstream"


def test_status_reports_external_servers_and_whether_they_answer(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        stack = LocalStack(all_external(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0"))
        statuses = {s.name: s for s in stack.status()}
    assert set(statuses) == {"kafka", "postgres", "redis"}
    assert all(not s.started_by_us and s.origin == "external" and s.pid is None for s in statuses.values())
    assert statuses["redis"].running
    assert statuses["redis"].address == f"redis://127.0.0.1:{port}/0"


def test_down_of_an_unused_state_dir_stops_nothing(tmp_path):
    assert LocalStack(StackSettings(state_dir=tmp_path / "never-used")).down() == []
    assert not (tmp_path / "never-used").exists()


def test_run_sync_runs_a_coroutine_from_plain_code():
    async def answer():
        return 42

    assert run_sync(answer()) == 42


async def test_run_sync_works_inside_a_running_event_loop():
    # An async fixture calling LocalStack.up() must not hit "asyncio.run() cannot be called from a running loop".
    async def answer():
        return 42

    assert run_sync(answer()) == 42
