"""A Harbor verifier run in the container as Harbor runs it, with what hud can add to it.

`verify()` grades one task after the agent answered. By then the workspace has killed
every process of the agent and refuses new sessions until the task ends (hud's
`before_grade`), so nothing of the agent runs beside these steps:

1. /logs/verifier is made anew, root's: whatever the agent left at that path (a reward
   file it wrote, a symlink) is removed without following it.
2. The task's tests/ are copied from the root-only env folder (/opt/hud/env, which the
   agent can never read) to /tests: they exist in the agent's view of the filesystem
   only while the verifier runs.
3. `bash /tests/test.sh` runs as root in the task's workdir, with the image's
   environment plus [verifier] env, for at most [verifier] timeout_sec. `timeout` and
   `bash` are trusted absolute paths (hud.capabilities.programs), never looked up in the
   image's PATH, which may name a folder the agent wrote (a venv in the workdir).
4. /logs/verifier/reward.txt (one number), else reward.json, is the reward, read
   without following a symlink. A missing or malformed file, or the verifier running
   out of time, raises `TaskError`: a grade_error, never a reward of 0.
5. /tests is removed.

What hud cannot change is Harbor's own trust model: test.sh runs as root in the very
container the agent worked in and usually runs the agent's code (pytest imports it), so
that code runs as root and can write the reward file itself. So do the programs test.sh
runs by name: they are looked up in the image's PATH, and a folder on it the agent can
write (the workdir's .venv/bin) is the agent's to fill. A task is only as hard to forge
as its test.sh makes it (see README, "Harbor tasks").
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import stat
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hud.capabilities.programs import program
from hud.capabilities.users import resolve_user
from hud.errors import TaskError
from hud.nofollow import Refused, open_dir, read_file, remove_at
from hud.proc import Completed, arun

LOGS = "/logs"
VERIFIER_LOGS = "/logs/verifier"
TESTS = "/tests"
SOLUTION = "/solution"
REWARD_TXT = "reward.txt"
REWARD_JSON = "reward.json"
#: the most of a reward file hud reads
MAX_REWARD_BYTES = 1 << 16
#: characters of the verifier's output kept in the grade's info
OUTPUT_TAIL = 4000
TIMED_OUT = 124  # what coreutils timeout(1) exits with


def _exists_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _readable(path: str) -> None:
    """chmod a+rX over the root-owned tree `path` (made by root, never the agent's)."""
    for folder, _dirs, files in os.walk(path):  # symlinked folders are not descended
        os.chmod(folder, 0o755)
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                mode = os.stat(full).st_mode
                os.chmod(full, stat.S_IMODE(mode) | 0o444 | (0o111 if mode & 0o100 else 0))


def replace_top(name: str, source: Path | None) -> None:
    """Remove `/<name>` (never following a symlink) and, with `source`, copy it there anew,
    root-owned and readable by everyone.

    Only root writes `/`, so once the old entry is gone nobody else can put a new one in
    its place.
    """
    root = open_dir("/")
    try:
        if _exists_at(root, name) is not None:
            remove_at(root, name)
    finally:
        os.close(root)
    if source is not None:
        shutil.copytree(source, f"/{name}", symlinks=True)
        _readable(f"/{name}")


def fresh_verifier_logs() -> None:
    """Make /logs a real directory and /logs/verifier a new, empty, root-owned one."""
    root = open_dir("/")
    try:
        found = _exists_at(root, "logs")
        if found is not None and not stat.S_ISDIR(found.st_mode):
            remove_at(root, "logs")  # a symlink or a file where the folder goes
            found = None
        if found is None:
            os.mkdir("logs", 0o755, dir_fd=root)
    finally:
        os.close(root)
    logs = open_dir(LOGS)
    try:
        if _exists_at(logs, "verifier") is not None:
            remove_at(logs, "verifier")
        os.mkdir("verifier", 0o755, dir_fd=logs)
        os.chown("verifier", 0, 0, dir_fd=logs, follow_symlinks=False)
    finally:
        os.close(logs)


async def run_as(user: str, argv: Sequence[str], *, timeout: float, cwd: str,
                 env: Mapping[str, str]) -> Completed:
    """Run `argv` as `user` in `cwd` for at most `timeout` seconds (its whole process
    group is killed then, exit 124), its environment the user's login one plus `env`.

    Raises:
        ConfigError: the user does not exist.
        InfraError: the command could not be started, or no trusted `timeout` is
            installed (hud.capabilities.programs).
    """
    who = resolve_user(user)
    wrapped = who.argv([program("timeout"), "--kill-after=2", f"{timeout:g}", *argv])
    return await arun(wrapped, timeout=timeout + 10.0, env=who.environment(extra=env),
                      cwd=cwd if os.path.isdir(cwd) else "/")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_reward(name: str, data: bytes) -> tuple[float, dict[str, float]]:
    """The reward in a reward.txt (one number) or reward.json (an object whose "reward",
    or only number, is the reward); the second value holds every number of the json.

    Raises:
        ValueError: the content is not a reward (the message says why).
    """
    text = data.decode("utf-8", errors="replace").strip()
    if name == REWARD_TXT:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{name} holds {text[:80]!r}, not a number") from None
        if not math.isfinite(number):
            raise ValueError(f"{name} holds {text[:80]!r}, not a finite number")
        return number, {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{name} is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{name} holds a {type(document).__name__}, not an object")
    metrics = {str(k): n for k, v in document.items() if (n := _number(v)) is not None}
    if "reward" in document:
        reward = _number(document["reward"])
        if reward is None:
            raise ValueError(f"{name}: \"reward\" is {document['reward']!r:.80}, not a number")
        return reward, metrics
    if len(metrics) == 1:
        return next(iter(metrics.values())), metrics
    raise ValueError(f"{name} has no \"reward\" key and {len(metrics)} numbers "
                     f"({', '.join(sorted(metrics)) or 'none'}); write {{\"reward\": x}}")


def read_reward(folder: str = VERIFIER_LOGS) -> tuple[float, str, dict[str, float]]:
    """(reward, the file it came from, the json's numbers) from `folder`.

    Raises:
        ValueError: neither file is there, or the one there is malformed, a symlink, not
            a regular file, or too big.
    """
    for name in (REWARD_TXT, REWARD_JSON):
        path = f"{folder}/{name}"
        try:
            data = read_file(path, MAX_REWARD_BYTES)
        except Refused as exc:
            if os.path.lexists(path):
                raise ValueError(str(exc)) from None
            continue
        reward, metrics = parse_reward(name, data)
        return reward, name, metrics
    raise ValueError(f"neither {folder}/{REWARD_TXT} nor {folder}/{REWARD_JSON} was written")


def _tail(done: Completed) -> str:
    text = (done.stdout + done.stderr).strip()
    return text[-OUTPUT_TAIL:]


async def verify(task: str, tests: Path, *, workdir: str, env: Mapping[str, str],
                 timeout: float) -> dict[str, Any]:
    """Grade task `task` with its Harbor verifier (steps in the module docstring).

    Args:
        task: the task's name, for messages.
        tests: its tests/ folder in the root-only env folder.
        workdir: the working directory test.sh starts in.
        env: the image's environment plus [verifier] env.
        timeout: [verifier] timeout_sec.

    Returns:
        `{"score": reward, "info": {...}}` with the reward file's name, test.sh's exit
        status, the numbers of a reward.json and the tail of its output.

    Raises:
        TaskError: the verifier ran out of time, or wrote no usable reward file.
    """
    await asyncio.to_thread(fresh_verifier_logs)
    await asyncio.to_thread(replace_top, "tests", tests)
    started = time.monotonic()
    try:
        done = await run_as("root", [program("bash"), f"{TESTS}/test.sh"], timeout=timeout,
                            cwd=workdir, env=env)
    finally:
        await asyncio.to_thread(replace_top, "tests", None)
    # timeout(1) exits 124 (137 once it had to KILL); a test.sh exiting 124 early is not it
    if done.code in (TIMED_OUT, 128 + 9) and time.monotonic() - started >= timeout:
        raise TaskError(f"the Harbor verifier of task {task!r} (tests/test.sh) ran past its "
                        f"[verifier] timeout_sec of {timeout:g}s and was killed; raise "
                        f"timeout_sec in task.toml if it needs longer. Output ends:\n"
                        f"{_tail(done)[-1500:]}")
    try:
        reward, source, metrics = await asyncio.to_thread(read_reward)
    except ValueError as exc:
        raise TaskError(f"the Harbor verifier of task {task!r} gave no reward: {exc} "
                        f"(tests/test.sh exited {done.code}); test.sh must write a number to "
                        f"{VERIFIER_LOGS}/{REWARD_TXT} or {{\"reward\": x}} to "
                        f"{VERIFIER_LOGS}/{REWARD_JSON}. Output ends:\n"
                        f"{_tail(done)[-1500:]}") from None
    info: dict[str, Any] = {"reward_file": source, "exit": done.code, "output": _tail(done)}
    if metrics:
        info["metrics"] = metrics
    return {"score": reward, "info": info}
