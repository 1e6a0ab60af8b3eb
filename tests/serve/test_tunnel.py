"""tunnel.open and `hud connect --tunnel` against a real capability daemon (an echo server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import wait_for_socket


def echo_server() -> tuple[int, threading.Event]:
    """A TCP echo server on loopback, in a thread; returns its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue

            def pump(c: socket.socket = conn) -> None:
                with c:
                    while data := c.recv(65536):
                        c.sendall(data)

            threading.Thread(target=pump, daemon=True).start()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], stop


@pytest.fixture
def echo_daemon(short_dir: Path):
    port, stop = echo_server()
    env_file = short_dir / "echo_env.py"
    env_file.write_text(
        "from hud import Environment\nenv = Environment(name='echo')\n"
        f"env.add_capability('echo', protocol='echo/1', url='tcp://127.0.0.1:{port}')\n"
        "env.add_capability('dead', protocol='echo/1', url='tcp://127.0.0.1:1')\n"
        "@env.template()\nasync def t():\n    a = yield 'p'\n    yield 1.0\n"
    )
    sock = short_dir / "e.sock"
    proc = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "serve", str(env_file), "--socket",
                             str(sock), "--log-file", str(short_dir / "log")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for_socket(sock, proc)
    yield {**os.environ, "HUD_SOCKET": str(sock)}
    proc.terminate()
    proc.wait(timeout=15)
    stop.set()


def hud(env: dict[str, str], *args: str, input: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], env=env, input=input,
                          capture_output=True, timeout=30)


def test_tunnel_pipes_raw_bytes_both_ways(echo_daemon) -> None:
    """Binary data (including newlines and NULs) comes back byte for byte."""
    payload = bytes(range(256)) * 4096  # 1 MiB of every byte value
    done = hud(echo_daemon, "connect", "--tunnel", "echo", input=payload)
    assert done.returncode == 0, done.stderr
    assert done.stdout == payload


def test_manifest_lists_the_bindings(echo_daemon) -> None:
    """Capabilities appear in hello's bindings."""
    import json

    manifest = json.loads(hud(echo_daemon, "manifest").stdout)
    assert [b["name"] for b in manifest["bindings"]] == ["echo", "dead"]


def test_tunnel_to_unknown_capability_lists_known(echo_daemon) -> None:
    """An unknown name: exit 1 and the known capabilities."""
    done = hud(echo_daemon, "connect", "--tunnel", "shell")
    assert done.returncode == 1
    assert b"unknown capability 'shell'; this environment has: dead, echo" in done.stderr


def test_tunnel_to_a_dead_capability_says_so(echo_daemon) -> None:
    """A capability whose daemon does not answer: a clear error naming it."""
    done = hud(echo_daemon, "connect", "--tunnel", "dead")
    assert done.returncode == 1 and b"capability 'dead' at tcp://127.0.0.1:1 is not answering" in done.stderr


def test_connect_bridges_the_control_channel(echo_daemon) -> None:
    """Without --tunnel, stdin/stdout speak the control protocol."""
    import json

    frames = b"".join(
        json.dumps({"jsonrpc": "2.0", "id": i, "method": m, "params": prm}).encode() + b"\n"
        for i, (m, prm) in enumerate([("hello", {}), ("tasks.start", {"id": "t"}),
                                      ("tasks.grade", {"answer": "x"}), ("bye", {})], 1)
    )
    done = hud(echo_daemon, "connect", input=frames)
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["id"] for r in replies] == [1, 2, 3, 4]
    assert replies[1]["result"] == {"prompt": "p"} and replies[2]["result"] == {"score": 1.0}
