"""The Ray placement against the docker placement: the same job, one machine, same concurrency.

    sudo python bench/bench_ray.py [--group 16] [--max-concurrent 4] [--repeats 3]

Runs itself in a private network namespace (`unshare -n`, loopback only), starts one Ray
node there (`ray start --head --block`, token auth, `hud_slots` = --max-concurrent),
builds the blank template's env image, and times the same oracle job (2 tasks x group)
through `DockerPlacement` and through `RayPlacement` (slot actors kept between jobs, as a
training loop keeps them), alternating, --repeats times each; it reports the medians, the
wall-time ratio Ray / docker, the Ray time per rollout beyond docker's, and the cost of
one Ray call to a slot actor (the floor of the per-rollout scheduling overhead). The
first Ray job (slot actors starting) is reported apart, and so is the driver's own CPU
time per rollout (what bounds one driver's rate over many nodes). The node is stopped by
its pid.
Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PORT = 6390


def _in_private_namespace() -> None:
    """Re-run this script inside `unshare -n` with lo up (once)."""
    if os.environ.get("HUD_BENCH_NETNS") == "1":
        return
    if os.geteuid() != 0:
        raise SystemExit("bench_ray needs root: it runs in a private network namespace")
    os.environ["HUD_BENCH_NETNS"] = "1"
    script = 'ip link set lo up && exec "$@"'
    os.execvp("unshare", ["unshare", "-n", "--", "sh", "-c", script, "sh", sys.executable,
                          *sys.argv])


def start_node(tmp: Path, slots: int) -> subprocess.Popen[bytes]:
    """One Ray head node on this namespace's loopback; returns its `ray start --block`."""
    ray_bin = Path(sys.executable).parent / "ray"
    argv = [str(ray_bin), "start", "--head", "--block", f"--port={PORT}",
            "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
            "--num-cpus=1", f"--resources={json.dumps({'hud_slots': slots})}",
            f"--object-store-memory={256 << 20}", f"--temp-dir={tmp}/node"]
    log = open(tmp / "node.log", "wb")  # noqa: SIM115 - the node's, for life
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def join(node: subprocess.Popen[bytes], tmp: Path) -> Any:
    """ray.init against the node once it answers (polled, with a deadline)."""
    import ray

    deadline = time.monotonic() + 90
    while True:
        if node.poll() is not None:
            raise SystemExit(f"the ray node exited: {(tmp / 'node.log').read_text()[-2000:]}")
        try:
            ray.init(address=f"127.0.0.1:{PORT}", logging_level=logging.ERROR, log_to_driver=False,
                     namespace="hud")
            return ray
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)  # poll interval: readiness is the GCS answering


#: CPU seconds this (the driver's) process spent in the timed jobs, by placement
CPU: dict[str, list[float]] = {}


async def timed(tasks: Any, group: int, concurrency: int, runtime: Any) -> float:
    from hud.eval.ray import AgentSpec

    t0, cpu0 = time.perf_counter(), time.process_time()
    job = await tasks.run(AgentSpec("oracle"), group=group, runtime=runtime,
                          max_concurrent=concurrency)
    seconds = time.perf_counter() - t0
    CPU.setdefault(type(runtime).__name__, []).append(time.process_time() - cpu0)
    if job.errors:
        raise SystemExit(f"the bench job failed: {[r.error for r in job.errors][:3]}")
    return seconds


async def call_cost(placement: Any, calls: int = 200) -> float:
    """Seconds per Ray call to a slot actor (a no-op), one after another."""
    actor = placement._slots[0].actor
    t0 = time.perf_counter()
    for _ in range(calls):
        await actor.where.remote()
    return (time.perf_counter() - t0) / calls


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--max-concurrent", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()

    from hud.build import docker as hd
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold
    from hud.eval import DockerPlacement, Taskset
    from hud.eval.ray import RayPlacement

    tmp = Path(tempfile.mkdtemp(prefix="hrb-", dir="/tmp"))
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                       "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(tmp),
                       "HUD_RUNS_DIR": str(tmp / "runs")})
    node = start_node(tmp, opts.max_concurrent)
    tag = "hud-bench-ray-letter-count"
    try:
        folder, _ = scaffold(tmp / "letter-count", "blank")
        build_env(folder, tag=tag)
        tasks = Taskset.from_source(folder).filter(["count_letter*"])
        tasks = Taskset(tasks.tasks[:2])
        n = len(tasks) * opts.group
        join(node, tmp)
        ray_placement = RayPlacement(tag, f"ray://127.0.0.1:{PORT}", keep_slots=True)
        cold = await timed(tasks, opts.group, opts.max_concurrent, ray_placement)
        docker_s, ray_s = [], []
        for _ in range(opts.repeats):
            docker_s.append(await timed(tasks, opts.group, opts.max_concurrent,
                                        DockerPlacement(tag)))
            ray_s.append(await timed(tasks, opts.group, opts.max_concurrent, ray_placement))
        per_call = await call_cost(ray_placement)
        await ray_placement.close()
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        node.send_signal(signal.SIGTERM)  # never `ray stop`: it ends every Ray on the host
        node.wait(timeout=60)
        hd.docker("rmi", "-f", tag, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)
    d, r = statistics.median(docker_s), statistics.median(ray_s)
    print(f"{n} oracle rollouts (2 tasks x group {opts.group}) at max_concurrent="
          f"{opts.max_concurrent}, one machine, median of {opts.repeats}\n")
    print(f"{'placement':<40}{'seconds':>9}{'rollouts/min':>14}")
    print(f"{'docker':<40}{d:>9.2f}{n / d * 60:>14.0f}")
    print(f"{'ray (1 node, slot actors warm)':<40}{r:>9.2f}{n / r * 60:>14.0f}")
    print(f"{'ray, first job (slot actors starting)':<40}{cold:>9.2f}{n / cold * 60:>14.0f}")
    print(f"\nray / docker wall time: {r / d:.3f}x")
    print(f"ray time per rollout beyond docker's: {(r - d) * opts.max_concurrent / n * 1000:+.1f} ms "
          f"(slot-time, i.e. x max_concurrent / rollouts)")
    print(f"one Ray call to a slot actor: {per_call * 1000:.2f} ms")
    for name, spent in CPU.items():
        print(f"driver CPU per rollout, {name}: {statistics.median(spent) / n * 1000:.1f} ms "
              f"(median over its jobs)")


if __name__ == "__main__":
    _in_private_namespace()
    asyncio.run(main())
