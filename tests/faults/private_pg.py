"""A throwaway PostgreSQL cluster of our own, to stop and start under a running bridge
(the shared test cluster is never touched).  ``initdb``/``pg_ctl`` run as the ``postgres``
OS user when we are root (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from tests.e2e.conftest import free_port


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (the one holding initdb)."""

    def version(path: str) -> int:
        part = path.split("/")[4]
        return int(part) if part.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PrivatePostgres:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="bridge-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    # --- commands (sync for fixtures, async inside tests: the simulators share the loop) --

    def _argv(self, *argv: str) -> list[str]:
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def run(self, *argv: str) -> None:
        done = subprocess.run(self._argv(*argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")

    async def arun(self, *argv: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._argv(*argv), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {out.decode()}")

    def _start_argv(self) -> list[str]:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        return ["pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start"]

    def _stop_argv(self, mode: str, wait: bool = True) -> list[str]:
        return ["pg_ctl", "-D", str(self.data), "-m", mode, "-w" if wait else "-W", "stop"]

    # --- lifecycle ------------------------------------------------------------------------

    def create(self) -> None:
        """initdb and start."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.run(*self._start_argv())

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.run(*self._stop_argv("immediate"))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    async def start(self) -> None:
        await self.arun(*self._start_argv())

    async def stop(self, mode: str = "fast") -> None:
        await self.arun(*self._stop_argv(mode))

    async def shut_door(self, database: str) -> asyncpg.Connection:
        """The first phase of a shutdown, held open: ``pg_ctl stop -m smart`` makes the
        server refuse every new connection ("the database system is shutting down",
        SQLSTATE 57P03), and the clients of ``database`` are disconnected, so the bridge
        must reconnect, and is refused.  Returns the admin session that keeps the smart
        shutdown from finishing; ``stop("fast")`` ends it."""
        admin = await self.connect("postgres")
        await self.arun(*self._stop_argv("smart", wait=False))
        for _ in range(100):
            try:
                probe = await self.connect("postgres")
            except asyncpg.CannotConnectNowError:
                break
            await probe.close()
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the server kept accepting connections after stop -m smart")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return admin

    # --- databases ------------------------------------------------------------------------

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database=database, timeout=5
        )

    async def create_database(self, name: str) -> str:
        conn = await self.connect("postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)
