"""The per-exec commands (`hud task ...`, `hud health`, `hud connect --wait`) stay off the
slow parts of the standard library, and those the fast path runs (hud.cli.fast) off click,
`hud serve` included: each of these modules costs milliseconds on every `docker exec`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENVS, wait_for_socket
from tests.importkit import PROBE

ROOT = Path(__file__).resolve().parents[2]

#: stdlib modules the fast path must not import, with what they cost (measured in a hud
#: image): importlib.abc pulls importlib.resources, tempfile and shutil (~13 ms);
#: importlib.metadata pulls email, zipfile and csv (~15 ms); pathlib pulls urllib.parse,
#: ipaddress and ntpath (~4.6 ms); dataclasses ~1 ms per module
SLOW = ("importlib.abc", "importlib.resources", "importlib.metadata", "tempfile", "shutil",
        "email", "zipfile", "dataclasses", "ctypes", "pathlib", "urllib.parse")
#: the fast path's commands do not load click either (~20 ms in a hud image)
NO_CLICK = ("click",)



@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tree laid out like an installed wheel (`hud/` = runtime/ + cli/): run with `-S`
    and it, the site-packages dir on PYTHONPATH, the editable install's finder (which
    imports pathlib itself) stays out of the picture, as in a hud image."""
    tree = tmp_path_factory.mktemp("installed")
    package = tree / "hud"
    package.mkdir()
    for entry in (ROOT / "runtime").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "cli").symlink_to(ROOT / "cli")
    return f"{tree}:{sysconfig.get_paths()['purelib']}"


HELLO = '{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {}}\n'


def _loaded(done: subprocess.CompletedProcess[str], banned: tuple[str, ...]) -> list[str]:
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    return [m for m in modules if any(m == b or m.startswith(b + ".") for b in banned)]


@pytest.mark.parametrize("argv", [["task", "start", "count_letter"],
                                  ["task", "grade", "count_letter", "--answer", "3"],
                                  ["task", "cancel", "count_letter"], ["task", "list"],
                                  ["manifest"], ["connect", "--wait", "30"], ["health"]])
def test_per_exec_commands_import_nothing_slow(argv: list[str], installed: str,
                                                start_daemon: Any) -> None:
    """`hud task start|grade|cancel|list`, `hud manifest`, `hud connect --wait`, `hud
    health` against a live daemon (the path of every rollout): none of SLOW loaded, and
    no click."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    env = {"HUD_SOCKET": str(daemon.socket_path), "PYTHONPATH": installed,
           "PATH": "/usr/bin:/bin"}
    if argv[:2] in (["task", "grade"], ["task", "cancel"]):
        daemon.hud("task", "start", "count_letter")
    done = subprocess.run([sys.executable, "-S", "-c", PROBE.format(argv=argv)], env=env,
                          input=HELLO if argv[0] == "connect" else "", capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip(), done.stderr  # it did its job: a prompt, a score, a reply
    assert _loaded(done, SLOW + NO_CLICK) == []


def test_serve_runs_without_click(installed: str, short_dir: Path) -> None:
    """`hud serve MODULE --socket PATH --log-file PATH`, the daemon of every container,
    serves and stops (SIGTERM) without ever loading click."""
    socket_path = short_dir / "s.sock"
    argv = ["serve", str(ENVS / "letters.py"), "--socket", str(socket_path),
            "--log-file", str(short_dir / "s.log")]
    proc = subprocess.Popen([sys.executable, "-S", "-c", PROBE.format(argv=argv)],
                            env={"PYTHONPATH": installed, "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_socket(socket_path, proc)
        with socket.socket(socket.AF_UNIX) as sock:  # it answers: the daemon really runs
            sock.connect(str(socket_path))
            sock.sendall(HELLO.encode())
            assert b'"tasks"' in sock.makefile("rb").readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert _loaded(subprocess.CompletedProcess(argv, 0, out, err.decode()), NO_CLICK) == []


def test_mux_connect_loads_neither_click_nor_pydantic(installed: str) -> None:
    """`hud connect --mux`, the one exec of every docker rollout, runs its SSH server (here
    for a host that starts with SSH, until stdin ends) without click or pydantic: asyncssh
    is its only heavy import."""
    done = subprocess.run([sys.executable, "-S", "-c",
                           PROBE.format(argv=["connect", "--mux", "--wait", "1"])],
                          env={"PYTHONPATH": installed, "PATH": "/usr/bin:/bin"},
                          input=b"SSH-2.0-probe\r\n", capture_output=True, timeout=60)
    done = subprocess.CompletedProcess(done.args, done.returncode, b"",  # stdout: SSH's
                                       done.stderr.decode(errors="replace"))
    loaded = _loaded(done, (*NO_CLICK, "pydantic"))
    assert "asyncssh" in json.loads(done.stderr.strip().splitlines()[-1])  # it served
    assert loaded == []


def test_mux_connect_bridges_control_lines_without_ssh(installed: str,
                                                       start_daemon: Any) -> None:
    """`hud connect --mux` whose host starts with control lines (every rollout until its
    first tunnel, hud.serve.upgrade) answers them without loading asyncssh, click or
    pydantic."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    argv = [sys.executable, "-S", "-c", PROBE.format(argv=["connect", "--mux", "--wait", "30"])]
    proc = subprocess.Popen(argv, env={"HUD_SOCKET": str(daemon.socket_path),
                                       "PYTHONPATH": installed, "PATH": "/usr/bin:/bin"},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(HELLO.encode())
    proc.stdin.flush()
    answer = proc.stdout.readline()  # the host reads its answer before it closes
    out, err = proc.communicate(timeout=60)
    assert b'"tasks"' in answer, err.decode()  # the manifest came back
    done = subprocess.CompletedProcess(argv, proc.returncode, answer + out, err.decode())
    assert _loaded(done, (*SLOW, *NO_CLICK, "pydantic", "asyncssh")) == []
