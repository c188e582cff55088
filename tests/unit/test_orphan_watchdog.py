"""A service stops once its supervisor is gone, instead of running on as an orphan."""

from __future__ import annotations

import asyncio

from fedstream.service import stop_when_orphaned


async def test_a_service_stops_when_its_supervisor_disappears() -> None:
    parents = iter([4242, 4242, 4242, 1])  # reparented to init after the supervisor died
    stopped: list[bool] = []
    await asyncio.wait_for(stop_when_orphaned(4242, lambda: stopped.append(True), lambda: next(parents), 0), 5)
    assert stopped == [True]


async def test_a_service_keeps_running_while_its_supervisor_lives() -> None:
    stopped: list[bool] = []
    watchdog = asyncio.create_task(stop_when_orphaned(4242, lambda: stopped.append(True), lambda: 4242, 0))
    for _ in range(50):  # many polls, all seeing the supervisor alive
        await asyncio.sleep(0)
    assert not watchdog.done() and stopped == []
    watchdog.cancel()
