"""The one way hud runs a subprocess (docker, debootstrap, chromium, pip, ...).

Every call has a timeout and returns the exit code with both output streams, so callers
decide what a failure means and can quote the tail of the log in their error.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hud.errors import InfraError


@dataclass(frozen=True)
class Completed:
    """A finished subprocess: its argv, exit code and decoded output."""

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def tail(self, lines: int = 20) -> str:
        """The last lines of stderr (or stdout when stderr is empty), for error messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Completed:
    """Run `argv` to completion and capture its output.

    Raises:
        InfraError: the program is missing, or it ran past `timeout` seconds (it is killed).
    """
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            list(argv),
            input=data,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError as exc:
        raise InfraError(f"{argv[0]!r} is not installed or not on PATH ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(
            f"{' '.join(argv)!r} did not finish within {timeout:g}s and was killed"
        ) from exc
    return Completed(
        tuple(argv),
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


async def arun(
    argv: Sequence[str],
    *,
    timeout: float,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Completed:
    """Async twin of `run`: same contract, never blocks the event loop.

    Raises:
        InfraError: the program is missing, or it ran past `timeout` seconds (it is killed).
    """
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    except FileNotFoundError as exc:
        raise InfraError(f"{argv[0]!r} is not installed or not on PATH ({exc})") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), timeout)
    except asyncio.TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise InfraError(
            f"{' '.join(argv)!r} did not finish within {timeout:g}s and was killed"
        ) from exc
    return Completed(
        tuple(argv), int(proc.returncode), out.decode(errors="replace"), err.decode(errors="replace")
    )
