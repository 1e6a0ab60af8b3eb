"""Eval throughput: rollouts per minute with the oracle on letter-count, group 16.

    python bench/bench_eval.py [--group 16] [--max-concurrent 4]

Measures `local` (in-process) and `docker` (a fresh container per rollout, over
`docker exec -i ... hud connect`) placements. The docker figure is also given as a ratio
to starting and removing the same number of bare containers (`docker run -d IMAGE` +
`docker rm -f`) at the same concurrency, measured in the same run: the floor any
container-per-rollout harness pays. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path


async def bare_containers(image: str, count: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                "docker", "run", "-d", "--network", "none", "--entrypoint", "sleep", image, "60",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await proc.communicate()
            rm = await asyncio.create_subprocess_exec(
                "docker", "rm", "-f", out.decode().strip(), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            await rm.wait()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - t0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--max-concurrent", type=int, default=4)
    opts = parser.parse_args()

    from hud.agents import OracleAgent
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold
    from hud.eval import DockerPlacement, Taskset

    os.environ.setdefault("HUD_RUNS_DIR", tempfile.mkdtemp(prefix="hud-bench-runs-"))
    work = Path(tempfile.mkdtemp(prefix="hud-bench-eval-"))
    folder, _ = scaffold(work / "letter-count", "blank")
    tag = "hud-bench-letter-count"
    build_env(folder, tag=tag)
    tasks = Taskset.from_source(folder).filter(["count_letter"])
    n = len(tasks) * opts.group
    rows = []
    try:
        t0 = time.perf_counter()
        job = await tasks.run(OracleAgent(), group=opts.group, runtime="local")
        rows.append(("local (in-process)", time.perf_counter() - t0, job.reward))
        t0 = time.perf_counter()
        job = await tasks.run(OracleAgent(), group=opts.group, runtime=DockerPlacement(tag),
                              max_concurrent=opts.max_concurrent)
        rows.append((f"docker (max_concurrent={opts.max_concurrent})", time.perf_counter() - t0,
                     job.reward))
        bare = await bare_containers(tag, n, opts.max_concurrent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{n} rollouts of letter-count with the oracle (group {opts.group})\n")
    print(f"{'placement':<34}{'seconds':>9}{'rollouts/min':>14}{'reward':>8}")
    for name, seconds, reward in rows:
        print(f"{name:<34}{seconds:>9.2f}{n / seconds * 60:>14.0f}{reward:>8.2f}")
    print(f"{'bare docker run + rm (baseline)':<34}{bare:>9.2f}{n / bare * 60:>14.0f}{'':>8}")
    print(f"\ndocker placement / bare containers: {rows[1][1] / bare:.2f}x the time")


if __name__ == "__main__":
    asyncio.run(main())
