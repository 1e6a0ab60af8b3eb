"""Eval throughput: rollouts per minute with the oracle on letter-count, and how it scales.

    python bench/bench_eval.py [--group 16] [--max-concurrent 4] [--curve 1,2,4,8] [--warm N]
                               [--think SECONDS] [--repeat R] [--python-floors]

First table: `local` (in-process) and `docker` (a fresh container per rollout, reached
over its own `docker run -i`) placements at `--max-concurrent`. The docker figure is
also given as a ratio to starting and removing the same number of bare containers
(`docker run -d IMAGE` + `docker rm -f`) at the same concurrency, measured in the same
run: the floor any container-per-rollout harness pays. One untimed docker rollout goes
first, so the figure leaves out what a process pays once. `--repeat R` runs each cell of
the curve (and of the floors) R times, each ratio taken within its round, and prints the
medians and the ranges: one round of 24 rollouts on 2 busy cores swings by ±0.1.

Second table, the scaling curve: at each concurrency of `--curve`, docker rollouts/min
with no warm pool and with a warm pool of N (`Taskset.run(warm=N)`; N = the concurrency
unless `--warm` fixes it), each as a ratio to bare run + rm at that concurrency, measured
just before. The oracle answers at once, so a rollout is all container work; `--think S`
has it wait S seconds first, as a model would, which is the time a warm pool overlaps
container start with; the bare baseline then keeps each container S seconds too (what a
harness pays to hold a container for an agent's S seconds). Each cell also gives the
machine's CPU per rollout (all processes, /proc/stat): with an instant oracle on few
cores the cells are CPU-bound, and the ratio tends to bare CPU ÷ docker CPU. A third
baseline, bare containers with one `docker exec -i C cat` round trip each, is the ceiling
of any harness that drives a container by exec, whatever runs inside; a fourth,
containers started as the placement starts them (`docker run -i --rm`) with `cat` for
the daemon, is the floor of the placement's own transport. Every
docker command goes through `hud.build.docker`. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy so far (all cores, /proc/stat), in s."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def bare_containers(image: str, count: int, concurrency: int,
                          hold: float = 0.0, exec_once: bool = False) -> tuple[float, float]:
    """Seconds to start (`docker run -d`) and remove `count` bare containers, `concurrency`
    at a time, each kept `hold` seconds (the agent's time, when the curve has one); and
    the machine's CPU seconds per container. `exec_once`: one `docker exec -i C cat`
    round trip in each too (the floor of any harness that drives a container by exec,
    with a server in it that costs nothing)."""
    from hud.build import docker as hd

    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            done = await hd.acheck("run", "-d", "--network", "none", "--entrypoint", "sleep",
                                   image, "60", timeout=120, what="bare docker run")
            container = done.stdout.strip()
            if exec_once:
                echo = await hd.adocker("exec", "-i", container, "cat", input=b"hello\n",
                                        timeout=120)
                if not echo.ok or echo.stdout.strip() != "hello":
                    raise SystemExit(f"bare docker exec failed: {hd.failure(echo)}")
            if hold:
                await asyncio.sleep(hold)
            await hd.acheck("rm", "-f", container, timeout=120, what="bare docker rm")

    t0, c0 = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - t0, (cpu_seconds() - c0) / count


#: stand-ins for the daemon in `--python-floors`: each echoes one line and exits at the
#: end of its stdin, after importing what any daemon of its kind imports
PYTHON_FLOORS = {
    "python": "import sys\nsys.stdout.write(sys.stdin.readline()); sys.stdout.flush()\n"
              "sys.stdin.read()",
    "+asyncio": "import asyncio, json, logging, sys\n"
                "async def main():\n"
                "    loop = asyncio.get_running_loop()\n"
                "    reader = asyncio.StreamReader()\n"
                "    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),"
                " sys.stdin)\n"
                "    sys.stdout.write((await reader.readline()).decode()); sys.stdout.flush()\n"
                "    await reader.read()\n"
                "asyncio.run(main())",
}
PYTHON_FLOORS["+pydantic"] = "from pydantic import BaseModel\n" + PYTHON_FLOORS["+asyncio"]

#: run in the image: the stdlib modules that the hud modules a daemon of letter-count
#: loads import at module level (their own code, not pydantic's), space-separated
HUD_STDLIB = """
import ast, os, sys
os.environ.pop("HUD_CONNECT", None)
import hud.cli.serving, hud.serve.attached, hud.serve.daemon, hud.serve.upgrade
from hud.serve.loader import load_environment
load_environment(os.environ["HUD_ENV"])
wanted = set()
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if not name.startswith("hud") or not path.endswith(".py"):
        continue
    stack = list(ast.parse(open(path, encoding="utf-8").read()).body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import):
            wanted.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            wanted.add(node.module)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
print(" ".join(sorted(m for m in wanted if m.split(".")[0] in sys.stdlib_module_names
                      and m != "__future__")))
"""


async def add_hud_stdlib_floor(image: str) -> None:
    """Add the `+hud stdlib` stand-in to PYTHON_FLOORS: the asyncio loop after importing
    every stdlib module hud's daemon modules import (HUD_STDLIB, run in `image`), i.e.
    what a daemon with hud's code but without pydantic could not avoid loading."""
    from hud.build import docker as hd

    done = await hd.adocker("run", "--rm", "-i", "--network", "none", "--entrypoint", "python",
                            image, "-", input=HUD_STDLIB.encode(), timeout=120)
    modules = done.stdout.split() if done.ok else []
    if "asyncio" not in modules:
        raise SystemExit(f"listing hud's stdlib imports failed: {hd.failure(done)}")
    program = f"import {', '.join(modules)}\n" + PYTHON_FLOORS["+asyncio"]
    floors = {name: text for name, text in PYTHON_FLOORS.items() if name != "+pydantic"}
    PYTHON_FLOORS.clear()
    PYTHON_FLOORS.update(floors, **{"+hud stdlib": program,
                                    "+pydantic": "from pydantic import BaseModel\n" + program})


async def attached_containers(image: str, count: int, concurrency: int,
                              hold: float = 0.0, python: str | None = None
                              ) -> tuple[float, float]:
    """Seconds to run `count` containers the way the docker placement starts them
    (`docker run -i --rm`, --network none, no log driver) with `cat` in place of the
    daemon: one line echoed, each kept `hold` seconds, then stdin closed (the container
    ends and docker removes it); and the machine's CPU seconds per container. The floor
    of the placement's transport: docker alone, a server in the container that costs
    nothing. `python`: run that Python program in place of `cat` (PYTHON_FLOORS)."""
    from hud.build import docker as hd

    limit = asyncio.Semaphore(concurrency)
    command = ["--entrypoint", "cat", image] if python is None else \
        ["--entrypoint", "python", image, "-c", python]

    async def one() -> None:
        async with limit:
            proc = await hd.spawn("run", "-i", "--rm", "--network", "none", "--log-driver",
                                  "none", *command)
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"hello\n")
            await proc.stdin.drain()
            if await proc.stdout.readline() != b"hello\n":
                raise SystemExit("an attached bare docker run did not echo")
            if hold:
                await asyncio.sleep(hold)
            proc.stdin.close()
            await proc.communicate()

    t0, c0 = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - t0, (cpu_seconds() - c0) / count


