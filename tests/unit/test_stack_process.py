"""Ports, process records, detached processes and readiness polling of the embedded stack."""

import os
import socket

import psutil
import pytest

from fedstream.stack import StackError
from fedstream.stack.process import (
    ProcessRecord,
    RunDir,
    free_port,
    port_is_free,
    reuse_or_allocate,
    spawn_detached,
    stop_process,
    tcp_reachable,
    wait_until_ready,
)


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def me() -> ProcessRecord:
    return ProcessRecord(os.getpid(), psutil.Process().create_time(), "test", "here", "/nonexistent.log")


def test_a_free_port_is_bindable():
    assert port_is_free(free_port())


def test_a_listening_port_is_not_free(listener):
    assert not port_is_free(listener)
    assert tcp_reachable("127.0.0.1", listener)


def test_a_recorded_port_is_kept_while_free_and_moved_when_taken(listener):
    kept = free_port()
    assert reuse_or_allocate(kept) == kept
    assert reuse_or_allocate(listener) != listener
    assert reuse_or_allocate(None) > 0


def test_nothing_answers_on_a_closed_port():
    assert not tcp_reachable("127.0.0.1", free_port(), timeout_s=0.2)


def test_a_record_matches_only_its_own_process():
    record = me()
    assert record.is_alive()
    assert not ProcessRecord(record.pid, record.create_time - 100, "t", "a", "l").is_alive()
    assert not ProcessRecord(2**22 + 12345, 0.0, "t", "a", "l").is_alive()


def test_records_round_trip_with_a_plain_pid_file(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.read("redis") is None
    record = ProcessRecord(123, 4.5, "redis 6.2", "redis://x", "/log", extra={"port": 7})
    run.write("redis", record)
    assert run.read("redis") == record
    assert (tmp_path / "run" / "redis.pid").read_text() == "123\n"


def test_a_detached_process_outlives_its_launcher_and_stops_on_request(tmp_path):
    log = tmp_path / "sleep.log"
    pid, created = spawn_detached(["sleep", "30"], log_path=log)
    record = ProcessRecord(pid, created, "sleep", "-", str(log))
    try:
        assert record.is_alive()
        proc = psutil.Process(pid)
        assert proc.ppid() != os.getpid()  # re-parented: not our child to reap
        assert os.getsid(pid) != os.getsid(0)  # its own session: no terminal signals
    finally:
        stop_process(record, timeout_s=5)
    assert not record.is_alive()


async def test_a_server_that_dies_while_starting_is_a_stack_error_with_its_log(tmp_path):
    log = tmp_path / "fail.log"
    with pytest.raises(StackError, match="boom"):
        # Either the launcher already sees it gone, or readiness notices: both quote the log.
        pid, created = spawn_detached(["sh", "-c", "echo boom >&2; exit 3"], log_path=log)
        record = ProcessRecord(pid, created, "sh", "-", str(log))
        await wait_until_ready(_never, name="sh", record=record, timeout_s=5)


async def _never() -> bool:
    return False


async def test_readiness_waits_until_the_probe_succeeds():
    calls = []

    async def third_time_lucky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("not yet")
        return True

    await wait_until_ready(third_time_lucky, name="x", record=me(), timeout_s=5, interval_s=0.01)
    assert len(calls) == 3


async def test_readiness_gives_up_at_the_deadline_naming_the_last_failure():
    async def refused():
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(StackError, match="not ready after .*nobody home"):
        await wait_until_ready(refused, name="x", record=me(), timeout_s=0.1, interval_s=0.01)
