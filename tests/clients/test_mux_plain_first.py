"""`hud connect --mux` starts plain and switches to SSH when the host first needs a tunnel
(hud.serve.upgrade), driven by the host's real ExecTransport: a stand-in docker client
execs a real `hud connect` process against a real daemon on this host, so everything but
the container is what a rollout runs.

- a rollout that opens no tunnel never loads asyncssh (nor cryptography) in the exec;
- the first tunnel starts SSH mid-session, and the session carries on: a task started
  before the switch is graded after it, on the same control channel;
- first tunnels opened at once start SSH once;
- an image whose `--mux` speaks SSH at once is told to rebuild;
- a killed exec is an InfraError in either phase, never a hang;
- closing a transport that never switched ends the exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud.errors import InfraError
from hud.eval.exec_transport import ExecTransport
from tests.conftest import wait_for_socket

LOCAL_DOCKER = """#!{python}
import os
import sys

args = sys.argv[1:]
if args[:2] == ["exec", "-i"] and args[3:5] == ["hud", "connect"]:
    if os.environ.get("HUD_TEST_OLD_MUX"):  # the SSH-first server of an older image
        code = ("import asyncio, sys; from hud.serve.mux import Dialer, serve_stdio; "
                "asyncio.run(serve_stdio(Dialer(sys.argv[1], None, None, 30.0)))")
        os.execv(sys.executable, [sys.executable, "-c", code, {socket!r}])
    os.execv(sys.executable, [sys.executable, "-m", "hud.cli.main", "connect", *args[5:],
                              "--socket", {socket!r}])
if args[:1] == ["logs"]:
    sys.exit(0)
if args[:1] == ["inspect"]:
    print("running exit=0 oom=false")
    sys.exit(0)
if args[:1] == ["wait"]:
    sys.exit(0)
print("stand-in docker: unexpected", args, file=sys.stderr)
sys.exit(125)
"""

ENV = """
from hud import Environment
env = Environment(name='plainfirst')
env.add_capability('echo', protocol='echo/1', url='tcp://127.0.0.1:{port}')

@env.template()
async def say(word: str = 'hi'):
    answer = yield f'say {{word}}'
    yield 1.0 if answer == word else 0.0
"""


def _echo_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)


@contextlib.contextmanager
def local_docker(short_dir: Path, env_source: str,
                 ) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    """A daemon serving `env_source` (formatted with `port`, an echo server's), and the
    stand-in docker client whose `exec -i C hud connect ...` reaches it: (the client, the
    daemon, the daemon's socket)."""
    echo = _echo_server()
    env_file = short_dir / "plainfirst_env.py"
    env_file.write_text(env_source.format(port=echo.getsockname()[1]))
    sock = short_dir / "p.sock"
    daemon = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "serve", str(env_file),
                               "--socket", str(sock), "--log-file", str(short_dir / "log")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(sock, daemon)
        client = short_dir / "docker"
        client.write_text(LOCAL_DOCKER.format(python=sys.executable, socket=str(sock)))
        client.chmod(0o755)
        yield str(client), daemon, str(sock)
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=15)
        echo.close()


@pytest.fixture
def docker(short_dir: Path) -> Iterator[str]:
    """ENV's daemon (with an `echo` capability) and the stand-in docker client reaching it."""
    with local_docker(short_dir, ENV) as (client, _, _):
        yield client


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


async def _echo_once(transport: ExecTransport, data: bytes) -> bytes:
    reader, writer = await transport.tunnel("echo")
    writer.write(data)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(data)), 30)
    writer.close()
    return got


async def test_a_rollout_without_tunnels_never_loads_ssh(docker: str) -> None:
    transport = ExecTransport("c1", docker=docker)
    channel = await transport.channel(30)
    try:
        assert transport.hello["env"]["name"] == "plainfirst"
        started = await channel.call("tasks.start", {"id": "say", "args": {"word": "yo"}})
        assert started["prompt"] == "say yo"
        graded = await channel.call("tasks.grade", {"answer": "yo"})
        assert graded["score"] == 1.0
        assert transport.pid is not None
        maps = _maps(transport.pid)
        assert "python" in maps  # the right process: the exec'd `hud connect`
        assert "cryptography" not in maps and "_rust" not in maps
    finally:
        await channel.close()
        await transport.close()


async def test_the_first_tunnel_switches_to_ssh_and_the_session_carries_on(docker: str) -> None:
    transport = ExecTransport("c2", docker=docker)
    channel = await transport.channel(30)
    try:
        await channel.call("tasks.start", {"id": "say", "args": {"word": "both"}})
        assert await _echo_once(transport, b"ping") == b"ping"
        assert transport.pid is not None and "cryptography" in _maps(transport.pid)
        # the task started before the switch is graded after it: the same session
        graded = await channel.call("tasks.grade", {"answer": "both"})
        assert graded["score"] == 1.0
        payload = os.urandom(3 << 20)  # a tunnel after the switch carries MiBs both ways
        assert await _echo_once(transport, payload) == payload
        assert (await channel.call("tasks.list", {}))
    finally:
        await channel.close()
        await transport.close()


async def test_first_tunnels_opened_at_once_switch_once(docker: str) -> None:
    transport = ExecTransport("c3", docker=docker)
    channel = await transport.channel(30)
    try:
        words = [f"w{i}".encode() for i in range(8)]
        got = await asyncio.gather(*(_echo_once(transport, w) for w in words))
        assert got == words
        assert (await channel.call("hello", {}))["env"]["name"] == "plainfirst"
    finally:
        await channel.close()
        await transport.close()


async def test_an_image_whose_mux_speaks_ssh_first_is_told_to_rebuild(
        docker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUD_TEST_OLD_MUX", "1")
    transport = ExecTransport("c4", docker=docker)
    with pytest.raises(InfraError, match=r"older `hud connect --mux`(.|\n)*hud build"):
        await transport.channel(10)


@pytest.mark.parametrize("switched", [False, True], ids=["plain", "ssh"])
async def test_a_killed_exec_is_an_infra_error(docker: str, switched: bool) -> None:
    transport = ExecTransport("c5", docker=docker)
    channel = await transport.channel(30)
    try:
        if switched:
            assert await _echo_once(transport, b"x") == b"x"
        assert transport.pid is not None
        os.kill(transport.pid, signal.SIGKILL)
        with pytest.raises(InfraError, match=r"connection lost during tasks\.list"):
            await channel.call("tasks.list", {}, timeout=60)
        with pytest.raises(InfraError):
            await transport.tunnel("echo")
    finally:
        await channel.close()
        await transport.close()


async def test_closing_before_any_tunnel_ends_the_exec(docker: str) -> None:
    transport = ExecTransport("c6", docker=docker)
    channel = await transport.channel(30)
    proc: Any = transport._proc
    await channel.close()
    await transport.close()
    assert proc.returncode == 0  # it ended by itself on end of input, not killed
