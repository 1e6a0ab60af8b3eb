"""Benchmark what reward integrity costs, on the coding template in a real container.

Every number is a ratio against `docker exec C true` measured in the same run:

    hud task start fix_bug   sweep the agent's processes, clear its scratch dirs and
                             home, reset the workspace as the agent, then setup
    hud task grade fix_bug   sweep again, then the hidden cases in the grading sandbox
                             (copy-in without following links, python -I as hud-grader,
                             limits, leftovers removed), compared in the daemon
    blank template start     the same daemon path with no workspace (for contrast)

Usage: python bench/bench_integrity.py [--rounds N]   (needs Docker; builds what it needs)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from hud.build.env_image import build_env
from hud.build.scaffold import scaffold

READY_TIMEOUT = 60.0


def sh(*argv: str, timeout: float = 300) -> str:
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}{done.stdout}")
    return done.stdout


def timed(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `fn` in milliseconds."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def start_container(tag: str) -> str:
    name = f"hud-bench-int-{uuid.uuid4().hex[:6]}"
    sh("docker", "run", "-d", "--name", name, "--network", "none", tag)
    deadline = time.monotonic() + READY_TIMEOUT
    while subprocess.run(["docker", "exec", name, "hud", "health"], capture_output=True,
                         check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not become healthy")
        time.sleep(0.05)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hud-bench-int-"))
    tags, names = [], []
    try:
        for template in ("coding", "blank"):
            folder, _ = scaffold(work / template, template)
            tag = f"hud-bench-int-{template}-{uuid.uuid4().hex[:6]}"
            build_env(folder, tag=tag)
            tags.append(tag)
        coding, blank = (start_container(tag) for tag in tags)
        names += [coding, blank]
        base = timed(lambda: sh("docker", "exec", coding, "true"), args.rounds)

        def start_grade(name: str, task: str, answer: str) -> tuple[float, float]:
            starts, grades = [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                sh("docker", "exec", name, "hud", "task", "start", task)
                t1 = time.perf_counter()
                sh("docker", "exec", name, "hud", "task", "grade", task, "--answer", answer)
                starts.append((t1 - t0) * 1000)
                grades.append((time.perf_counter() - t1) * 1000)
            return statistics.median(starts), statistics.median(grades)

        c_start, c_grade = start_grade(coding, "fix_bug", "nothing")
        b_start, b_grade = start_grade(blank, "count_letter", "3")
        print(f"docker exec C true                 {base:8.1f} ms  (1.00)")
        print(f"coding: hud task start fix_bug     {c_start:8.1f} ms  ({c_start / base:.2f})")
        print(f"coding: hud task grade (sandboxed) {c_grade:8.1f} ms  ({c_grade / base:.2f})")
        print(f"blank:  hud task start             {b_start:8.1f} ms  ({b_start / base:.2f})")
        print(f"blank:  hud task grade (exact)     {b_grade:8.1f} ms  ({b_grade / base:.2f})")
    finally:
        if names:
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
        if tags:
            subprocess.run(["docker", "rmi", "-f", *tags], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
