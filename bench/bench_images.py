"""Benchmark the images: container start, task start/grade over docker exec, rebuilds, sizes.

Every number is reported next to a baseline measured in the same run, as a ratio:

    start → served manifest   vs  `docker run --rm IMAGE true`: `docker run -d`, one
                                  plain `docker exec -i C hud connect --wait` whose `hello`
                                  is written at once, the answer, `docker rm -f`; its
                                  floor (the same docker commands, `cat` for `hud
                                  connect`, no daemon: what docker alone costs); also the
                                  docker placement's own path: `DockerPlacement.open()`
                                  to the manifest (one `docker run -i` whose daemon
                                  serves the connection on its stdio, control lines until
                                  a tunnel is needed; no exec), then + `Lease.close()`
                                  + the container's end and removal (against a
                                  --network none baseline, as the placement runs); two
                                  floors: `docker run -d` alone,
                                  and it plus the daemon's own start → answered hello
                                  (timed inside a running container, no docker on the
                                  path); and the way before (an exec + hello retried
                                  every 100 ms)
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
import asyncio
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
from hud.eval import DockerPlacement
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


HELLO = b'{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {}}\n'


def start_to_manifest(image: str) -> None:
    """`docker run -d`, then one `hud connect --wait` exec answering the hello written at
    once (the docker placement's path), then `docker rm -f`."""
    container = sh("docker", "run", "-d", image).stdout.strip()
    try:
        connect = subprocess.Popen(["docker", "exec", "-i", container, "hud", "connect",
                                    "--wait", str(READY_TIMEOUT)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = connect.communicate(HELLO, timeout=READY_TIMEOUT + 30)
        finally:
            connect.kill()
        if b'"tasks"' not in out:
            raise SystemExit(f"{image}: no manifest: {err.decode()}{out.decode()}")
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True,
                       timeout=60)


def start_to_manifest_retried(image: str) -> None:
    """The docker placement before `hud connect --wait`: `docker run -d`, then a `docker
    exec -i C hud connect` with a hello, retried every 100 ms until one is answered, and a
    second hello (the rollout's); then `docker rm -f`."""
    container = sh("docker", "run", "-d", image).stdout.strip()
    twice = HELLO + HELLO.replace(b'"id": 1', b'"id": 2')
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            done = subprocess.run(["docker", "exec", "-i", container, "hud", "connect"],
                                  input=twice, check=False, capture_output=True, timeout=30)
            if done.stdout.count(b'"tasks"') == 2:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"{image}: no manifest within {READY_TIMEOUT}s: "
                                 f"{done.stderr.decode()}")
            time.sleep(0.1)
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True,
                       timeout=60)


def start_exec_floor(image: str) -> None:
    """What docker alone costs for `start_to_manifest`: the same `docker run -d`, one
    `docker exec -i` with the hello written at once, `docker rm -f`, but no daemon to
    wait for and `cat` instead of `hud connect` (the floor of that row)."""
    container = sh("docker", "run", "-d", image, "sleep", "600").stdout.strip()
    try:
        done = subprocess.run(["docker", "exec", "-i", container, "cat"], input=HELLO,
                              check=False, capture_output=True, timeout=READY_TIMEOUT)
        if done.stdout != HELLO:
            raise SystemExit(f"{image}: `cat` in a docker exec failed: {done.stderr.decode()}")
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True,
                       timeout=60)


def attached_floor(image: str) -> None:
    """What docker alone costs for the placement's path: `docker run -i --rm` as the
    placement starts it (--network none, no log driver) with `cat` for the daemon, the
    hello written at once and echoed; its end (stdin closed) and removal included."""
    done = subprocess.run(["docker", "run", "-i", "--rm", "--network", "none", "--log-driver",
                           "none", "--entrypoint", "cat", image], input=HELLO, check=False,
                          capture_output=True, timeout=READY_TIMEOUT)
    if done.stdout != HELLO:
        raise SystemExit(f"{image}: `cat` in an attached docker run failed: "
                         f"{done.stderr.decode()}")


def placement_open_close(image: str) -> tuple[float, float]:
    """`DockerPlacement.open()` (a ready lease, its hello answered), then `Lease.close()`
    and the container's removal: the ms to the manifest, and to the end."""

    async def once() -> tuple[float, float]:
        placement = DockerPlacement(image)
        started = time.perf_counter()
        lease = await placement.open("bench", uuid.uuid4().hex[:12])
        opened = time.perf_counter()
        assert lease.hello is not None and "tasks" in lease.hello
        await lease.close()
        await placement.shutdown()  # the container's removal, backgrounded by close()
        return (opened - started) * 1000, (time.perf_counter() - started) * 1000

    return asyncio.run(once())


#: run inside a container: start `hud serve`, say hello as soon as it listens, print the
#: ms from the daemon's start to the answer
DAEMON_PROBE = """
import os, socket, subprocess, time
started = time.perf_counter()
daemon = subprocess.Popen(["hud", "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while True:
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect("/run/hud/control.sock")
        break
    except OSError:
        sock.close()
        time.sleep(0.001)
sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {}}\\n')
answer = b""
while b"\\n" not in answer:
    answer += sock.recv(65536)
print((time.perf_counter() - started) * 1000)
daemon.kill()
"""


