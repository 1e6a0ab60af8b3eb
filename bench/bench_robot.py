"""Robot benchmark: control-loop steps/s through the robot capability vs stepping in-process.

    python bench/bench_robot.py [--steps 3000] [--frames-steps 500] [--attach CONTAINER]

For Reacher-v5, without frames and with 128×128 camera frames, measures in the same run:

    in-process    gymnasium's env.step (+ env.render) in a plain loop: the baseline
    loopback      RobotClient → RobotCapability over 127.0.0.1 TCP, in one process
    local tunnel  through LocalPlacement's daemon and unix socket, in one process
    exec tunnel   a `hud serve` subprocess reached through `hud connect --tunnel robot`
                  pipes: docker's transport without Docker (server in its own process)
    chunk10       the exec tunnel, actions sent as chunks of 10 (openpi-style chunking)
    attach        with --attach CONTAINER: `docker exec -i CONTAINER hud connect --tunnel
                  robot` to a running environment serving a `robot` binding

Ratios are against the in-process baseline measured in this run. Prints a table;
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from hud import Environment
from hud.eval.placement import AttachPlacement, LocalPlacement, Placement
from hud.robot import RobotCapability, RobotClient

FRAME = 128
ENV_ID = "Reacher-v5"


def in_process(steps: int, camera: int | None) -> float:
    """Steps/s of gymnasium itself (render each step when camera is set)."""
    import gymnasium

    kwargs: dict[str, Any] = {}
    if camera:
        os.environ.setdefault("MUJOCO_GL", "egl")
        kwargs = {"render_mode": "rgb_array", "width": camera, "height": camera}
    env = gymnasium.make(ENV_ID, **kwargs)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 2)).astype(np.float32)
    env.reset(seed=0)
    if camera:
        env.render()
    t0 = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if camera:
            env.render()
        if terminated or truncated:
            env.reset()
            if camera:
                env.render()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


async def drive(client: RobotClient, steps: int, chunk: int = 1) -> float:
    """Steps/s of a random policy over a connected client (resetting between episodes)."""
    rng = np.random.default_rng(0)
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        shape = (chunk, 2) if chunk > 1 else (2,)
        frame = await client.step({"action": rng.uniform(-1, 1, shape).astype(np.float32)})
        done += frame["steps"]
        if frame["terminated"] or frame["truncated"]:
            await client.reset()
    return done / (time.perf_counter() - t0)


async def loopback(steps: int, camera: int | None) -> float:
    cap = RobotCapability.gym(ENV_ID, camera=camera)
    binding = await cap.start()
    url = urlsplit(binding.url)
    try:
        client = await RobotClient.connect_tcp(url.hostname or "127.0.0.1", url.port or 0)
        rate = await drive(client, steps)
        await client.close()
        return rate
    finally:
        await cap.stop()


async def tunnel(placement: Placement, steps: int, chunk: int = 1) -> float:
    lease = await placement.open("bench", f"robot-{time.monotonic_ns()}")
    try:
        reader, writer = await lease.tunnel("robot")
        client = await RobotClient.connect(reader, writer)
        rate = await drive(client, steps, chunk)
        await client.close()
        return rate
    finally:
        await lease.close()


ENV_SOURCE = """
from hud import Environment
from hud.robot import RobotCapability

env = Environment(name="bench-robot")
env.add_capability(RobotCapability.gym("Reacher-v5", camera={camera}))
"""


class ExecTunnel:
    """A `hud serve` subprocess; tunnels through `hud connect --tunnel` subprocesses."""

    def __init__(self, camera: int | None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hud-bench-"))
        (self.dir / "env.py").write_text(ENV_SOURCE.format(camera=camera))
        self.env = {**os.environ, "HUD_SOCKET": str(self.dir / "c.sock")}
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "hud.cli.main", "serve", str(self.dir / "env.py"), "--socket",
             str(self.dir / "c.sock"), "--log-file", str(self.dir / "serve.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (self.dir / "c.sock").exists():
            if self.serve.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"hud serve did not start: {(self.dir / 'serve.log').read_text()}")
            time.sleep(0.05)

    async def rate(self, steps: int, chunk: int = 1) -> float:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hud.cli.main", "connect", "--tunnel", "robot", env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20)
        assert proc.stdout is not None and proc.stdin is not None
        client = await RobotClient.connect(proc.stdout, proc.stdin)  # type: ignore[arg-type]
        rate = await drive(client, steps, chunk)
        await client.close()
        await asyncio.wait_for(proc.wait(), 10)
        return rate

    def close(self) -> None:
        self.serve.send_signal(signal.SIGTERM)
        try:
            self.serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.serve.kill()
            self.serve.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def local_placement(camera: int | None) -> LocalPlacement:
    env = Environment(name=f"bench-robot-{camera or 0}")
    env.add_capability(RobotCapability.gym(ENV_ID, camera=camera))
    return LocalPlacement(env)


async def measure(args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    rows: list[tuple[str, str, float, float]] = []
    for label, camera, steps in (("no frames", None, args.steps),
                                 (f"{FRAME}x{FRAME} frames", FRAME, args.frames_steps)):
        base = in_process(steps, camera)
        rows.append((label, "in-process", base, 1.0))
        local = local_placement(camera)
        exec_tunnel = ExecTunnel(camera)
        cases: list[tuple[str, Callable[[], Awaitable[float]]]] = [
            ("loopback", partial(loopback, steps, camera)),
            ("local tunnel", partial(tunnel, local, steps)),
            ("exec tunnel (hud connect)", partial(exec_tunnel.rate, steps)),
            ("chunk10 exec tunnel", partial(exec_tunnel.rate, steps, chunk=10)),
        ]
        attach = AttachPlacement(args.attach) if args.attach else None
        if attach is not None:
            cases.append(("attach (docker exec, container's camera)", partial(tunnel, attach, steps)))
        try:
            for name, run in cases:
                rate = await run()
                rows.append((label, name, rate, rate / base))
        finally:
            await local.shutdown()
            exec_tunnel.close()
            if attach is not None:
                await attach.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="steps without frames")
    parser.add_argument("--frames-steps", type=int, default=500, help="steps with frames")
    parser.add_argument("--attach", help="a running container serving a 'robot' binding")
    args = parser.parse_args()
    runs = None if "HUD_RUNS_DIR" in os.environ else tempfile.mkdtemp(prefix="hud-bench-runs-")
    if runs is not None:
        os.environ["HUD_RUNS_DIR"] = runs  # the traces go with it
    try:
        rows = asyncio.run(measure(args))
    finally:
        if runs is not None:
            shutil.rmtree(runs, ignore_errors=True)
    print(f"{'case':<18} {'path':<44} {'steps/s':>10} {'vs in-process':>14}")
    for label, name, rate, ratio in rows:
        print(f"{label:<18} {name:<44} {rate:>10.0f} {ratio:>13.2f}x")
    print(f"(python {sys.version.split()[0]}, MUJOCO_GL={os.environ.get('MUJOCO_GL')})")


if __name__ == "__main__":
    main()
