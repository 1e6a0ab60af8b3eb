"""Capabilities through exec tunnels into a real container, vs a bare `docker exec`.

    python bench/bench_tunnel.py [--runs 20]

Builds a small environment (ssh workspace + one MCP tool), starts it with
`--network none`, and measures, in the same run:
  - `docker exec C true` (the baseline: what any exec-based harness pays per command);
  - a command round trip over an already open ssh session (asyncssh over the tunnel);
  - attaching: the one `docker exec ... hud connect --mux` that carries everything and
    the daemon's hello (plain control lines), then the first tunnel, which starts SSH on
    that connection (the container imports asyncssh; a key exchange);
  - opening a new tunnel stream on that connection (no exec), and the same with the
    capability's ssh handshake on top;
  - an MCP tool call over an open session;
  - the same through the docker placement's own connection (a fresh container started
    with `docker run -i`, whose daemon serves the connection on its stdio; no exec):
    start to manifest, the first tunnel, a tunnel stream, an MCP tool call;
  - the daemon's resident memory with ssh and mcp started (MB).
Prints medians and ratios; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ENV = '''
from hud import Environment
env = Environment(name="bench-tunnel")
ws = env.workspace()

@env.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

@env.template()
async def noop():
    answer = yield "nothing"
    yield 1.0
'''


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def placement_path(tag: str, ssh_name: str, runs: int) -> dict[str, list[float]]:
    """Seconds for the docker placement's own path: fresh containers reached over their
    `docker run -i` (start to manifest, first tunnel), and on one of them tunnel streams
    and MCP calls."""
    from hud.clients.attach import RemoteEnv
    from hud.clients.untrusted import parse_manifest
    from hud.eval import DockerPlacement
    from hud.eval.placement import new_id

    placement = DockerPlacement(tag)
    out: dict[str, list[float]] = {"start": [], "first": [], "stream": [], "mcp": []}
    try:
        for i in range(max(3, runs // 4)):
            t0 = time.perf_counter()
            lease = await placement.open("bench-tunnel", new_id())
            out["start"].append(time.perf_counter() - t0)
            env = RemoteEnv(lease.info["container"], lease,
                            parse_manifest(lease.hello, lease.source()))
            try:
                t0 = time.perf_counter()
                _, writer = await env.tunnel(ssh_name)
                out["first"].append(time.perf_counter() - t0)
                writer.close()
                if i:
                    continue
                for _ in range(runs):
                    t0 = time.perf_counter()
                    _, writer = await env.tunnel(ssh_name)
                    out["stream"].append(time.perf_counter() - t0)
                    writer.close()
                async with env.mcp() as session:
                    for _ in range(runs):
                        t0 = time.perf_counter()
                        await session.call_tool("add", {"a": 1, "b": 2})
                        out["mcp"].append(time.perf_counter() - t0)
            finally:
                await env.close()
    finally:
        await placement.shutdown()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    opts = parser.parse_args()

    import hud
    from hud.build.env_image import build_env

    work = Path(tempfile.mkdtemp(prefix="hud-bench-tunnel-"))
    folder = work / "env"
    folder.mkdir()
    (folder / "env.py").write_text(ENV)
    tag = "hud-bench-tunnel"
    try:
        build_env(folder, tag=tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    name = subprocess.run(["docker", "run", "-d", "--network", "none", tag], check=True,
                          capture_output=True, text=True).stdout.strip()
    try:
        for _ in range(200):
            if subprocess.run(["docker", "exec", name, "hud", "health"],
                              capture_output=True).returncode == 0:
                break
        execs = []
        for _ in range(opts.runs):
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", name, "true"], check=True)
            execs.append(time.perf_counter() - t0)
        attaches, switches = [], []
        for _ in range(max(3, opts.runs // 4)):
            t0 = time.perf_counter()
            async with await hud.attach(name) as env:
                attaches.append(time.perf_counter() - t0)
                ssh_name = next(b["name"] for b in env.bindings.values()
                                if b["protocol"].startswith("ssh/"))
                t0 = time.perf_counter()
                _, writer = await env.tunnel(ssh_name)
                switches.append(time.perf_counter() - t0)
                writer.close()
        async with await hud.attach(name) as env:
            _, writer = await env.tunnel(ssh_name)  # SSH started: later opens are streams
            writer.close()
            streams = []
            for _ in range(opts.runs):
                t0 = time.perf_counter()
                _, writer = await env.tunnel(ssh_name)
                streams.append(time.perf_counter() - t0)
                writer.close()
            opens = []
            for _ in range(max(3, opts.runs // 4)):
                t0 = time.perf_counter()
                conn = await env.ssh()
                opens.append(time.perf_counter() - t0)
                conn.close()
            ssh = await env.ssh()
            cmds = []
            for _ in range(opts.runs):
                t0 = time.perf_counter()
                await ssh.run("true", check=True)
                cmds.append(time.perf_counter() - t0)
            async with env.mcp() as session:
                calls = []
                for _ in range(opts.runs):
                    t0 = time.perf_counter()
                    await session.call_tool("add", {"a": 1, "b": 2})
                    calls.append(time.perf_counter() - t0)
        placed = await placement_path(tag, ssh_name, opts.runs)
        rss = subprocess.run(["docker", "exec", name, "sh", "-c",
                              "grep VmRSS /proc/$(pgrep -f 'bin/hud serve' | head -1)/status"],
                             capture_output=True, text=True).stdout.split()
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    base = median_ms(execs)
    print(f"{'measure':<52}{'median ms':>10}{'ratio':>8}")
    for label, samples in (("docker exec C true (baseline)", execs),
                           ("ssh command on an open session (tunnel)", cmds),
                           ("attach: one exec + hello (plain control lines)", attaches),
                           ("the first tunnel: SSH starts on the connection", switches),
                           ("open a tunnel stream (on the open connection)", streams),
                           ("open a tunnel stream + ssh handshake", opens),
                           ("MCP tool call on an open session (tunnel)", calls),
                           ("placement: docker run -i to manifest", placed["start"]),
                           ("placement: the first tunnel (SSH in the daemon)", placed["first"]),
                           ("placement: open a tunnel stream", placed["stream"]),
                           ("placement: MCP tool call on an open session", placed["mcp"])):
        print(f"{label:<52}{median_ms(samples):>10.1f}{median_ms(samples) / base:>8.2f}")
    if len(rss) >= 2:
        print(f"\ndaemon RSS with ssh + mcp started: {int(rss[1]) / 1024:.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())
