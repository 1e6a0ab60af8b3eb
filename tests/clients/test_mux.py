"""`hud connect --mux` (a real process) driven by the host's MuxConnection: many streams on
one connection, flow control per stream, refusals with the daemon's reason, and a dropped
connection that ends every stream with an InfraError instead of a hang."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.clients.channel import Channel
from hud.clients.mux import MuxConnection
from hud.errors import InfraError, RemoteError
from tests.conftest import wait_for_socket
from tests.tcpkit import rss_kib

CONTROL = "hud-control"
PATTERN = bytes(range(256)) * 256  # 64 KiB, so a stream's bytes can be checked in order


class Source:
    """A loopback TCP server that writes PATTERN to each client until it stops reading,
    counting what it managed to send (what the kernel and hud took from it)."""

    def __init__(self) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.sent = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.srv.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except OSError:
                continue
            threading.Thread(target=self._push, args=(conn,), daemon=True).start()

    def _push(self, conn: socket.socket) -> None:
        with conn:
            try:
                while not self.stop.is_set():
                    self.sent += conn.send(PATTERN)
            except OSError:
                pass


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)


@pytest.fixture
def daemon(short_dir: Path) -> Iterator[dict[str, Any]]:
    """A daemon with an `echo` capability, a `source` one that never stops sending, and a
    `dead` one nothing listens behind."""
    echo = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: [threading.Thread(target=_echo, args=(echo.accept()[0],),
                                                      daemon=True).start()
                                     for _ in iter(int, 1)], daemon=True).start()
    source = Source()
    env_file = short_dir / "mux_env.py"
    env_file.write_text(
        "from hud import Environment\nenv = Environment(name='mux')\n"
        f"env.add_capability('echo', protocol='echo/1', "
        f"url='tcp://127.0.0.1:{echo.getsockname()[1]}')\n"
        f"env.add_capability('source', protocol='bytes/1', url='tcp://127.0.0.1:{source.port}')\n"
        "env.add_capability('dead', protocol='echo/1', url='tcp://127.0.0.1:1')\n"
        "@env.template()\nasync def t():\n    a = yield 'p'\n    yield 1.0\n")
    sock = short_dir / "m.sock"
    proc = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "serve", str(env_file),
                             "--socket", str(sock), "--log-file", str(short_dir / "log")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_socket(sock, proc)
    yield {"socket": str(sock), "source": source}
    proc.terminate()
    proc.wait(timeout=15)
    source.stop.set()
    echo.close()


async def _connect(socket_path: str, *extra: str) -> tuple[MuxConnection, asyncio.subprocess.Process]:
    ours, theirs = socket.socketpair()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hud.cli.main", "connect", "--mux", "--socket", socket_path,
        *extra, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.PIPE)
    theirs.close()
    return await MuxConnection.start(ours, describe="test mux", timeout=60), proc


@pytest.fixture
async def mux(daemon: dict[str, Any]) -> AsyncIterator[tuple[MuxConnection, Any]]:
    conn, proc = await _connect(daemon["socket"])
    yield conn, proc
    await conn.close()
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def test_control_channels_share_one_connection(mux: tuple[MuxConnection, Any]) -> None:
    """Eight control channels opened at once on one exec each get their own hello."""
    conn, _ = mux

    async def hello() -> str:
        reader, writer = await conn.open(CONTROL)
        channel = Channel(reader, writer)
        try:
            return str((await channel.call("hello", {}))["session_id"])
        finally:
            await channel.close()

    sessions = await asyncio.gather(*(hello() for _ in range(8)))
    assert len(set(sessions)) == 8


async def test_streams_carry_bytes_both_ways(mux: tuple[MuxConnection, Any]) -> None:
    """A capability stream is a byte pipe: 4 MiB out through the echo come back intact."""
    conn, _ = mux
    reader, writer = await conn.open("echo")
    payload = PATTERN * 64

    async def send() -> None:
        writer.write(payload)
        await writer.drain()

    sent = asyncio.create_task(send())
    assert await reader.readexactly(len(payload)) == payload
    await sent
    writer.close()


async def test_a_slow_reader_stalls_its_stream_only(daemon: dict[str, Any],
                                                   mux: tuple[MuxConnection, Any]) -> None:
    """One stream nobody reads while 8 others move 32 MiB: the others finish, the unread
    stream's sender is held back by its window (memory stays flat on both sides), and its
    bytes then arrive complete and in order."""
    conn, proc = mux
    source = daemon["source"]
    slow_reader, slow_writer = await conn.open("source")
    await asyncio.sleep(0.5)  # let the unread stream fill every buffer on its way
    held = source.sent
    server_rss = rss_kib(proc.pid)

    async def echo_round(n: int) -> None:
        reader, writer = await conn.open("echo")
        for _ in range(64):
            writer.write(PATTERN)
            await writer.drain()
            assert await reader.readexactly(len(PATTERN)) == PATTERN
        writer.close()

    await asyncio.gather(*(echo_round(n) for n in range(8)))
    # the source could have sent without limit; the window held it to a few MiB
    assert source.sent < 16 * 2**20, f"the unread stream took {source.sent} bytes"
    assert source.sent - held < 4 * 2**20
    assert rss_kib(proc.pid) - server_rss < 32 * 1024  # KiB: flat, not 32 MiB + the backlog
    got = await slow_reader.readexactly(4 * len(PATTERN))
    assert got == PATTERN * 4
    slow_writer.close()


async def test_unknown_capability_is_the_daemons_refusal(mux: tuple[MuxConnection, Any]) -> None:
    """Opening a capability the env lacks raises the daemon's RemoteError (it lists what
    there is) and the connection goes on serving."""
    conn, _ = mux
    with pytest.raises(RemoteError, match=r"unknown capability 'nope'.*echo"):
        await conn.open("nope")
    reader, writer = await conn.open("echo")
    writer.write(b"still here\n")
    assert await reader.readline() == b"still here\n"
    writer.close()


async def test_dead_capability_says_so(mux: tuple[MuxConnection, Any]) -> None:
    """A capability whose server is gone: a RemoteError naming it, not an empty stream."""
    conn, _ = mux
    with pytest.raises(RemoteError, match=r"'dead' at tcp://127\.0\.0\.1:1 is not answering"):
        await conn.open("dead")


async def test_a_killed_connect_ends_every_stream(mux: tuple[MuxConnection, Any]) -> None:
    """SIGKILL the `hud connect --mux` process: the control call in flight and new opens are
    InfraErrors, and a stream that was open ends (EOF or a connection error); nothing hangs."""
    conn, proc = mux
    reader, writer = await conn.open(CONTROL)
    channel = Channel(reader, writer, describe="test mux")
    await channel.call("hello", {})
    echo_reader, _ = await conn.open("echo")
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(InfraError, match=r"connection lost during tasks\.list"):
        await channel.call("tasks.list", {}, timeout=60)
    try:
        rest = await asyncio.wait_for(echo_reader.read(), 60)
    except ConnectionError:  # the stream ended with its connection: also an end
        rest = b""
    assert rest == b""
    with pytest.raises(InfraError, match=r"cannot open 'echo'|connection is gone"):
        await conn.open("echo")


async def test_no_daemon_within_the_wait_is_an_infra_error(short_dir: Path) -> None:
    """`--mux --wait 1` with no daemon: the control open fails after the wait with
    connect's own message, and the connection stays up for the caller to close."""
    conn, proc = await _connect(str(short_dir / "none.sock"), "--wait", "1")
    try:
        with pytest.raises(InfraError, match=r"no hud daemon answered on .*none.sock within 1s"):
            await conn.open(CONTROL)
        assert not conn.closed
    finally:
        await conn.close()
        await proc.wait()


def test_mux_and_tunnel_are_exclusive(short_dir: Path) -> None:
    """`--mux --tunnel NAME` is a usage error naming the fix."""
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "connect", "--mux",
                           "--tunnel", "shell", "--socket", str(short_dir / "x.sock")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--mux carries every tunnel already; drop --tunnel" in done.stderr


async def test_a_peer_that_is_not_ssh_is_an_infra_error() -> None:
    """A socket whose peer says something else than SSH: an InfraError, not a hang."""
    ours, theirs = socket.socketpair()
    theirs.sendall(b"error: no such option: --mux\n")
    theirs.close()
    with pytest.raises(InfraError, match=r"multiplexed connection did not open"):
        await MuxConnection.start(ours, describe="old hud", timeout=30)
