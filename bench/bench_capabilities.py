"""Capabilities benchmark: ssh and mcp round trips, and the memory they cost.

    python bench/bench_capabilities.py [--runs 200]

In one process (the daemon's shape): start the ssh workspace (as the current user) and
the mcp tools server, then measure
(a) a command round trip over an open ssh shell session (`echo` into a running shell,
    wait for its answer) and a fresh exec channel per command (`conn.run("true")`),
(b) an MCP `tools/call` round trip with the official client,
each as a ratio to spawning `true` as a subprocess, measured in the same run;
(c) RSS of the process before and after starting both capabilities (MB).
Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def timed(step: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await step()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await step()
        out.append(time.perf_counter() - t0)
    return out


async def main(runs: int) -> None:
    bare = rss_mb()
    import asyncssh
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from hud.capabilities.mcp import Tools
    from hud.capabilities.ssh import Workspace

    root = tempfile.mkdtemp(prefix="hud-bench-")
    workspace = Workspace(root, user=None)
    tools = Tools()

    @tools.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    ssh_binding = await workspace.start()
    mcp_binding = await tools.start()
    started = rss_mb()

    async def spawn_true() -> None:
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

    params = ssh_binding.params
    port = int(ssh_binding.url.rsplit(":", 1)[1])
    known = asyncssh.import_known_hosts(f"[127.0.0.1]:{port} {params['host_pubkey']}\n")
    results: dict[str, list[float]] = {"spawn `true` (baseline)": await timed(spawn_true, runs)}
    async with asyncssh.connect("127.0.0.1", port, username=params["user"], known_hosts=known,
                                client_keys=[asyncssh.import_private_key(params["client_key"])]) as conn:
        shell = await conn.create_process("bash", encoding="utf-8")
        counter = 0

        async def shell_echo() -> None:
            nonlocal counter
            counter += 1
            shell.stdin.write(f"echo __{counter}__\n")
            await asyncio.wait_for(shell.stdout.readuntil(f"__{counter}__\n"), 10)

        async def exec_true() -> None:
            await asyncio.wait_for(conn.run("true", check=True), 10)

        results["ssh: command in open shell"] = await timed(shell_echo, runs)
        results["ssh: exec channel `true`"] = await timed(exec_true, max(runs // 4, 10))
        shell.stdin.write_eof()
        await shell.wait_closed()

    url = f"http://{mcp_binding.url.removeprefix('tcp://')}{mcp_binding.params['path']}"
    async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as client:
        await client.initialize()

        async def call() -> None:
            await client.call_tool("add", {"a": 1, "b": 2})

        results["mcp: tools/call add"] = await timed(call, runs)

    await tools.stop()
    await workspace.stop()

    base = statistics.median(results["spawn `true` (baseline)"])
    print(f"{'measure':32} {'median ms':>10} {'p90 ms':>8} {'x baseline':>10}")
    for name, samples in results.items():
        med = statistics.median(samples)
        p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
        print(f"{name:32} {med * 1e3:10.2f} {p90 * 1e3:8.2f} {med / base:10.2f}")
    print(f"\nRSS: bare interpreter {bare:.1f} MB; with ssh+mcp started (idle, before any "
          f"client) {started:.1f} MB (+{started - bare:.1f} MB)")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    asyncio.run(main(parser.parse_args().runs))
