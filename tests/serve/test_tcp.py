"""`hud serve --tcp` against a real daemon: tokens off argv, auth first, caps, memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hud import wire
from tests.conftest import ENVS, RawClient
from tests.tcpkit import free_port, rss_kib
from tests.tcpkit import token_file as _token_file

TOKEN = "tcp-test-token-5f2c"


def token_file(directory: Path) -> Path:
    return _token_file(directory, TOKEN)


async def tcp(port: int) -> RawClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    return RawClient(reader, writer)


async def closed_after(client: RawClient) -> bool:
    """Whether the daemon closes the connection (no further frame arrives)."""
    line = await asyncio.wait_for(client.reader.readline(), 10)
    return line == b""


def hud(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_token_on_the_daemons_argv_is_refused() -> None:
    """`hud serve --token T` is a usage error naming --token-file, HUD_TOKEN and why."""
    done = hud("serve", str(ENVS / "letters.py"), "--tcp", "127.0.0.1:1", "--token", TOKEN)
    assert done.returncode == 2
    assert "--token-file PATH" in done.stderr and "HUD_TOKEN" in done.stderr
    assert "/proc/PID/cmdline" in done.stderr and TOKEN not in done.stderr


def test_token_on_a_clients_argv_is_refused() -> None:
    """`hud task list --token T` is refused the same way, before connecting."""
    done = hud("task", "list", "--url", "tcp://127.0.0.1:1", "--token", TOKEN)
    assert done.returncode == 2 and "--token-file PATH" in done.stderr


def test_token_from_a_file_on_both_sides(start_daemon, short_dir: Path) -> None:
    """The daemon reads --token-file; a client without it is refused, with it served."""
    port = free_port()
    secret = token_file(short_dir)
    daemon = start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}",
                          "--token-file", str(secret))
    url = f"tcp://127.0.0.1:{port}"
    denied = daemon.hud("task", "list", "--url", url)
    assert denied.returncode == 1 and "needs a token" in denied.stderr
    ok = daemon.hud("task", "list", "--url", url, "--token-file", str(secret))
    assert ok.returncode == 0 and "count_letter" in ok.stdout
    assert TOKEN not in Path(f"/proc/{daemon.proc.pid}/cmdline").read_text()


def test_token_from_the_environment_works_and_leaves_it(start_daemon, short_dir: Path) -> None:
    """HUD_TOKEN serves as the token, and is gone from the daemon's environment after start:
    neither its children nor /proc/PID/environ show it."""
    env_file = short_dir / "peek.py"
    env_file.write_text(
        "import asyncio, os\nfrom hud import Environment\nenv = Environment(name='peek')\n"
        "@env.template()\nasync def peek():\n"
        "    proc = await asyncio.create_subprocess_exec('env', stdout=asyncio.subprocess.PIPE)\n"
        "    out, _ = await proc.communicate()\n"
        "    answer = yield {'prompt': 'p', 'environ': 'HUD_TOKEN' in os.environ,\n"
        "                    'child': out.decode()}\n"
        "    yield 1.0\n"
    )
    port = free_port()
    daemon = start_daemon(str(env_file), "--tcp", f"127.0.0.1:{port}", env={"HUD_TOKEN": TOKEN})
    url = f"tcp://127.0.0.1:{port}"
    started = daemon.hud("task", "start", "peek", "--json", "--url", url)
    assert started.returncode == 1 and "needs a token" in started.stderr
    client_env = {"HUD_TOKEN": TOKEN}
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "task", "start", "peek", "--json",
                           "--url", url], capture_output=True, text=True, timeout=60,
                          env={**daemon.env, **client_env})
    assert done.returncode == 0, done.stderr
    frame = json.loads(done.stdout)
    assert frame["environ"] is False and "HUD_TOKEN" not in frame["child"]
    assert TOKEN.encode() not in Path(f"/proc/{daemon.proc.pid}/environ").read_bytes()


def test_connect_tunnel_takes_the_token_from_the_environment(start_daemon, short_dir: Path) -> None:
    """`hud connect --tunnel` on a token endpoint logs in with HUD_TOKEN (the capability
    is then looked up), and is refused without it."""
    port = free_port()
    start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}",
                 "--token-file", str(token_file(short_dir)))
    argv = ["connect", "--url", f"tcp://127.0.0.1:{port}", "--tunnel", "shell"]
    denied = hud(*argv)
    assert denied.returncode == 1 and "needs a token" in denied.stderr
    admitted = hud(*argv, env={"HUD_TOKEN": TOKEN})
    assert admitted.returncode == 1 and "unknown capability 'shell'" in admitted.stderr


async def test_oversized_first_frame_is_refused_before_auth(start_daemon, short_dir: Path) -> None:
    """On a token endpoint a first frame over 64 KiB gets one error frame, then close."""
    port = free_port()
    start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}",
                 "--token-file", str(token_file(short_dir)))
    client = await tcp(port)
    await client.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"x":"'
                          + b"a" * 200_000)
    reply = await client.recv()
    assert reply["error"]["code"] == wire.INVALID_REQUEST
    assert "first frame on this endpoint must be a small request" in reply["error"]["message"]
    assert await closed_after(client)


async def test_slow_first_frame_is_refused(start_daemon, short_dir: Path) -> None:
    """A token endpoint answers a silent connection after --auth-timeout, then closes it."""
    port = free_port()
    start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}",
                 "--token-file", str(token_file(short_dir)), "--auth-timeout", "0.3")
    client = await tcp(port)
    await client.send_raw(b'{"jsonrpc":"2.0",')  # a frame that never ends
    reply = await client.recv()
    assert "no token within 0.3s" in reply["error"]["message"]
    assert await closed_after(client)


async def test_wrong_token_gets_one_error_then_close(start_daemon, short_dir: Path) -> None:
    """A wrong token: one error frame with the request's id, then the connection closes."""
    port = free_port()
    start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}",
                 "--token-file", str(token_file(short_dir)))
    client = await tcp(port)
    reply = await client.request("tasks.list", {"token": "guess"})
    assert reply["error"]["code"] == wire.INVALID_REQUEST and "needs a token" in reply["error"]["message"]
    assert await closed_after(client)


