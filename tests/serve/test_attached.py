"""`hud serve` with `HUD_CONNECT=stdio` (hud.serve.attached), as a real process on pipes:
it serves the control channel on its own stdin/stdout, keeps that connection out of every
child's reach, stops when the connection ends, and refuses a value it does not know."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = '''
import os, subprocess, sys
from hud import Environment

env = Environment(name="attached")
children = []


@env.initialize
async def start_child():
    child = subprocess.Popen(["sleep", "60"])  # inherits 0, 1 and 2 as they are
    children.append(child)
    print("a stray print from the env", flush=True)  # must not reach the connection
    with open(os.environ["CHILD_PID_FILE"], "w") as out:
        out.write(str(child.pid))


@env.shutdown
async def stop_child():
    for child in children:
        child.kill()
        child.wait()


@env.template()
async def echo(word: str = "hi"):
    answer = yield f"say {word}"
    yield 1.0 if answer == word else 0.0


tasks = [echo()]
'''


def _daemon(tmp_path: Path, mode: str = "stdio") -> subprocess.Popen[bytes]:
    module = tmp_path / "attached_env.py"
    module.write_text(ENV)
    env = {**os.environ, "HUD_CONNECT": mode, "CHILD_PID_FILE": str(tmp_path / "child"),
           "HUD_LOG_FILE": str(tmp_path / "daemon.log")}
    return subprocess.Popen(
        [sys.executable, "-m", "hud.cli.main", "serve", str(module), "--socket",
         str(tmp_path / "control.sock"), "--log-file", str(tmp_path / "daemon.log")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _call(proc: subprocess.Popen[bytes], id_: int, method: str, params: dict) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method,
                                 "params": params}).encode() + b"\n")
    proc.stdin.flush()
    reply = json.loads(proc.stdout.readline())
    assert reply.get("id") == id_, reply
    return reply


def _wait_for(path: Path) -> str:
    for _ in range(300):
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def test_the_daemon_serves_a_rollout_on_its_stdio_and_stops_at_its_end(tmp_path: Path) -> None:
    """hello, tasks.start and tasks.grade on the daemon's own stdin/stdout; closing stdin
    stops it (exit 0), shutdown hooks run."""
    proc = _daemon(tmp_path)
    try:
        hello = _call(proc, 1, "hello", {"client": "test"})
        assert hello["result"]["env"]["name"] == "attached"
        started = _call(proc, 2, "tasks.start", {"id": "echo", "args": {"word": "yes"}})
        assert started["result"]["prompt"] == "say yes"
        graded = _call(proc, 3, "tasks.grade", {"answer": "yes"})
        assert graded["result"]["score"] == 1.0
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    assert "the connection on stdin/stdout ended" in (tmp_path / "daemon.log").read_text()


def test_no_child_inherits_the_connection(tmp_path: Path) -> None:
    """A process the environment starts gets /dev/null for stdin and stderr for stdout,
    and the env's stray print lands in the log, not among the host's frames."""
    proc = _daemon(tmp_path)
    try:
        _call(proc, 1, "hello", {})
        child = int(_wait_for(tmp_path / "child"))
        daemon_in = os.readlink(f"/proc/{proc.pid}/fd/0")
        assert daemon_in == "/dev/null"
        connection = {os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                      for fd in os.listdir(f"/proc/{proc.pid}/fd")
                      if os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith("pipe:")}
        assert proc.stdin is not None and proc.stdout is not None
        ours = {f"pipe:[{os.fstat(f.fileno()).st_ino}]" for f in (proc.stdin, proc.stdout)}
        assert ours <= connection  # the daemon holds them, on private descriptors
        held = {os.readlink(f"/proc/{child}/fd/{fd}") for fd in os.listdir(f"/proc/{child}/fd")}
        assert not held & ours
        assert os.readlink(f"/proc/{child}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{child}/fd/1") == os.readlink(f"/proc/{child}/fd/2")
        assert _call(proc, 2, "tasks.list", {})["result"]
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.stderr is not None
    assert b"a stray print from the env" in proc.stderr.read()


def test_the_daemon_environment_loses_hud_connect(tmp_path: Path) -> None:
    """HUD_CONNECT is gone from the daemon's own environment (no child inherits it)."""
    proc = _daemon(tmp_path)
    try:
        _call(proc, 1, "hello", {})
        child = int(_wait_for(tmp_path / "child"))
        assert b"HUD_CONNECT=" not in Path(f"/proc/{child}/environ").read_bytes()
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("mode", ["tcp", "STDIO"])
def test_an_unknown_hud_connect_value_is_refused_with_the_fix(tmp_path: Path, mode: str) -> None:
    """HUD_CONNECT=<anything but stdio>: `hud serve` exits 1 naming the value and the fix."""
    proc = _daemon(tmp_path, mode)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert f"HUD_CONNECT={mode!r} is not understood" in err.decode()
    assert "unset it" in err.decode()
