"""Shared fixtures: an in-process control server and a real `hud serve` subprocess.

Unix socket paths are limited to ~107 bytes, so sockets live in short /tmp dirs rather
than under pytest's long tmp_path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.serve.connections import ControlServer
from hud.serve.loader import load_environment

ENVS = Path(__file__).parent / "envs"
READY_TIMEOUT = 20.0

# A run started in the background by a non-interactive shell (`bash .ci/run &`) inherits
# SIGINT ignored, and every process the tests start would inherit that too: a Ctrl-C sent
# to a command in the agent's shell, or to a driver, would then do nothing. Tests run as
# from a terminal: SIGINT handled (children get the default action).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hud-t-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class RawClient:
    """A test client speaking raw frames to an asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._id = 0

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), timeout)
        assert line, "connection closed"
        return json.loads(line)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._id += 1
        frame = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}}
        await self.send_raw(json.dumps(frame).encode() + b"\n")
        reply = await self.recv()
        assert reply.get("id") == self._id, reply
        return reply

    async def result(self, method: str, params: dict[str, Any] | None = None) -> Any:
        reply = await self.request(method, params)
        assert "error" not in reply, reply
        return reply["result"]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):  # closed either way
            await self.writer.wait_closed()


class InProcess:
    """An in-process ControlServer on a unix socket; `client()` opens connections."""

    def __init__(self, server: ControlServer, path: Path) -> None:
        self.server, self.path = server, path
        self.clients: list[RawClient] = []

    async def client(self) -> RawClient:
        reader, writer = await asyncio.open_unix_connection(str(self.path), limit=1 << 27)
        client = RawClient(reader, writer)
        self.clients.append(client)
        return client


@pytest.fixture
async def inproc(short_dir: Path) -> AsyncIterator[InProcess]:
    env = load_environment(str(ENVS / "faults.py"))
    server = ControlServer(env, session_ttl=3600.0, max_frame=8 * 1024 * 1024)
    path = short_dir / "c.sock"
    listener = await asyncio.start_unix_server(server.handle, path=str(path))
    harness = InProcess(server, path)
    yield harness
    for client in harness.clients:
        await client.close()
    listener.close()
    await server.cancel_all()


def wait_for_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT) -> None:
    """Poll until the daemon accepts connections (or fail with its output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"hud serve exited with {proc.returncode}:\n{out}")
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(path))
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"hud serve did not listen on {path} within {timeout}s")


class Daemon:
    """A real `hud serve` subprocess."""

    def __init__(self, proc: subprocess.Popen[bytes], socket_path: Path, log_path: Path) -> None:
        self.proc, self.socket_path, self.log_path = proc, socket_path, log_path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "HUD_SOCKET": str(self.socket_path), "HUD_LOG": str(self.log_path)}

    def hud(self, *args: str, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hud.cli.main", *args],
            env=self.env, input=input, capture_output=True, text=True, timeout=timeout,
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_daemon(short_dir: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(module: str, *extra: str, env: dict[str, str] | None = None) -> Daemon:
        socket_path = short_dir / f"d{len(started)}.sock"
        log_path = short_dir / f"d{len(started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "hud.cli.main", "serve", module, "--socket", str(socket_path),
             "--log-file", str(log_path), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        daemon = Daemon(proc, socket_path, log_path)
        started.append(daemon)
        wait_for_socket(socket_path, proc)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


# -- the ssh workspace, served in-process (tests/capabilities/: test_shells.py, test_ssh.py) --

from tests.sysusers import throwaway_user  # noqa: E402,F401  (fixture)


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A workspace served as the current user, with a secret in the daemon's environment
    (it must not reach sessions)."""
    from tests.sshkit import serving

    monkeypatch.setenv("HUD_TOKEN", "daemon-secret-token")
    async with serving(tmp_path) as cli:
        yield cli


@pytest.fixture
async def user_client(tmp_path: Path, throwaway_user: Any) -> AsyncIterator[Any]:
    """A workspace whose sessions run as a throwaway user (root only)."""
    from tests.sshkit import serving

    async with serving(tmp_path, throwaway_user) as cli:
        yield cli
