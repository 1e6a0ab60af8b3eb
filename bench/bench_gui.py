"""GUI capabilities benchmark: time to a serving browser and desktop, screenshot latency.

    python bench/bench_gui.py [--starts 5] [--shots 20]

In-process on this host (the docker variant, against `docker run --rm IMAGE true`, is added
with the images):
(a) `BrowserCapability.start()` until DevTools answers `/json/version`, and
    `DesktopCapability.start()` until Xvnc greets over RFB (with and without openbox),
    as ratios to spawning `true` through the same process helper (the fork/exec floor);
(b) opening a tunnel through the daemon (local placement, unix socket);
(c) screenshot latency through the tunnel, median of N: CDP `Page.captureScreenshot`
    and VNC full frame + PNG encode, beside the same without the tunnel.
Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hud.capabilities.chromium import LOOPBACK_ONLY, BrowserCapability
from hud.capabilities.desktop import DesktopCapability
from hud.capabilities.service import Service
from hud.capabilities.users import resolve_user
from hud.clients.cdp import CDP
from hud.clients.rfb import RFBClient
from hud.environment import Environment
from hud.eval.placement import LocalPlacement

PAGE = "data:text/html,<h1 style='font-size:80px'>hud bench</h1>"


async def timed(step: Callable[[], Awaitable[Any]], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await step()
        out.append(time.perf_counter() - t0)
    return out


async def spawn_true() -> None:
    service = await Service.spawn("true", ["true"], user=resolve_user(None),
                                  log_path=Path("/tmp/hud-bench-true.log"))
    await asyncio.wait_for(service.proc.wait(), 10)


async def bench_starts(runs: int) -> list[tuple[str, list[float]]]:
    browser = BrowserCapability(user=None, args=LOOPBACK_ONLY)
    desktop = DesktopCapability(user=None)
    bare = DesktopCapability(user=None, window_manager=None)
    rows = [("spawn `true` (baseline)", await timed(spawn_true, runs))]

    for label, capability in (("browser start -> CDP answers", browser),
                              ("desktop start -> RFB + openbox", desktop),
                              ("desktop start -> RFB (no WM)", bare)):
        values = []
        try:
            for _ in range(runs):
                t0 = time.perf_counter()
                await capability.start()
                values.append(time.perf_counter() - t0)
                await capability.stop()
        finally:
            await capability.close()
        rows.append((label, values))
    return rows


async def bench_shots(runs: int) -> list[tuple[str, list[float]]]:
    env = Environment(name="bench-gui")
    browser = env.add_capability(BrowserCapability(user=None, args=LOOPBACK_ONLY))
    desktop = env.add_capability(DesktopCapability(user=None))
    assert isinstance(browser, BrowserCapability) and isinstance(desktop, DesktopCapability)
    placement = LocalPlacement(env)
    lease = await placement.open("bench", "bench")
    rows = []
    try:
        await browser.open(PAGE)
        await desktop.run_app(["xmessage", "-center", "hud bench"])
        await desktop.wait_window("xmessage")

        async def tunnel() -> None:
            _, writer = await lease.tunnel("desktop")
            writer.close()

        rows.append(("open a tunnel (local)", await timed(tunnel, runs)))
        via_tunnel = await CDP.connect_tunnel(lease.tunnel, "browser")
        direct = await CDP.connect_port(browser.port or 0)
        for label, cdp in (("CDP screenshot, tunnel", via_tunnel),
                           ("CDP screenshot, direct", direct)):
            page = await cdp.page()
            rows.append((label, await timed(page.screenshot, runs)))
            await cdp.close()
        for label, streams in (("VNC screenshot (PNG), tunnel", await lease.tunnel("desktop")),
                               ("VNC screenshot (PNG), direct",
                                await asyncio.open_connection("127.0.0.1", desktop.port))):
            client = await RFBClient.connect(*streams)
            rows.append((label, await timed(client.screenshot, runs)))
            await client.close()
    finally:
        await lease.close()
        await placement.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--shots", type=int, default=20)
    opts = parser.parse_args()
    starts = asyncio.run(bench_starts(opts.starts))
    shots = asyncio.run(bench_shots(opts.shots))
    floor = statistics.median(starts[0][1])
    print(f"{'measure':34} {'median ms':>10} {'min ms':>8} {'x true':>8}")
    for label, values in starts + shots:
        median = statistics.median(values)
        is_start = label in dict(starts[1:])
        ratio = f"{median / floor:8.1f}" if is_start else ""
        print(f"{label:34} {median * 1000:10.1f} {min(values) * 1000:8.1f} {ratio:>8}")


if __name__ == "__main__":
    main()
