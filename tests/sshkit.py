"""Shared by the ssh tests: a started workspace and the real OpenSSH clients against it.

The server runs in-process (the test's event loop); clients are asyncio subprocesses so the
loop keeps serving while they run. On a host without an `agent` account the workspace runs
as the test's own user (user=None); privilege tests pass a throwaway account.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pwd
import re
import struct
import subprocess
import termios
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from hud.capabilities.ssh import Workspace

TIMEOUT = 30.0


class Client:
    """Builds and runs OpenSSH client commands for one started workspace."""

    def __init__(self, ws: Workspace, keydir: Path) -> None:
        binding = ws._binding
        assert binding is not None
        self.ws, self.user = ws, binding.params["user"]
        self.port = binding.url.rsplit(":", 1)[1]
        self.key = keydir / "id_ed25519"
        self.key.write_text(binding.params["client_key"])
        self.key.chmod(0o600)
        known = keydir / "known_hosts"
        known.write_text(f"[127.0.0.1]:{self.port} {binding.params['host_pubkey']}\n")
        self.options = ["-i", str(self.key), "-o", f"UserKnownHostsFile={known}",
                        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                        "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]

    def ssh(self, *args: str, user: str | None = None) -> list[str]:
        return ["ssh", *self.options, "-p", self.port, f"{user or self.user}@127.0.0.1", *args]

    def scp(self, *args: str) -> list[str]:
        return ["scp", *self.options, "-P", self.port, *args]

    def sftp(self, *args: str) -> list[str]:
        return ["sftp", *self.options, "-P", self.port, *args, f"{self.user}@127.0.0.1"]

    async def run(self, argv: list[str], input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(input), TIMEOUT)
        return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), err.decode())


async def started(root: Path, keydir: Path, user: str | None = None,
                  **options: float) -> tuple[Workspace, Client]:
    ws = Workspace(str(root), user=user, **options)
    await ws.start()
    return ws, Client(ws, keydir)


@asynccontextmanager
async def serving(tmp_path: Path, user: pwd.struct_passwd | None = None) -> AsyncIterator[Client]:
    """A started workspace in `tmp_path/ws` (owned by `user` if given) and a client for it."""
    root, keys = tmp_path / "ws", tmp_path / "keys"
    root.mkdir()
    keys.mkdir()
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        tmp_path.chmod(0o755)
    ws, cli = await started(root, keys, user=user.pw_name if user else None)
    try:
        yield cli
    finally:
        await ws.stop()


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


class Terminal:
    """A local pseudo-terminal driving an `ssh -tt` client, with expect()."""

    def __init__(self, rows: int, cols: int) -> None:
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.buffer = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def expect(self, pattern: bytes, timeout: float = 15.0) -> re.Match[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (match := re.search(pattern, self.buffer)) is None:
            ready = loop.create_future()
            loop.add_reader(self.master, ready.set_result, None)
            try:
                await asyncio.wait_for(ready, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise AssertionError(f"{pattern!r} not seen; got {self.buffer[-500:]!r}") from None
            finally:
                loop.remove_reader(self.master)
            self.buffer += os.read(self.master, 65536)
        return match

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