def daemon_start(image: str, rounds: int) -> float:
    """Median ms from `hud serve`'s start to its answered hello, inside a running container
    of `image` (no docker on the path: what the daemon itself takes)."""
    container = sh("docker", "run", "-d", "--network", "none", "--entrypoint", "sleep", image,
                   "600").stdout.strip()
    try:
        samples = []
        for _ in range(rounds):
            sh("docker", "exec", container, "rm", "-f", "/run/hud/control.sock")
            out = sh("docker", "exec", container, "/opt/hud/venv/bin/python", "-c",
                     DAEMON_PROBE).stdout
            samples.append(float(out.strip()))
        return statistics.median(samples)
    finally:
        subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True,
                       timeout=60)


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
    parser.add_argument("--only-startup", action="store_true",
                        help="only the start → manifest and docker exec rows")
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

        # 1. container start → a served manifest, vs a bare `docker run --rm IMAGE true`
        # (interleaved, so that both see the same load on a shared machine).
        bare, served, floor, bare_none, placed, retried, run_d, run_i = \
            [], [], [], [], [], [], [], []
        placement_open_close(tag)  # the first open learns what the engine grants
        for _ in range(rounds):
            bare.append(timed(lambda: sh("docker", "run", "--rm", tag, "true"), 1))
            served.append(timed(lambda: start_to_manifest(tag), 1))
            floor.append(timed(lambda: start_exec_floor(tag), 1))
            bare_none.append(timed(lambda: sh("docker", "run", "--rm", "--network", "none",
                                              tag, "true"), 1))
            placed.append(placement_open_close(tag))
            retried.append(timed(lambda: start_to_manifest_retried(tag), 1))
            run_i.append(timed(lambda: attached_floor(tag), 1))
            started = time.perf_counter()
            container = sh("docker", "run", "-d", "--network", "none", "--entrypoint", "sleep",
                           tag, "60").stdout.strip()
            run_d.append((time.perf_counter() - started) * 1000)
            sh("docker", "rm", "-f", container)
        median = statistics.median
        daemon_ms = daemon_start(tag, rounds)
        rows.append(("start → manifest (placement)", median(p[0] for p in placed),
                     "docker run --rm IMAGE true", median(bare)))
        rows.append(("  the same", median(p[0] for p in placed),
                     "  same, --network none", median(bare_none)))
        rows.append(("  + close + removal", median(p[1] for p in placed),
                     "  same, --network none", median(bare_none)))
        rows.append(("  floor: `docker run -i` + `cat`, no daemon", median(run_i),
                     "  same, --network none", median(bare_none)))
        rows.append(("  floor: run -i + daemon start", median(run_i) + daemon_ms,
                     "  same, --network none", median(bare_none)))
        rows.append(("  run -d, exec hello, rm -f", median(served),
                     "docker run --rm IMAGE true", median(bare)))
        rows.append(("  floor: exec `cat`, no daemon", median(floor),
                     "docker run --rm IMAGE true", median(bare)))
        rows.append(("  floor: `docker run -d` alone", median(run_d),
                     "docker run --rm IMAGE true", median(bare)))
        rows.append(("  floor: run -d + daemon start", median(run_d) + daemon_ms,
                     "docker run --rm IMAGE true", median(bare)))
        rows.append(("  before: exec retried /100ms", median(retried),
                     "docker run --rm IMAGE true", median(bare)))

        # 2. hud task start / grade over docker exec, vs `docker exec run1 true`.
        sh("docker", "run", "-d", "--name", run1, tag)
        deadline = time.monotonic() + READY_TIMEOUT
        while subprocess.run(["docker", "exec", run1, "hud", "health"],
                             check=False, capture_output=True, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the bench container never became healthy")
        trues, starts, grades = [], [], []
        for _ in range(rounds * 4):  # interleaved with its baseline, like row 1
            trues.append(timed(lambda: sh("docker", "exec", run1, "true"), 1))
            t0 = time.perf_counter()
            sh("docker", "exec", run1, "hud", "task", "start", "count_letter")
            t1 = time.perf_counter()
            out = sh("docker", "exec", run1, "hud", "task", "grade", "count_letter",
                     "--answer", "3").stdout.strip()
            t2 = time.perf_counter()
            assert out == "1.0", out
            starts.append((t1 - t0) * 1000)
            grades.append((t2 - t1) * 1000)
        exec_true = median(trues)
        rows.append(("docker exec hud task start", median(starts), "docker exec run1 true",
                     exec_true))
        rows.append(("docker exec hud task grade", median(grades), "docker exec run1 true",
                     exec_true))
        if not args.only_startup:
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

    _report(rows, wheels, tables=not args.only_startup)


def _report(rows: list[tuple[str, float, str, float]], wheels: list[str],
            tables: bool = True) -> None:
    print()
    print(f"{'measure':<32}{'ms':>9}   {'baseline':<28}{'ms':>9}{'ratio':>8}")
    for label, value, base_label, base in rows:
        print(f"{label:<32}{value:>9.0f}   {base_label:<28}{base:>9.0f}{value / base:>7.2f}x")
    if not tables:
        return
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
