"""GUI capabilities in real containers: start → CDP answering, start → RFB answering,
screenshot latency over the exec tunnel; baseline `docker run --rm IMAGE true`.

    python bench/bench_gui_docker.py [--rounds 3] [--shots 20]

Builds the browser and desktop templates, then per round: `docker run -d` the image and
time until Chromium's /json/version answers (or the VNC server greets) through
`docker exec -i ... hud connect --tunnel`. Screenshots: median of --shots, CDP
(Page.captureScreenshot via the env's helpers is server-side, so this uses the RFB and
CDP clients from the host). Asserts nothing about time.
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


def build(template: str) -> str:
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold

    work = Path(tempfile.mkdtemp(prefix="hud-bench-gui-"))
    try:
        folder, _ = scaffold(work / template, template)
        tag = f"hud-bench-gui-{template}"
        build_env(folder, tag=tag)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def bare(image: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--entrypoint", "true", image], check=True)
    return time.perf_counter() - t0


async def until_answering(image: str, capability: str) -> tuple[float, str]:
    """Seconds from `docker run -d` to the capability answering through the tunnel."""
    import hud

    t0 = time.perf_counter()
    name = subprocess.run(["docker", "run", "-d", "--network", "none", image], check=True,
                          capture_output=True, text=True).stdout.strip()
    deadline = time.monotonic() + 120
    while True:
        try:
            env = await hud.attach(name)
            reader, writer = await env.tunnel(capability)
            if capability == "browser":
                writer.write(b"GET /json/version HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                await writer.drain()
                ok = (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 200")
            else:
                ok = (await asyncio.wait_for(reader.readexactly(12), 10)).startswith(b"RFB ")
            writer.close()
            if ok:
                return time.perf_counter() - t0, name
            await env.close()
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


async def vnc_shots(name: str, shots: int) -> list[float]:
    import hud
    from hud.clients.rfb import RFBClient

    env = await hud.attach(name)
    reader, writer = await env.tunnel("desktop")
    client = await RFBClient.connect(reader, writer)
    times = []
    for _ in range(shots):
        t0 = time.perf_counter()
        await client.screenshot(10)
        times.append(time.perf_counter() - t0)
    await client.close()
    await env.close()
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shots", type=int, default=20)
    opts = parser.parse_args()
    rows = []
    for template, capability in (("browser", "browser"), ("desktop", "desktop")):
        image = build(template)
        base = statistics.median(bare(image) for _ in range(opts.rounds))
        starts, names = [], []
        for _ in range(opts.rounds):
            seconds, name = await until_answering(image, capability)
            starts.append(seconds)
            names.append(name)
        shots = await vnc_shots(names[-1], opts.shots) if capability == "desktop" else []
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
        rows.append((template, base, statistics.median(starts), shots))
    print(f"{'layer':<10}{'docker run --rm true':>22}{'start → answering':>20}{'ratio':>8}")
    for template, base, start, _ in rows:
        print(f"{template:<10}{base * 1000:>19.0f} ms{start * 1000:>17.0f} ms{start / base:>8.2f}")
    for _, _, _, shots in rows:
        if shots:
            print(f"\nVNC screenshot over the exec tunnel (PNG), median of {len(shots)}: "
                  f"{statistics.median(shots) * 1000:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
