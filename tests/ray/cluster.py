"""A real Ray cluster for the tests: nodes in a private network namespace, token auth on.

Every node is a `ray start --block` process run with `ip netns exec NS`, in a network
namespace of its own with only `lo` up, so every Ray server listens on that loopback and
nothing on the host's interfaces; the drivers run there too (`Cluster.drive`). Each node
has its own ports, temp dir and slots (`hud_slots`); a node can get its own Docker engine
(DOCKER_HOST), a second `dockerd` with its own data root, so that shipping images to a
node that lacks one is real. Nodes are stopped by the pid of their `ray start --block`
(SIGTERM): never `ray stop`, which ends every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HEAD_PORT = 6390
START_TIMEOUT = 90.0


def _node_ports(n: int) -> list[str]:
    """The flags that give node `n` its own ports (all in the namespace's loopback)."""
    base = 21000 + 200 * n
    return [f"--node-manager-port={base}", f"--object-manager-port={base + 1}",
            f"--min-worker-port={base + 10}", f"--max-worker-port={base + 99}",
            f"--dashboard-agent-listen-port={base + 2}",
            f"--dashboard-agent-grpc-port={base + 3}",
            f"--runtime-env-agent-port={base + 4}", f"--metrics-export-port={base + 5}"]


def _descendants(pid: int) -> list[int]:
    """The pids of `pid`'s descendants, from /proc (children before their children)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def crash_node(pid: int) -> None:
    """Lose a Ray node as a crash would: SIGKILL its `ray start` (pid, one we started)
    and every process under it (raylet, workers and the docker clients they run), all
    at once, sparing only the slots' reapers (hud.eval.ray.reaper), which outlive a
    crashed slot by design. Nothing is stopped by name: only this tree of pids."""
    pids = [pid, *_descendants(pid)]
    for each in pids:
        try:
            cmdline = Path(f"/proc/{each}/cmdline").read_bytes()
        except OSError:
            continue
        if b"hud.eval.ray.reaper" not in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGKILL)


@dataclass
class Engine:
    """A second Docker engine: its own dockerd, data root and socket, in a network
    namespace of its own (`unshare -n`, which keeps the host's cgroup mounts) with no
    bridge. The namespace matters: a dockerd started with `--bridge=none` deletes the
    `docker0` interface of the namespace it runs in."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def start(self) -> None:
        self.root.mkdir(parents=True)
        log = open(self.root / "dockerd.log", "wb")  # noqa: SIM115 - the daemon's, for life
        self.proc = subprocess.Popen(
            ["unshare", "-n", "--", "dockerd", f"--data-root={self.root}/data",
             f"--exec-root={self.root}/exec",
             f"--pidfile={self.root}/dockerd.pid", f"-H={self.host}", "--bridge=none",
             "--iptables=false", "--ip6tables=false", "--ip-masq=false",
             f"--containerd-namespace=hud-test-{self.root.name}",
             f"--containerd-plugins-namespace=hud-test-{self.root.name}-plugins"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while self.docker("info").returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"the test's second dockerd did not start: "
                                     f"{(self.root / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.2)  # poll interval; readiness is `docker info` answering

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this engine."""
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                              check=False, env={**os.environ, "DOCKER_HOST": self.host})

    def stop(self) -> None:
        if self.proc is not None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.parent.rmdir()  # only when no other session's engine is there


@dataclass
class Cluster:
    """Ray nodes in network namespace `ns`, and a way to run drivers there."""

    ns: str
    tmp: Path
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    nodes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{HEAD_PORT}"

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                # a crashed node is declared dead in about 2 s instead of 15-30 s
                "RAY_health_check_initial_delay_ms": "1000", "RAY_health_check_period_ms": "500",
                "RAY_health_check_timeout_ms": "500", "RAY_health_check_failure_threshold": "3",
                "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(self.tmp),
                "PYTHONPATH": str(ROOT), **extra}

    def create(self) -> None:
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"],
                       check=True)

    def start_node(self, n: int, slots: int, docker_host: str | None = None) -> int:
        """Start node `n` (0 is the head) with `slots` hud_slots; wait until it is up;
        return the pid of its `ray start --block`."""
        where = (["--head", f"--port={HEAD_PORT}", "--include-dashboard=false"] if n == 0
                 else [f"--address={self.address}"])
        argv = ["ip", "netns", "exec", self.ns, str(VENV_BIN / "ray"), "start", "--block",
                *where, "--node-ip-address=127.0.0.1", *_node_ports(n),
                "--disable-usage-stats", "--num-cpus=1",
                f"--resources={json.dumps({'hud_slots': slots})}",
                f"--object-store-memory={256 << 20}", f"--temp-dir={self.tmp}/n{n}"]
        env = self.env(**({"DOCKER_HOST": docker_host} if docker_host else {}))
        log = open(self.tmp / f"node{n}.log", "wb")  # noqa: SIM115 - the node's, for life
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
        self.nodes[n] = proc
        self.wait_nodes(len(self.alive()), proc)
        return proc.pid

    def alive(self) -> list[int]:
        return [n for n, p in self.nodes.items() if p.poll() is None]

    def wait_nodes(self, count: int, proc: subprocess.Popen[bytes]) -> None:
        """Wait until the cluster has `count` live nodes with slots."""
        code = (f"import ray, json; ray.init(address='{self.address}', logging_level='ERROR'); "
                "print(json.dumps(sum(1 for n in ray.nodes() if n['Alive'] and "
                "n['Resources'].get('hud_slots'))))")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"a ray node exited ({proc.returncode}): "
                                     f"{self.logs()[-3000:]}")
            done = self.python(["-c", code], timeout=60)
            if done.returncode == 0 and int(done.stdout.strip().splitlines()[-1]) >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the cluster did not reach {count} nodes: {done.stderr[-2000:]}")
            time.sleep(0.5)  # poll interval; readiness is the GCS listing the node

    def logs(self) -> str:
        return "".join((self.tmp / f"node{n}.log").read_text(errors="replace")
                       for n in self.nodes if (self.tmp / f"node{n}.log").exists())

    def python(self, args: list[str], timeout: float = 300, cwd: Path | None = None,
               **env: str) -> subprocess.CompletedProcess[str]:
        """Run this venv's python inside the namespace, with the cluster's token."""
        return subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, *args],
                              capture_output=True, text=True, timeout=timeout, check=False,
                              env=self.env(**env), cwd=cwd)

    def drive(self, spec: dict[str, Any], runs_dir: Path, **env: str) -> dict[str, Any]:
        """Run tests/ray/driver.py with `spec` in the namespace; its JSON answer (and
        its stderr, the driver's log, under "log")."""
        done = self.python([str(ROOT / "tests" / "ray" / "driver.py"), json.dumps(spec)],
                           HUD_RUNS_DIR=str(runs_dir), **env)
        if done.returncode != 0 or not done.stdout.strip():
            raise AssertionError(f"the driver failed ({done.returncode}): {done.stderr[-4000:]}")
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        answer["log"] = done.stderr
        return answer

    def stop_node(self, n: int) -> None:
        """SIGTERM node n's `ray start --block` and wait for it (never `ray stop`)."""
        proc = self.nodes[n]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def destroy(self) -> None:
        for n in sorted(self.nodes, reverse=True):
            self.stop_node(n)
        subprocess.run(["ip", "netns", "delete", self.ns], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
