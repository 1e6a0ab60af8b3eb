"""Capabilities benchmark: ssh and mcp round trips, their first use, and the daemon's memory.

    python bench/bench_capabilities.py [--runs 200]

(a) In one process, client and servers on one event loop: start the ssh workspace (as the
    current user) and the mcp tools server, then time a command round trip over an open
    ssh shell, a fresh exec channel per command (`conn.run("true")`), and an MCP
    `tools/call` round trip with the official client, each as a ratio to spawning `true`
    measured in the same run.
(b) A real `hud serve` (a subprocess) of an environment with an ssh workspace and one MCP
    tool, reached the way the host library reaches a container (tunnels over the control
    socket, `hud.clients.bindings`): its start-up until the manifest is served, the first
    ssh command and the first MCP call (each loads its server's libraries: see
    `hud.capabilities.activation`), an MCP `tools/call` through the tunnel, and the
    daemon's VmRSS: an environment without capabilities, ssh + mcp started and idle (no
    client yet), and after ssh and mcp were used.
Prints tables; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ENV = '''
from hud import Environment
env = Environment(name="bench-capabilities")
{workspace}

@env.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

@env.template()
async def noop():
    answer = yield "nothing"
    yield 1.0
'''
BARE_ENV = '''
from hud import Environment
env = Environment(name="bench-bare")

@env.template()
async def noop():
    answer = yield "nothing"
    yield 1.0
'''


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
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


async def in_process(runs: int, root: str) -> dict[str, list[float]]:
    """(a): round trips with client and servers in this process."""
    import asyncssh
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    from hud.capabilities.mcp import Tools
    from hud.capabilities.ssh import Workspace

    workspace = Workspace(root, user=None)
    tools = Tools()

    @tools.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    ssh_binding = await workspace.start()
    mcp_binding = await tools.start()

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
    return results


def serve(env_file: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], dict, float]:
    """Start `hud serve env_file`; return it, its manifest, and seconds until it served it."""
    from hud.clients.control import ControlClient
    from hud.errors import DaemonUnavailable

    sock = tmp / f"{env_file.stem}.sock"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "serve", str(env_file),
                             "--socket", str(sock), "--log-file", str(tmp / f"{env_file.stem}.log")],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with ControlClient.connect(sock) as control:
                manifest = control.call("hello", {"client": "bench"})
            return proc, manifest, time.perf_counter() - t0
        except DaemonUnavailable:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"hud serve {env_file} did not come up; see {tmp}") from None
            time.sleep(0.005)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def daemon(runs: int, tmp: Path, root: str) -> tuple[dict[str, float], dict[str, float]]:
    """(b): a real daemon, reached through tunnels over its control socket."""
    from hud.clients.bindings import mcp_session, pick_binding, ssh_connect
    from hud.clients.channel import open_tunnel_stream

    bare_file, env_file = tmp / "bare.py", tmp / "caps.py"
    bare_file.write_text(BARE_ENV)
    env_file.write_text(ENV.format(workspace=f"ws = env.workspace({root!r}, user=None)"))
    mem: dict[str, float] = {}
    times: dict[str, float] = {}
    proc, _, started = serve(bare_file, tmp)
    await asyncio.sleep(0.5)
    mem["no capabilities"] = rss_mb(proc.pid)
    times["hud serve start -> manifest, no capabilities"] = started
    stop(proc)

    proc, manifest, started = serve(env_file, tmp)
    times["hud serve start -> manifest, ssh + mcp"] = started
    try:
        await asyncio.sleep(0.5)
        mem["ssh + mcp started, idle"] = rss_mb(proc.pid)
        sock = tmp / f"{env_file.stem}.sock"

        async def tunnel(name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_unix_connection(str(sock), limit=1 << 20)
            await open_tunnel_stream(reader, writer, name)
            return reader, writer

        bindings = {b["name"]: b for b in manifest["bindings"]}
        t0 = time.perf_counter()
        conn = await ssh_connect(tunnel, pick_binding(bindings, "ssh/", None))
        await conn.run("true", check=True)
        times["first ssh connection + command"] = time.perf_counter() - t0
        conn.close()
        t0 = time.perf_counter()
        async with mcp_session(tunnel, pick_binding(bindings, "mcp/", None)) as session:
            await session.call_tool("add", {"a": 1, "b": 2})
            times["first mcp session + tools/call"] = time.perf_counter() - t0

            async def call() -> None:
                await session.call_tool("add", {"a": 1, "b": 2})

            times["mcp: tools/call through the tunnel"] = statistics.median(await timed(call, runs))
        await asyncio.sleep(0.5)
        mem["after ssh and mcp were used"] = rss_mb(proc.pid)
    finally:
        stop(proc)
    return mem, times


async def main(runs: int) -> None:
    root = tempfile.mkdtemp(prefix="hud-bench-")
    tmp = Path(tempfile.mkdtemp(prefix="hud-bench-daemon-"))
    try:
        results = await in_process(runs, root)
        mem, times = await daemon(runs, tmp, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(results["spawn `true` (baseline)"])
    print("(a) in one process")
    print(f"{'measure':44} {'median ms':>10} {'p90 ms':>8} {'x baseline':>10}")
    for name, samples in results.items():
        med = statistics.median(samples)
        p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
        print(f"{name:44} {med * 1e3:10.2f} {p90 * 1e3:8.2f} {med / base:10.2f}")
    print("\n(b) a real `hud serve`, through tunnels over its control socket")
    for name, seconds in times.items():
        print(f"{name:44} {seconds * 1e3:10.2f} ms")
    print("\ndaemon VmRSS")
    for name, mb in mem.items():
        print(f"{name:44} {mb:10.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    asyncio.run(main(parser.parse_args().runs))