async def _flood(port: int, size: int) -> None:
    """Send `size` bytes of one unterminated frame, read what comes back, close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk = b"x" * (1 << 20)
    try:
        writer.write(b'{"jsonrpc":"2.0","id":1,"method":"hello","params":{"x":"')
        for _ in range(size // len(chunk)):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass  # the daemon hung up early: what a token endpoint does
    writer.close()
    with contextlib.suppress(ConnectionError):
        await reader.read()


async def test_unauthenticated_floods_are_not_buffered(start_daemon, short_dir: Path) -> None:
    """Sixteen 32 MiB first frames without a token: the daemon does not grow with them."""
    port = free_port()
    daemon = start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}",
                          "--token-file", str(token_file(short_dir)))
    before = rss_kib(daemon.proc.pid)
    await asyncio.gather(*(_flood(port, 32 << 20) for _ in range(16)))
    assert rss_kib(daemon.proc.pid) < before + 32 * 1024
    assert daemon.hud("task", "list", "--url", f"tcp://127.0.0.1:{port}", "--token-file",
                      str(token_file(short_dir))).returncode == 0


async def _large_frame(port: int, size: int) -> None:
    """Send one complete frame of about `size` bytes, read its reply, close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(b'{"jsonrpc":"2.0","id":1,"method":"tasks.list","params":{"x":"')
    writer.write(b"x" * size + b'"}}\n')
    await writer.drain()
    assert await reader.readline()
    writer.close()


async def test_memory_of_large_frames_is_returned_after_close(start_daemon) -> None:
    """Sixteen connections that each send a 20 MiB frame: after they close, the daemon's
    RSS comes back near where it started."""
    port = free_port()
    daemon = start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}")
    client = await tcp(port)
    await client.result("tasks.list")
    before = rss_kib(daemon.proc.pid)
    await asyncio.gather(*(_large_frame(port, 20 << 20) for _ in range(16)))
    for _ in range(400):  # the daemon sees the closes asynchronously; poll, with a deadline
        if rss_kib(daemon.proc.pid) < before + 24 * 1024:
            break
        await asyncio.sleep(0.05)
    assert rss_kib(daemon.proc.pid) < before + 24 * 1024


async def test_connection_cap(start_daemon) -> None:
    """Past --max-connections a connection gets one error frame and is closed; once one
    closes, a new connection is served."""
    port = free_port()
    start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}", "--max-connections", "2")
    first, second = await tcp(port), await tcp(port)
    for client in (first, second):
        await client.result("tasks.list")
    third = await tcp(port)
    reply = await third.recv()
    assert "too many connections" in reply["error"]["message"]
    assert "--max-connections" in reply["error"]["message"]
    assert await closed_after(third)
    await first.close()
    for _ in range(200):  # the daemon notices the close asynchronously
        again = await tcp(port)
        reply = await again.request("tasks.list")
        if "result" in reply:
            break
        await asyncio.sleep(0.02)
    assert "result" in reply


async def test_idle_timeout_closes_a_silent_connection(start_daemon) -> None:
    """With --idle-timeout a connection that sends nothing is answered, then closed."""
    port = free_port()
    start_daemon(str(ENVS / "letters.py"), "--tcp", f"127.0.0.1:{port}", "--idle-timeout", "0.3")
    client = await tcp(port)
    await client.result("tasks.list")
    reply: dict[str, Any] = await client.recv()
    assert "no complete frame for 0.3s" in reply["error"]["message"]
    assert await closed_after(client)


@pytest.mark.parametrize("option", ["--max-connections=0", "--auth-timeout=0", "--idle-timeout=-1"])
def test_tcp_limits_are_validated(option: str) -> None:
    """Nonsense limits are usage errors (exit 2)."""
    assert hud("serve", str(ENVS / "letters.py"), option).returncode == 2
