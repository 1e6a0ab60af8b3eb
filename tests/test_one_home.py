"""Things with one home stay there: error codes in hud.wire, process starts in a few modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the modules that may start a process, and why each needs to
STARTS_PROCESSES = {
    "runtime/proc.py": "the one way hud runs a command that finishes",
    "runtime/build/docker.py": "the one module that runs docker (long-lived docker exec too)",
    "runtime/capabilities/service.py": "long-running programs a capability owns",
    "runtime/capabilities/shells.py": "the agent's ssh sessions: a pty process per channel",
    "runtime/grading/bounded.py": "the grading sandbox's bounded process",
    "cli/ssh.py": "hud ssh replaces itself with OpenSSH (os.execvp)",
    "runtime/eval/ray/slot.py": "a Ray slot starts its reaper, whose stdin it holds for life",
    "runtime/eval/ray/reaper.py": "the reaper forks once to leave the Ray worker's processes",
}
PROCESS_CALLS = {"Popen", "create_subprocess_exec", "create_subprocess_shell", "system",
                 "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp",
                 "execlpe", "posix_spawn", "posix_spawnp", "fork", "forkpty", "spawnv",
                 "spawnvp", "run", "call", "check_call", "check_output", "getoutput",
                 "getstatusoutput"}
PROCESS_MODULES = {"subprocess", "os", "asyncio", "pty"}


def _sources() -> list[Path]:
    return [p for top in ("runtime", "cli") for p in sorted((ROOT / top).rglob("*.py"))
            if "__pycache__" not in p.parts and "_assets" not in p.parts]


def process_starts(source: str) -> list[int]:
    """Lines of `source` that start a process: `subprocess.X(...)`, `os.execvp(...)`,
    `asyncio.create_subprocess_*`, and those names imported bare (`from os import system`)."""
    tree = ast.parse(source)
    bare = {alias.asname or alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in PROCESS_MODULES
            for alias in node.names if alias.name in PROCESS_CALLS}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        qualified = (isinstance(func, ast.Attribute) and func.attr in PROCESS_CALLS
                     and isinstance(func.value, ast.Name) and func.value.id in PROCESS_MODULES
                     and not (func.value.id == "asyncio" and func.attr == "run"))
        if qualified or (isinstance(func, ast.Name) and func.id in bare):
            lines.append(node.lineno)
    return lines


def test_only_the_listed_modules_start_processes() -> None:
    """A new process start elsewhere (a hand-built `docker ...`, a shell) goes through
    hud.proc or hud.build.docker instead, where timeouts and errors are handled once."""
    offenders = []
    for path in _sources():
        rel = str(path.relative_to(ROOT))
        if rel in STARTS_PROCESSES:
            continue
        offenders += [f"{rel}:{line}" for line in process_starts(path.read_text())]
    assert not offenders, "start processes through hud.proc / hud.build.docker:\n" + "\n".join(offenders)


def test_the_process_detector_sees_each_shape() -> None:
    """The detector catches the shapes a hand-written process start takes."""
    shapes = [
        "import subprocess\nsubprocess.run(['docker', 'ps'])",
        "import subprocess\nsubprocess.Popen('docker ps', shell=True)",
        "import os\nos.system('docker ps')",
        "import os\nos.execlp('docker', 'docker', 'ps')",
        "import asyncio\nasync def f():\n    await asyncio.create_subprocess_shell('docker ps')",
        "from subprocess import check_output as co\nco(['sudo', 'docker', 'ps'])",
        "from os import system\nsystem('x')",
    ]
    for shape in shapes:
        assert process_starts(shape), shape
    assert not process_starts("import asyncio\nasyncio.run(main())")


CODE = re.compile(r"-32[0-9]{3}\b")


def test_json_rpc_codes_are_written_only_in_hud_wire() -> None:
    """Every JSON-RPC error code is a named constant of hud.wire; no literal elsewhere."""
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in _sources() if path.name != "wire.py" or path.parent.name != "runtime"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if CODE.search(line)]
    assert not offenders, "use the constants of hud.wire:\n" + "\n".join(offenders)
