"""Benchmark the carried runtime: `docker exec C hud task start` on roots that are not Debian 12.

The blank template (count_letter) is built three ways and one container of each runs:

    standard        FROM hud-base (Debian 12, the image's python3 runs hud)
    debian11-bare   --base-image hud-test-rootfs:bullseye (Debian 11 minbase: glibc 2.31,
                    no Python): the portable runtime carried in
    debian11-py39   --base-image hud-test-rootfs:bullseye-python3 (+ Debian 11's python3 3.9,
                    PYTHONHOME and LD_LIBRARY_PATH set): carried too

For each, `docker exec C hud task start count_letter` and `... grade` are reported as a
ratio to `docker exec C true` on the same container, every measure interleaved with the
others round by round (so all see the same load), plus the ratio of each carried
image's start to the standard one's. Image sizes close the table. Asserts nothing.

Usage: python bench/bench_any_base.py [--rounds N]
(needs Docker; debootstraps the Debian 11 root once per machine, as root)
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hud.build.docker import image_size_mb
from hud.build.env_image import build_env
from hud.build.scaffold import scaffold
from tests.build.foreign_roots import bullseye_python_root, bullseye_root

READY_TIMEOUT = 60.0


def sh(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}{done.stdout}")
    return done


def ms(*argv: str) -> tuple[float, str]:
    """Wall time of one command in milliseconds, and its stdout."""
    started = time.perf_counter()
    out = sh(*argv).stdout.strip()
    return (time.perf_counter() - started) * 1000, out


def wait_healthy(container: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while subprocess.run(["docker", "exec", container, "hud", "health"], check=False,
                         capture_output=True, timeout=30).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"{container} never became healthy")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    roots = {"standard": None, "debian11-bare": bullseye_root(),
             "debian11-py39": bullseye_python_root()}
    work = Path(tempfile.mkdtemp(prefix="hud-bench-anybase-"))
    suffix = uuid.uuid4().hex[:6]
    tags = {name: f"hud-bench-anybase-{name}-{suffix}" for name in roots}
    containers: dict[str, str] = {}
    trues: dict[str, list[float]] = {name: [] for name in roots}
    starts: dict[str, list[float]] = {name: [] for name in roots}
    grades: dict[str, list[float]] = {name: [] for name in roots}
    try:
        for name, root in roots.items():
            folder, _ = scaffold(work / name, "blank")
            print(f"  building {tags[name]} (base image: {root or 'the default'})")
            build_env(folder, tag=tags[name], base_image=root)
            containers[name] = sh("docker", "run", "-d", "--name",
                                  f"{tags[name]}-run", tags[name]).stdout.strip()
        for container in containers.values():
            wait_healthy(container)
        for _ in range(args.rounds):
            for name, container in containers.items():
                trues[name].append(ms("docker", "exec", container, "true")[0])
                starts[name].append(ms("docker", "exec", container, "hud", "task", "start",
                                       "count_letter")[0])
                took, score = ms("docker", "exec", container, "hud", "task", "grade",
                                 "count_letter", "--answer", "3")
                assert score == "1.0", f"{name}: graded {score}"
                grades[name].append(took)
    finally:
        for container in containers.values():
            subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True,
                           timeout=60)
        sizes = {name: image_size_mb(tag) for name, tag in tags.items()}
        subprocess.run(["docker", "rmi", "-f", *tags.values()], check=False,
                       capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)

    median = statistics.median
    standard_start = median(starts["standard"])
    print()
    print(f"{'image':<16}{'exec true':>11}{'task start':>12}{'ratio':>8}{'grade':>9}"
          f"{'ratio':>8}{'start vs std':>14}{'MB':>8}")
    for name in roots:
        true, start, grade = median(trues[name]), median(starts[name]), median(grades[name])
        print(f"{name:<16}{true:>9.0f}ms{start:>10.0f}ms{start / true:>7.2f}x{grade:>7.0f}ms"
              f"{grade / true:>7.2f}x{start / standard_start:>13.2f}x{sizes[name]:>8.0f}")
    print(f"\n(medians of {args.rounds} interleaved rounds; ratio = hud command ÷ "
          f"`docker exec C true` on the same container)")


if __name__ == "__main__":
    main()
