"""Point-in-time recovery for the embedded PostgreSQL: base backups plus the WAL archive.

The server archives every completed WAL segment (``archive_command`` in stack/postgres.py). A base
backup and the archive together restore the database as it was at any moment after the backup:
``restore_to`` starts a second server on a copy, replays WAL up to the target time and promotes it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from fedstream.stack.errors import StackError
from fedstream.stack.postgres import PostgreSQL, database_url, hand_over, postgres_command, service_account
from fedstream.stack.process import ProcessRecord, free_port, run_tool, spawn_detached, stop_process

RECOVERY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RestoredServer:
    record: ProcessRecord
    database_url: str

    def stop(self) -> None:
        stop_process(self.record, sig=PostgreSQL.stop_signal)


async def base_backup(postgres: PostgreSQL, target: Path) -> None:
    """A consistent copy of the running cluster (``pg_basebackup``, WAL fetched alongside)."""
    record = postgres.recorded()
    if record is None or not record.is_alive():
        raise StackError("PostgreSQL is not running: nothing to back up")
    bin_dir, _ = postgres.binaries()
    target.mkdir(parents=True)
    account = service_account()
    if account:
        hand_over(target, account)
    await run_tool(
        [str(bin_dir / "pg_basebackup"), "-d", database_url(record.extra["port"], "postgres"), "-D", str(target),
         "-X", "fetch", "--checkpoint=fast", "--no-sync"],
        what="pg_basebackup", user=account, timeout_s=300,
    )


async def archive_current_wal(database_url_: str, timeout_s: float = 60.0) -> None:
    """Close the current WAL segment and wait until the archiver has copied it."""
    conn = await asyncpg.connect(database_url_)
    try:
        segment = await conn.fetchval("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout_s
        while (await conn.fetchval("SELECT last_archived_wal FROM pg_stat_archiver") or "") < segment:
            if time.monotonic() > deadline:
                raise StackError(f"WAL segment {segment} was not archived within {timeout_s:.0f} s")
            await conn.execute("SELECT pg_sleep(0.1)")  # the archiver works asynchronously; poll its view
    finally:
        await conn.close()


async def restore_to(postgres: PostgreSQL, backup: Path, target_time: datetime, workdir: Path) -> RestoredServer:
    """Start a copy of ``backup`` that replays archived WAL up to ``target_time``, then promotes."""
    data_dir = workdir / "data"
    shutil.copytree(backup, data_dir)
    (data_dir / "recovery.signal").touch()
    with open(data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write(
            f"restore_command = 'cp {postgres.archive_dir}/%f %p'\n"
            f"recovery_target_time = '{target_time.isoformat()}'\n"
            "recovery_target_action = 'promote'\n"
        )
    account = service_account()
    if account:
        _chown_tree(data_dir, account)
    bin_dir, _ = postgres.binaries()
    port = free_port()
    pid, created = spawn_detached(
        postgres_command(bin_dir, data_dir, port), log_path=workdir / "restore.log", cwd=data_dir, user=account
    )
    record = ProcessRecord(pid=pid, create_time=created, kind="postgresql (restored)", address=database_url(port),
                           log=str(workdir / "restore.log"), extra={"port": port})
    await _wait_promoted(database_url(port), record)
    return RestoredServer(record, database_url(port))


async def _wait_promoted(url: str, record: ProcessRecord) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while True:
        if not record.is_alive():
            raise StackError(f"the restored server exited; see {record.log}")
        try:
            conn = await asyncpg.connect(url, timeout=2)
            try:
                if not await conn.fetchval("SELECT pg_is_in_recovery()"):
                    return
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass  # still starting or replaying
        if time.monotonic() > deadline:
            raise StackError(f"recovery did not finish within {RECOVERY_TIMEOUT_S:.0f} s; see {record.log}")
        await asyncio.sleep(0.2)  # polling the server under the deadline above


def _chown_tree(root: Path, account: str) -> None:
    import pwd

    entry = pwd.getpwnam(account)
    for path in [root, *root.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
