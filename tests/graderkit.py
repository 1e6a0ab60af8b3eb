"""Grading-test kit: throwaway `hud-grader` and `agent` stand-ins (removed afterwards) and
the coding template's `stats` project, buggy or fixed, with hidden cases.

The accounts are only usable as root on a host with `useradd` (the grading sandbox
switches uid); otherwise the tests that need them skip and say why. In the hud images the
real `hud-grader` account exists and the same code runs without these.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hud import graders
from hud.capabilities.users import kill_processes
from hud.graders import Case

CORE = '''
def mean(values):
    if not values:
        raise ValueError("mean() of an empty sequence")
    return sum(values) / len(values)

def median(values):
    if not values:
        raise ValueError("median() of an empty sequence")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid] + ordered[mid + 1]) / 2
'''
FIXED = CORE.replace("ordered[mid + 1]", "ordered[mid - 1]")
INIT = "from stats.core import mean, median\n"
CASES = [
    Case("stats:median", args=[[4, 1, 3, 2]], expect=2.5),
    Case("stats:median", args=[[10, 20]], expect=15),
    Case("stats:median", args=[[5, 3, 9, 1, 7]], expect=5),
    Case("stats:median", args=[[]], raises="ValueError"),
    Case("stats:mean", args=[[2, 4]], expect=3),
]
def project(root: Path, files: dict[str, str] | None = None, *, core: str = CORE) -> str:
    """The `stats` project (buggy unless `core` says otherwise) plus `files`."""
    (root / "stats").mkdir(parents=True)
    (root / "stats" / "__init__.py").write_text(INIT)
    (root / "stats" / "core.py").write_text(core)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return str(root)


async def grade(path: str, **options: Any) -> dict[str, Any]:
    """python_calls on every file of the project, with CASES."""
    return await graders.python_calls(path, include=["**"], cases=CASES, **options)


def _make(system: bool) -> pwd.struct_passwd:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("grading tests need root and useradd (they run in the hud images too)")
    name = f"hudg{uuid.uuid4().hex[:8]}"
    flags = (["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"] if system
             else ["--create-home", "--shell", "/bin/bash"])
    subprocess.run(["useradd", *flags, name], check=True, capture_output=True, timeout=30)
    return pwd.getpwnam(name)


def _remove(entry: pwd.struct_passwd) -> None:
    kill_processes(uid=entry.pw_uid)
    subprocess.run(["userdel", "--remove", "--force", entry.pw_name], check=False,
                   capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def grader_account() -> Iterator[pwd.struct_passwd]:
    """A system account like the image's `hud-grader` (no home, no login shell)."""
    entry = _make(system=True)
    try:
        yield entry
    finally:
        _remove(entry)


@pytest.fixture(scope="module")
def agent_account() -> Iterator[pwd.struct_passwd]:
    """A login account standing in for the image's `agent` (has a home)."""
    entry = _make(system=False)
    try:
        yield entry
    finally:
        _remove(entry)


@pytest.fixture
def grader(grader_account: pwd.struct_passwd, agent_account: pwd.struct_passwd,
           monkeypatch: pytest.MonkeyPatch) -> pwd.struct_passwd:
    """Graders in this test run as the throwaway grading account; `agent` is the other."""
    monkeypatch.setenv("HUD_GRADER_USER", grader_account.pw_name)
    monkeypatch.setenv("HUD_AGENT_USER", agent_account.pw_name)
    return grader_account


def processes_of(uid: int) -> list[int]:
    """Live (non-zombie) pids whose real or effective uid is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                status = handle.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = {int(v) for v in fields.get("Uid", "").split()[:2]}
        if uid in uids and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(entry))
    return found
