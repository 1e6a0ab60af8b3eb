"""hud.proc: the one subprocess helper: exit codes, input, timeouts, bounded output."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hud.errors import InfraError
from hud.proc import DEFAULT_LIMIT, arun, run
from tests.sshkit import alive, until

MIB = 1 << 20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


async def _pid_from(path: Path) -> int:
    assert await until(lambda: path.exists() and path.read_text().strip() != "")
    return int(path.read_text())


async def test_exit_code_output_and_input() -> None:
    """arun feeds input and returns the exit code with both streams."""
    done = await arun(["sh", "-c", "cat; echo oops >&2; exit 3"], timeout=30, input="fed")
    assert (done.code, done.stdout, done.stderr, done.truncated) == (3, "fed", "oops\n", False)


def test_run_is_the_blocking_twin() -> None:
    """run gives the same result as arun, from synchronous code."""
    done = run(["sh", "-c", "cat; exit 2"], timeout=30, input=b"sync")
    assert (done.code, done.stdout, done.truncated) == (2, "sync", False)


async def test_run_works_inside_a_running_loop() -> None:
    """Synchronous code called from async code can still use run."""
    assert run(["echo", "nested"], timeout=30).stdout == "nested\n"


def test_run_missing_program_is_an_infra_error() -> None:
    """run, like arun, names a program that is not installed in an InfraError."""
    with pytest.raises(InfraError, match="'no-such-hud-program' is not installed"):
        run(["no-such-hud-program"], timeout=30)


def test_run_timeout_kills_the_program_and_raises(tmp_path: Path) -> None:
    """run, like arun, kills a program past its timeout and raises InfraError."""
    pidfile = tmp_path / "pid"
    with pytest.raises(InfraError, match=r"did not finish within 0\.5s and was killed"):
        run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"], timeout=0.5)
    assert asyncio.run(until(lambda: not alive(int(pidfile.read_text()))))


def test_run_limit_must_be_positive() -> None:
    """run, like arun, refuses a limit of 0 bytes with the fix."""
    with pytest.raises(ValueError, match="limit=0 bytes; give a positive bound"):
        run(["true"], timeout=30, limit=0)


async def test_missing_program_is_an_infra_error() -> None:
    """A program that is not installed is an InfraError naming it."""
    with pytest.raises(InfraError, match="'no-such-hud-program' is not installed"):
        await arun(["no-such-hud-program"], timeout=30)


async def test_timeout_kills_the_program_and_raises(tmp_path: Path) -> None:
    """Past the timeout the program is killed and InfraError says so."""
    pidfile = tmp_path / "pid"
    with pytest.raises(InfraError, match=r"did not finish within 0\.5s and was killed"):
        await arun(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"], timeout=0.5)
    assert await until(lambda: not alive(int(pidfile.read_text())))


async def test_cancelling_the_caller_kills_the_program(tmp_path: Path) -> None:
    """A cancelled arun leaves no child running."""
    pidfile = tmp_path / "pid"
    call = asyncio.ensure_future(arun(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"],
                                      timeout=300))
    pid = await _pid_from(pidfile)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await until(lambda: not alive(pid))


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_a_1gib_flood_keeps_memory_bounded(stream: str) -> None:
    """1 GiB on one stream: the first `limit` bytes are kept, marked truncated, and the
    caller's peak RSS grows by far less than the flood."""
    redirect = "" if stream == "stdout" else " >&2"
    _reset_peak_rss()
    before = _status_kib("VmRSS")
    done = await arun(["sh", "-c", f"head -c 1G /dev/zero{redirect}"], timeout=120)
    grown_mib = (_status_kib("VmHWM") - before) / 1024
    assert done.truncated and len(getattr(done, stream)) == DEFAULT_LIMIT
    assert grown_mib < 256, f"peak RSS grew {grown_mib:.0f} MiB reading a 1 GiB flood"


def test_run_is_bounded_too() -> None:
    """run keeps `limit` bytes and marks the result truncated."""
    done = run(["head", "-c", "1G", "/dev/zero"], timeout=120, limit=MIB)
    assert done.truncated and len(done.stdout) == MIB


async def test_output_of_exactly_the_limit_is_not_truncated() -> None:
    """A stream of exactly `limit` bytes is complete, not truncated."""
    done = await arun(["head", "-c", str(MIB), "/dev/zero"], timeout=30, limit=MIB)
    assert (done.code, len(done.stdout), done.truncated) == (0, MIB, False)


async def test_overflow_kills_the_group_the_program_leads(tmp_path: Path) -> None:
    """A flooding program that leads its own process group is killed with the group."""
    pidfile = tmp_path / "pid"
    done = await arun(["setsid", "sh", "-c",
                       f"sleep 300 & echo $! > {pidfile}; exec head -c 1G /dev/zero"],
                      timeout=120, limit=MIB)
    assert done.truncated
    assert await until(lambda: not alive(int(pidfile.read_text())))


async def test_limit_must_be_positive() -> None:
    """A limit of 0 bytes is refused with the fix."""
    with pytest.raises(ValueError, match="limit=0 bytes; give a positive bound"):
        await arun(["true"], timeout=30, limit=0)
