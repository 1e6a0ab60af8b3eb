"""Run a program with hard bounds: time, memory, processes, file size and output.

The process side of the grading sandbox (hud.grading.sandbox adds the identity and the folder):

- **Exec-based limits, no Python in the child before exec** (preexec_fn is unsafe once
  the daemon has threads): `choom -n 1000` puts the program first in line for the
  kernel's OOM killer, ahead of the daemon; `prlimit` bounds its address space, processes
  (per uid), file size and open files, with no core dumps; `setpriv --no-new-privs` keeps
  setuid programs from raising it back. Each of them execs the next: one pid throughout.
  They run as root, so each is a trusted absolute path (hud.capabilities.programs), never
  looked up in the child's PATH.
- **Wall time.** At the deadline the caller's `end(pid)` kills the process group and
  whatever else it owns (for the sandbox: every process of the grading uid).
- **Output read incrementally.** stdout, stderr and the result channel are each kept up
  to `Limits.output` bytes; past that the program is ended the same way and the rest is
  drained and dropped, so the daemon never holds more than the cap, whatever is printed.
- **A separate result channel**: a pipe whose write end the program inherits; its number
  replaces `{result_fd}` in argv. What comes back on it is raw and untrusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hud.capabilities.programs import program
from hud.errors import ConfigError, InfraError

log = logging.getLogger("hud.grading.bounded")

RESULT_FD = "{result_fd}"
MiB = 1 << 20
DRAIN_TIMEOUT = 5.0
TOOLS = ("choom", "prlimit", "setpriv")


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use.

    Attributes:
        timeout: wall-clock seconds before everything it started is killed.
        memory: address space in bytes (RLIMIT_AS), per process.
        processes: processes and threads of the grading uid (RLIMIT_NPROC).
        file_size: the largest file it may write, in bytes (RLIMIT_FSIZE).
        output: bytes kept from each of stdout, stderr and the result channel; more is
            a failure ("output over ...").
        files: total bytes of the files copied in.
    """

    timeout: float = 30.0
    memory: int = 512 * MiB
    processes: int = 64
    file_size: int = 64 * MiB
    output: int = 1 * MiB
    files: int = 16 * MiB

    def __post_init__(self) -> None:
        for name in ("timeout", "memory", "processes", "file_size", "output", "files"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"Limits.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class Outcome:
    """A finished sandboxed run: raw, untrusted outputs plus what cut it short, if anything.

    Attributes:
        exit_code: the exit status (negative: killed by that signal).
        stdout: up to `Limits.output` bytes of standard output.
        stderr: up to `Limits.output` bytes of standard error.
        result: up to `Limits.output` bytes read from the result channel.
        failure: "timeout after 30s", "output over 1 MiB (stdout)", or None.
    """

    exit_code: int
    stdout: bytes
    stderr: bytes
    result: bytes
    failure: str | None


def size_text(size: int) -> str:
    """1048576 -> '1 MiB'."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit}"
    return f"{size} B"


def check_tools() -> None:
    """Raises ConfigError naming the package when no trusted choom, prlimit or setpriv
    is installed (hud.capabilities.programs)."""
    missing = []
    for tool in TOOLS:
        try:
            program(tool)
        except InfraError:
            missing.append(tool)
    if missing:
        raise ConfigError(f"bounded runs need {', '.join(missing)} (from util-linux, in the "
                          f"hud base image): apt-get install util-linux")


def _limit(kind: int, wanted: int) -> int:
    """`wanted`, lowered to the current hard limit (an unprivileged daemon cannot raise it)."""
    hard = resource.getrlimit(kind)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


async def _drain(stream: asyncio.StreamReader, cap: int, name: str,
                 over: asyncio.Event, flooded: list[str]) -> bytes:
    """Read `stream` to its end, keeping at most `cap` bytes; flag `over` past the cap."""
    kept = bytearray()
    while chunk := await stream.read(1 << 16):
        room = cap - len(kept)
        if len(chunk) > room:
            kept += chunk[: max(room, 0)]
            if not over.is_set():
                flooded.append(name)
                over.set()
        else:
            kept += chunk
    return bytes(kept)


def _prefix(limits: Limits) -> list[str]:
    rlimits = [
        f"--as={_limit(resource.RLIMIT_AS, limits.memory)}",
        f"--nproc={_limit(resource.RLIMIT_NPROC, limits.processes)}",
        f"--fsize={_limit(resource.RLIMIT_FSIZE, limits.file_size)}",
        f"--nofile={_limit(resource.RLIMIT_NOFILE, 256)}",
        "--core=0",
    ]
    return [program("choom"), "-n", "1000", "--", program("prlimit"), *rlimits, "--",
            program("setpriv"), "--no-new-privs", "--"]


async def run(argv: Sequence[str], *, limits: Limits, env: Mapping[str, str], cwd: str,
              stdin: bytes, end: Callable[[int], None]) -> Outcome:
    """Run `argv` under `limits`, feeding `stdin`; `end(pid)` (called in a thread) must
    kill the program and everything it started, whenever it exits or is cut short.

    Raises:
        InfraError: the program could not be started at all.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    result = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(result), os.fdopen(read_end, "rb", 0))
    try:
        inner = [a.replace(RESULT_FD, str(write_end)) for a in argv]
        try:
            proc = await asyncio.create_subprocess_exec(
                *_prefix(limits), *inner, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=dict(env), cwd=cwd, pass_fds=(write_end,), start_new_session=True)
        except OSError as exc:
            raise InfraError(f"could not start {argv[0]!r} in the grading sandbox: {exc}") from exc
        finally:
            os.close(write_end)
        return await _supervise(proc, stdin, result, limits, end)
    finally:
        transport.close()


async def _supervise(proc: asyncio.subprocess.Process, stdin: bytes,
                     result: asyncio.StreamReader, limits: Limits,
                     end: Callable[[int], None]) -> Outcome:
    assert proc.stdin and proc.stdout and proc.stderr
    cap, over = limits.output, asyncio.Event()
    flooded: list[str] = []
    readers = [asyncio.ensure_future(_drain(s, cap, n, over, flooded)) for s, n in
               ((proc.stdout, "stdout"), (proc.stderr, "stderr"), (result, "result"))]
    feeder = asyncio.ensure_future(_feed(proc.stdin, stdin))
    exited = asyncio.ensure_future(proc.wait())
    flood = asyncio.ensure_future(over.wait())
    try:
        try:
            await asyncio.wait({exited, flood}, timeout=limits.timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: nothing it started may outlive the grade
            end(proc.pid)
            raise
        failure = None if exited.done() else f"timeout after {limits.timeout:g}s"
        await asyncio.to_thread(end, proc.pid)
        code = await exited
        try:
            out, err, res = await asyncio.wait_for(asyncio.gather(*readers), DRAIN_TIMEOUT)
        except TimeoutError:
            log.warning("a sandboxed process outlived the kill and kept a pipe open")
            out = err = res = b""
            failure = failure or "a process outlived the kill"
        if over.is_set():  # a flood wins over a timeout: it is what stalled the run
            failure = f"output over {size_text(cap)} ({flooded[0]})"
    finally:
        for task in (*readers, feeder, exited, flood):
            task.cancel()
    return Outcome(code, out, err, res, failure)


async def _feed(pipe: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        pipe.write(data)
        await pipe.drain()
        pipe.close()