def oracle(think: float) -> Any:
    """The oracle, after `think` seconds of pretend model time."""
    from hud.agents import OracleAgent

    agent = OracleAgent()
    if not think:
        return agent

    async def thinking(run: Any) -> Any:
        await asyncio.sleep(think)
        return await agent(run)

    return thinking


async def timed_job(tasks: Any, image: str, group: int, concurrency: int,
                    warm: int, think: float) -> tuple[float, float | None, float]:
    """Seconds for one oracle job in docker, its reward, and the machine's CPU seconds per
    rollout."""
    from hud.eval import DockerPlacement

    t0, c0 = time.perf_counter(), cpu_seconds()
    job = await tasks.run(oracle(think), group=group, runtime=DockerPlacement(image),
                          max_concurrent=concurrency, warm=warm)
    seconds = time.perf_counter() - t0
    if job.errors:
        raise SystemExit(f"the bench job failed: {[r.error for r in job.errors]}")
    return seconds, job.reward, (cpu_seconds() - c0) / (len(tasks) * group)


async def scaling_curve(tasks: Any, image: str, group: int, levels: list[int],
                        warm: int | None, think: float, repeat: int = 1
                        ) -> list[dict[str, Any]]:
    """At each concurrency, `repeat` rounds of: bare run + rm, bare + exec, run -i with
    `cat`, hud fresh, hud warm. Each ratio is taken within its round (÷ that round's bare)
    and the row holds the medians; `ranges` keeps each ratio's (min, max) over rounds."""
    n = len(tasks) * group
    rows = []
    for concurrency in levels:
        pool = warm if warm is not None else concurrency
        rounds = []
        for _ in range(repeat):
            bare, bare_cpu = await bare_containers(image, n, concurrency, hold=think)
            floor, floor_cpu = await bare_containers(image, n, concurrency, hold=think,
                                                     exec_once=True)
            attached, attached_cpu = await attached_containers(image, n, concurrency,
                                                               hold=think)
            cold, _, cold_cpu = await timed_job(tasks, image, group, concurrency, 0, think)
            warmed, _, warm_cpu = await timed_job(tasks, image, group, concurrency, pool,
                                                  think)
            rounds.append({"bare": n / bare * 60, "floor": n / floor * 60,
                           "attached": n / attached * 60, "cold": n / cold * 60,
                           "warmed": n / warmed * 60, "bare_cpu": bare_cpu,
                           "floor_cpu": floor_cpu, "attached_cpu": attached_cpu,
                           "cold_cpu": cold_cpu, "warm_cpu": warm_cpu,
                           **{f"{k} ratio": bare / seconds for k, seconds in (
                               ("floor", floor), ("attached", attached), ("cold", cold),
                               ("warmed", warmed))}})
        row: dict[str, Any] = {key: statistics.median(r[key] for r in rounds)
                               for key in rounds[0]}
        row["ranges"] = {key: (min(r[key] for r in rounds), max(r[key] for r in rounds))
                         for key in rounds[0] if key.endswith(" ratio")}
        row.update(concurrency=concurrency, warm=pool)
        rows.append(row)
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--group", type=int, default=16)
    parser.add_argument("--max-concurrent", type=int, default=4)
    parser.add_argument("--curve", default="1,2,4,8",
                        help="concurrencies of the scaling curve ('' to skip it)")
    parser.add_argument("--warm", type=int, default=None,
                        help="warm pool size of the curve [default: the concurrency]")
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds the curve's agent waits before answering [default: 0]")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of each curve cell (and floor); ratios are taken within a "
                             "round and the medians printed [default: 1]")
    parser.add_argument("--python-floors", action="store_true",
                        help="also time, at each concurrency of the curve, containers started "
                             "as the placement starts them with a Python stand-in for the "
                             "daemon: bare python, + asyncio, + the stdlib hud imports, + pydantic "
                             "(PYTHON_FLOORS)")
    opts = parser.parse_args()
    levels = [int(c) for c in opts.curve.split(",") if c.strip()]

    from hud.agents import OracleAgent
    from hud.build.env_image import build_env
    from hud.build.scaffold import scaffold
    from hud.eval import DockerPlacement, Taskset

    work = Path(tempfile.mkdtemp(prefix="hud-bench-eval-"))
    os.environ.setdefault("HUD_RUNS_DIR", str(work / "runs"))  # the traces go with `work`
    folder, _ = scaffold(work / "letter-count", "blank")
    tag = "hud-bench-letter-count"
    build_env(folder, tag=tag)
    tasks = Taskset.from_source(folder).filter(["count_letter*"])
    n = len(tasks) * opts.group
    rows = []
    try:
        t0 = time.perf_counter()
        job = await tasks.run(OracleAgent(), group=opts.group, runtime="local")
        rows.append(("local (in-process)", time.perf_counter() - t0, job.reward))
        # one untimed docker rollout first: what a process pays once (the host's imports,
        # the engine's capability check) is not what a thousand rollouts cost each
        await tasks.run(OracleAgent(), group=1, runtime=DockerPlacement(tag))
        t0 = time.perf_counter()
        job = await tasks.run(OracleAgent(), group=opts.group, runtime=DockerPlacement(tag),
                              max_concurrent=opts.max_concurrent)
        rows.append((f"docker (max_concurrent={opts.max_concurrent})", time.perf_counter() - t0,
                     job.reward))
        bare, _ = await bare_containers(tag, n, opts.max_concurrent)
        curve = await scaling_curve(tasks, tag, opts.group, levels, opts.warm, opts.think,
                                    max(1, opts.repeat))
        floors = []
        if opts.python_floors:
            await add_hud_stdlib_floor(tag)
            floors = await python_floors(tag, n, levels, opts.think, max(1, opts.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{n} rollouts of letter-count with the oracle (group {opts.group})\n")
    print(f"{'placement':<34}{'seconds':>9}{'rollouts/min':>14}{'reward':>8}")
    for name, seconds, reward in rows:
        print(f"{name:<34}{seconds:>9.2f}{n / seconds * 60:>14.0f}{reward:>8.2f}")
    print(f"{'bare docker run + rm (baseline)':<34}{bare:>9.2f}{n / bare * 60:>14.0f}{'':>8}")
    print(f"\ndocker placement / bare containers: {rows[1][1] / bare:.2f}x the time")
    if not curve:
        return
    think = f", the agent thinking {opts.think:g}s (a bare container is kept as long)" \
        if opts.think else ""
    print(f"\nscaling curve: docker rollouts/min, {n} per cell{think}; ratio = ÷ bare docker "
          f"run -d + rm -f at the same concurrency; cpu = the machine's CPU ms per rollout\n")
    print(f"{'concurrency':>11}{'bare/min':>10}{'cpu':>6}{'+exec':>7}{'ratio':>7}{'cpu':>6}"
          f"{'run -i':>7}{'ratio':>7}{'cpu':>6}"
          f"{'warm 0/min':>12}{'ratio':>7}{'cpu':>6}"
          f"{'warm N':>8}{'/min':>7}{'ratio':>7}{'cpu':>6}")
    for row in curve:
        print(f"{row['concurrency']:>11.0f}{row['bare']:>10.0f}{row['bare_cpu'] * 1000:>6.0f}"
              f"{row['floor']:>7.0f}{row['floor ratio']:>7.2f}"
              f"{row['floor_cpu'] * 1000:>6.0f}"
              f"{row['attached']:>7.0f}{row['attached ratio']:>7.2f}"
              f"{row['attached_cpu'] * 1000:>6.0f}"
              f"{row['cold']:>12.0f}{row['cold ratio']:>7.2f}"
              f"{row['cold_cpu'] * 1000:>6.0f}{row['warm']:>8.0f}{row['warmed']:>7.0f}"
              f"{row['warmed ratio']:>7.2f}{row['warm_cpu'] * 1000:>6.0f}")
    if opts.repeat > 1:
        print(f"\nmedians of {opts.repeat} rounds, each ratio taken within its round; "
              f"ratio ranges (min-max) over the rounds:\n")
        print(f"{'concurrency':>11}{'+exec':>12}{'run -i':>12}{'warm 0':>12}{'warm N':>12}")
        for row in curve:
            spans = [row["ranges"][k + " ratio"] for k in ("floor", "attached", "cold", "warmed")]
            print(f"{row['concurrency']:>11.0f}"
                  + "".join(f"{f'{low:.2f}-{high:.2f}':>12}" for low, high in spans))
    print("\n+exec: bare containers with one `docker exec -i C cat` round trip each, the "
          "floor of any exec-driven harness\nrun -i: containers started as the placement "
          "starts them, `cat` for the daemon: the floor of the placement's transport")
    if floors:
        print_floors(floors)


async def python_floors(image: str, count: int, levels: list[int],
                        think: float, repeat: int = 1) -> list[dict[str, float]]:
    """At each concurrency, `repeat` rounds of: bare run + rm, then each PYTHON_FLOORS
    stand-in started as the placement starts its containers; the medians of rollouts/min,
    of CPU per container and of each ratio to its round's bare."""
    rows = []
    for concurrency in levels:
        rounds = []
        for _ in range(repeat):
            bare, bare_cpu = await bare_containers(image, count, concurrency, hold=think)
            one = {"bare": count / bare * 60, "bare_cpu": bare_cpu}
            for name, program in PYTHON_FLOORS.items():
                seconds, cpu = await attached_containers(image, count, concurrency,
                                                         hold=think, python=program)
                one[name] = count / seconds * 60
                one[name + " cpu"] = cpu
                one[name + " ratio"] = bare / seconds
            rounds.append(one)
        row = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        row["concurrency"] = concurrency
        rows.append(row)
    return rows


def print_floors(rows: list[dict[str, float]]) -> None:
    print("\nfloors of a Python daemon: containers started as the placement starts them, a "
          "Python program echoing one line for the daemon; ratio = ÷ bare run -d + rm -f, "
          "cpu = the machine's CPU ms per container\n")
    header = f"{'concurrency':>11}{'bare/min':>10}{'cpu':>6}"
    for name in PYTHON_FLOORS:
        header += f"{name:>13}{'ratio':>7}{'cpu':>6}"
    print(header)
    for row in rows:
        line = f"{row['concurrency']:>11.0f}{row['bare']:>10.0f}{row['bare_cpu'] * 1000:>6.0f}"
        for name in PYTHON_FLOORS:
            line += (f"{row[name]:>13.0f}{row[name + ' ratio']:>7.2f}"
                     f"{row[name + ' cpu'] * 1000:>6.0f}")
        print(line)
    print("\npython: the interpreter alone; +asyncio: an asyncio stdio loop, as any asyncio "
          "daemon has; +hud stdlib: that after importing every stdlib module hud's daemon "
          "modules import (a pydantic-free daemon's floor); +pydantic: that and `from "
          "pydantic import BaseModel`")

if __name__ == "__main__":
    asyncio.run(main())
