"""Core benchmark: the in-container CLI and the control protocol's throughput.

    python bench/bench_core.py [--runs 20] [--pairs 2000]

(a) `hud task start` and `hud task grade` as separate processes against a running
    daemon, as a ratio to `python -c pass` measured in the same run (the floor any
    Python CLI pays);
(b) start+grade pairs per second over one open connection.
Prints a table; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = Path(__file__).resolve().parent.parent / "tests" / "envs" / "letters.py"


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def wait_listening(path: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"daemon did not listen on {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=2000)
    opts = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hud-bench-"))
    sock = tmp / "c.sock"
    env = {**os.environ, "HUD_SOCKET": str(sock), "HUD_LOG": str(tmp / "log")}
    hud = shutil.which("hud") or sys.exit("hud is not on PATH (pip install -e .)")
    daemon = subprocess.Popen([hud, "serve", str(ENV), "--socket", str(sock), "--log-file",
                               str(tmp / "log")], stderr=subprocess.DEVNULL)
    try:
        wait_listening(sock, time.monotonic() + 20)
        baseline = timed([sys.executable, "-c", "pass"], env, opts.runs)
        starts, grades = [], []
        for _ in range(opts.runs):
            starts += timed([hud, "task", "start", "count_letter"], env, 1)
            grades += timed([hud, "task", "grade", "count_letter", "--answer", "3"], env, 1)

        from hud.clients.control import ControlClient

        with ControlClient.connect(sock) as client:
            t0 = time.perf_counter()
            for _ in range(opts.pairs):
                client.call("tasks.start", {"id": "count_letter"})
                client.call("tasks.grade", {"answer": "3"})
            elapsed = time.perf_counter() - t0
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(baseline)
    print(f"{'measure':<44}{'median ms':>10}{'ratio':>8}")
    print(f"{'python -c pass (baseline)':<44}{base * 1000:>10.1f}{1.0:>8.2f}")
    for name, values in (("hud task start (separate process)", starts),
                         ("hud task grade (separate process)", grades)):
        med = statistics.median(values)
        print(f"{name:<44}{med * 1000:>10.1f}{med / base:>8.2f}")
    print(f"\nstart+grade pairs over one connection: {opts.pairs / elapsed:,.0f} pairs/s "
          f"({elapsed / opts.pairs * 1e6:.0f} µs per pair)")


if __name__ == "__main__":
    main()
