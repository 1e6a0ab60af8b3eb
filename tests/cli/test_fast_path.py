"""The per-exec commands (`hud task ...`, `hud connect --wait`) stay off the slow parts
of the standard library: each of these modules costs milliseconds on every `docker exec`."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENVS
from tests.importkit import PROBE

ROOT = Path(__file__).resolve().parents[2]

#: stdlib modules the fast path must not import, with what they cost (measured in a hud
#: image): importlib.abc pulls importlib.resources, tempfile and shutil (~13 ms);
#: importlib.metadata pulls email, zipfile and csv (~15 ms); pathlib pulls urllib.parse,
#: ipaddress and ntpath (~4.6 ms); dataclasses ~1 ms per module
SLOW = ("importlib.abc", "importlib.resources", "importlib.metadata", "tempfile", "shutil",
        "email", "zipfile", "dataclasses", "ctypes", "pathlib", "urllib.parse")



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


@pytest.mark.parametrize("argv", [["task", "start", "count_letter"],
                                  ["task", "grade", "count_letter", "--answer", "3"],
                                  ["connect", "--wait", "30"], ["health"]])
def test_per_exec_commands_import_nothing_slow(argv: list[str], installed: str,
                                                start_daemon: Any) -> None:
    """`hud task start|grade`, `hud connect --wait`, `hud health` against a live daemon
    (the path of every rollout): none of SLOW loaded."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    env = {"HUD_SOCKET": str(daemon.socket_path), "PYTHONPATH": installed,
           "PATH": "/usr/bin:/bin"}
    if argv[:2] == ["task", "grade"]:
        daemon.hud("task", "start", "count_letter")
    done = subprocess.run([sys.executable, "-S", "-c", PROBE.format(argv=argv)], env=env,
                          input=HELLO if argv[0] == "connect" else "", capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip(), done.stderr  # it did its job: a prompt, a score, a reply
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    assert [m for m in modules if any(m == s or m.startswith(s + ".") for s in SLOW)] == []
