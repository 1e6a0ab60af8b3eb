"""Helpers for the browser and desktop tests: real binaries, a real in-process daemon,
real tunnels (the `local` placement), and hud's LocalPort for clients that want a URL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hud.clients.bindings import LocalPort
from hud.environment import Environment
from hud.eval.placement import Lease, LocalPlacement
from hud.eval.rollout import RunContext
from hud.eval.traces import TraceWriter


def need(*binaries: str) -> None:
    """Skip the test when one of `binaries` is really not installed here (in CI, where
    scripts/setup installs them, a missing one is a failure, never a silent skip)."""
    for binary in binaries:
        if shutil.which(binary) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{binary} is not installed; scripts/setup installs it")
            pytest.skip(f"{binary} is not installed (apt-get install the browser/desktop "
                        f"packages listed in images/)")


@contextlib.asynccontextmanager
async def served(env: Environment) -> AsyncIterator[Lease]:
    """The env in an in-process daemon (capabilities started); yields a rollout's lease."""
    placement = LocalPlacement(env)
    lease = await placement.open("job", "rollout")
    try:
        yield lease
    finally:
        await lease.close()
        await placement.shutdown()


@contextlib.asynccontextmanager
async def run_context(env: Environment, trace_dir: Path) -> AsyncIterator[RunContext]:
    """A real `RunContext` for the first template of `env`, over the local placement."""
    async with served(env) as lease:
        manifest = await lease.channel.call("hello", {"client": "test"})
        task = next(iter(env.templates.values()))()
        trace = TraceWriter(trace_dir / "trace1.jsonl")
        try:
            yield RunContext(task, "prompt", {}, manifest, lease, trace)
        finally:
            trace.close()


@contextlib.asynccontextmanager
async def forwarder(lease: Lease, name: str) -> AsyncIterator[int]:
    """A loopback port whose every connection is a fresh tunnel to capability `name`."""
    port = LocalPort(lease.tunnel, name)
    await port.start()
    try:
        yield port.port
    finally:
        await port.stop()


def colours(rgb: bytes, step: int = 101) -> int:
    """How many distinct colours a sample of an RGB buffer holds."""
    return len({rgb[i:i + 3] for i in range(0, len(rgb) - 3, 3 * step)})


def differing_pixels(a: bytes, b: bytes) -> int:
    """How many pixels differ between two same-sized RGB buffers."""
    return sum(1 for i in range(0, min(len(a), len(b)), 3) if a[i:i + 3] != b[i:i + 3])


async def wait_for(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll async `check()` until truthy; fail the test after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {check}")
        await asyncio.sleep(interval)
