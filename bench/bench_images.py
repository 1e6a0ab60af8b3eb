"""Benchmark the images: container start, task start/grade over docker exec, rebuilds, sizes.

Every number is reported next to a baseline measured in the same run, as a ratio:

    start → served manifest   vs  `docker run --rm IMAGE true`
    exec hud task start/grade vs  `docker exec run1 true`
    rebuild after an edit     vs  a rebuild with nothing changed
    layer sizes in MB
    wheel bytes per layer (from `docker save`; 0 everywhere above the root image: the
    wheelhouse is installed in throwaway build stages)

Usage: python bench/bench_images.py [--rounds N] [--requirements]
(needs Docker; builds what it needs; --requirements also builds the robot template, whose
requirements.txt installs ~50 MB of wheels, to show that none of them stays in the image)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hud.build.docker import image_size_mb, inspect_image
from hud.build.env_image import build_env
from hud.build.layers import LAYERS, PARENT_LABEL, ensure_layers, layer_tag
from hud.build.rootfs import rootfs_tag
from hud.build.scaffold import scaffold
from tests.build.image_layers import image_layers, layer_count

READY_TIMEOUT = 60.0


def sh(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}{done.stdout}")
    return done


def timed(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of `fn` over `rounds` runs, in milliseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def start_to_manifest(image: str) -> None:
    name = f"hud-bench-{uuid.uuid4().hex[:8]}"
    try:
        sh("docker", "run", "-d", "--name", name, image)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            done = subprocess.run(["docker", "exec", name, "hud", "manifest"],
                                  check=False, capture_output=True, text=True, timeout=30)
            if done.returncode == 0 and '"tasks"' in done.stdout:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{image}: no manifest within {READY_TIMEOUT}s: {done.stderr}")
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True, timeout=60)


def wheel_table(image: str, parent: str) -> list[str]:
    """One line per layer `image` adds over `parent`: size, wheel bytes, the command."""
    lines = [f"{image}  ({image_size_mb(image):.0f} MB; layers over {parent[:19]})"]
    for layer in image_layers(image)[layer_count(parent):]:
        command = " ".join(layer.created_by.replace("/bin/bash -o pipefail -c", "").split())
        lines.append(f"  {layer.size / 1e6:>8.2f} MB {layer.wheel_bytes:>10} B   {command[:64]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requirements", action="store_true",
                        help="also build the robot template (a requirements.txt)")
    args = parser.parse_args()
    rounds = args.rounds

    ensure_layers("base", notify=lambda m: print(f"  {m}"))
    work = Path(tempfile.mkdtemp(prefix="hud-bench-"))
    tag = f"hud-bench-letters-{uuid.uuid4().hex[:6]}"
    run1 = f"hud-bench-run1-{uuid.uuid4().hex[:6]}"
    robot = f"hud-bench-robot-{uuid.uuid4().hex[:6]}"
    rows: list[tuple[str, float, str, float]] = []
    wheels: list[str] = []
    try:
        env_dir, _ = scaffold(work / "letters", "blank")
        build_env(env_dir, tag=tag)
        wheels += wheel_table(tag, layer_tag("base"))
        if args.requirements:
            robot_dir, _ = scaffold(work / "robot", "robot")
            built = build_env(robot_dir, tag=robot)
            wheels += wheel_table(robot, layer_tag(built.layer))

        # 1. container start → a served manifest, vs a bare `docker run --rm IMAGE true`.
        bare = timed(lambda: sh("docker", "run", "--rm", tag, "true"), rounds)
        served = timed(lambda: start_to_manifest(tag), rounds)
        rows.append(("start → served manifest", served, "docker run --rm IMAGE true", bare))

        # 2. hud task start / grade over docker exec, vs `docker exec run1 true`.
        sh("docker", "run", "-d", "--name", run1, tag)
        deadline = time.monotonic() + READY_TIMEOUT
        while subprocess.run(["docker", "exec", run1, "hud", "health"],
                             check=False, capture_output=True, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the bench container never became healthy")
        exec_true = timed(lambda: sh("docker", "exec", run1, "true"), rounds * 4)
        starts, grades = [], []
        for _ in range(rounds * 4):
            t0 = time.perf_counter()
            sh("docker", "exec", run1, "hud", "task", "start", "count_letter")
            t1 = time.perf_counter()
            out = sh("docker", "exec", run1, "hud", "task", "grade", "count_letter",
                     "--answer", "3").stdout.strip()
            t2 = time.perf_counter()
            assert out == "1.0", out
            starts.append((t1 - t0) * 1000)
            grades.append((t2 - t1) * 1000)
        rows.append(("docker exec hud task start", statistics.median(starts),
                     "docker exec run1 true", exec_true))
        rows.append(("docker exec hud task grade", statistics.median(grades),
                     "docker exec run1 true", exec_true))

        # 3. rebuild after editing one task file, vs a rebuild with nothing changed.
        env_py = env_dir / "env.py"
        original = env_py.read_text()
        unchanged = timed(lambda: build_env(env_dir, tag=tag), rounds)
        counter = iter(range(10_000))

        def edit_and_build() -> None:
            env_py.write_text(original.replace('"blueberry"', f'"berry{next(counter)}"'))
            build_env(env_dir, tag=tag)

        edited = timed(edit_and_build, rounds)
        rows.append(("rebuild after editing env.py", edited, "rebuild, nothing changed",
                     unchanged))
    finally:
        subprocess.run(["docker", "rm", "-f", run1], check=False, capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag, robot], check=False, capture_output=True,
                       timeout=120)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'measure':<32}{'ms':>9}   {'baseline':<28}{'ms':>9}{'ratio':>8}")
    for label, value, base_label, base in rows:
        print(f"{label:<32}{value:>9.0f}   {base_label:<28}{base:>9.0f}{value / base:>7.1f}x")

    print()
    print(f"{'image':<28}{'MB':>8}   (sizes include parent layers)")
    previous = None
    for ref in [rootfs_tag(), *(layer_tag(n) for n in LAYERS)]:
        if inspect_image(ref) is None:
            print(f"{ref:<28}{'-':>8}   not built (hud images build all)")
            continue
        size = image_size_mb(ref)
        extra = f"   +{size - previous:.0f} MB over the layer below" if previous else ""
        print(f"{ref:<28}{size:>8.0f}{extra}")
        previous = size

    print()
    print("wheel bytes per layer (docker save), each image over the one it is built on:")
    for ref in [layer_tag(n) for n in LAYERS]:
        info = inspect_image(ref)
        if info is not None:  # over the very image it was built on (the label holds its id)
            print("\n".join(wheel_table(ref, info["Config"]["Labels"][PARENT_LABEL])))
    print("\n".join(wheels))


if __name__ == "__main__":
    main()
