"""Placements: where a rollout's environment lives, and how the host reaches it.

    LocalPlacement    the env in this process (a ControlServer on a private unix socket):
                      fast iteration, no Docker. One server serves every rollout.
    DockerPlacement   a fresh container per rollout, driven over `docker exec -i ... hud
                      connect`; labelled with job and rollout ids, `--network none`,
                      dropped capabilities and a pids limit by default, always removed.
    AttachPlacement   a running container (by name) or a daemon URL (tcp://...);
                      in hud.eval.attach, imported here too.

Every docker command (run, exec, rm) goes through `hud.build.docker`, so `HUD_DOCKER`
and its typed errors hold here too; `docker=` names another client for one placement.

Each `open()` returns a ready `Lease` (hud.eval.lease): a control `Channel` on which the
daemon has answered `hello`, that answer (`Lease.hello`, the manifest, still untrusted),
a way to open tunnels to the capabilities, and `close()`. Every placement says `hello`
exactly once per lease, so a rollout never asks again. Failures to provision are
`InfraError`s.

One running environment serves one rollout at a time unless it declares more (the
manifest's `env.concurrency`, the in-process `Environment.concurrency`): rollouts share
its /workspace and its daemon refuses a `tasks.start` beyond that. So the local and
attach placements hold a slot of a per-target `Gate` from `open()` until the lease is
closed, and a group against one container runs its members one after another. The
docker placement gives each rollout its own container and needs no gate.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hud.build import docker as hd
from hud.clients.channel import Channel, open_tunnel_stream
from hud.environment import Environment
from hud.errors import ConfigError
from hud.eval.attach import AttachPlacement as AttachPlacement  # its home; imported here too
from hud.eval.exec_transport import ExecTransport
from hud.eval.gate import Gate, at_once
from hud.eval.lease import HELLO
from hud.eval.lease import Lease as Lease  # the contract; imported from here too
from hud.eval.lease import Placement as Placement
from hud.eval.lease import Streams as Streams
from hud.eval.owner import OWNER_LABEL, this_owner

log = logging.getLogger("hud.eval")

READY_TIMEOUT = 120.0
JOB_LABEL = "org.hud.job"
ROLLOUT_LABEL = "org.hud.rollout"
#: an image that must run with one network (`none`: a Harbor task with allow_internet =
#: false, hud.harbor.importer); the docker placement refuses any other
NETWORK_LABEL = "org.hud.network"
#: processes (and threads) per rollout container unless told otherwise
DEFAULT_PIDS_LIMIT = 1024


def shared_network(network: str) -> str | None:
    """What `network` would share with the agent when it is not a network of its own:
    `host` (the host's network namespace: its loopback services, `hud view`, attached
    daemons, a cloud metadata endpoint) or `container:X` (another container's, another
    rollout's); None for a network proper (none, bridge, a user-defined one)."""
    if network == "host":
        return "the host's network namespace (every service on its loopback)"
    if network.startswith("container:"):
        return f"the network namespace of container {network.split(':', 1)[1]!r}"
    return None


def check_network(network: str, allow_shared: bool = False) -> None:
    """Refuse a rollout network that shares a namespace with the host or another
    container, unless `allow_shared` (`--allow-shared-network`) says so.

    Raises:
        ConfigError: naming the network, what it would expose and the opt-in.
    """
    shared = shared_network(network)
    if network.startswith("-") or not network:
        raise ConfigError(f"network {network!r} is not a docker network name; pass none, "
                          f"bridge or a network of yours")
    if shared and not allow_shared:
        raise ConfigError(f"network {network!r} gives the agent {shared}; use none (the "
                          f"default) or bridge, or, if the agent may reach all of that, say "
                          f"so with allow_shared_network=True (--allow-shared-network)")


class LocalPlacement(Placement):
    """The environment in this process, behind a private unix socket."""

    name = "local"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self._daemon: Any = None
        self._dir: Path | None = None
        self._lock = asyncio.Lock()
        self._gate: Gate | None = None

    def describe(self) -> str:
        return f"local (in-process {self.env.name}, {at_once(self.concurrency)})"

    @property
    def concurrency(self) -> int:
        """Rollouts the environment serves at once (`Environment(concurrency=N)`)."""
        return self.env.concurrency

    async def _ensure(self) -> Path:
        async with self._lock:
            if self._daemon is None:
                from hud.serve.daemon import Daemon, DaemonConfig

                self._dir = Path(tempfile.mkdtemp(prefix="hud-local-"))
                sock = self._dir / "control.sock"
                daemon = Daemon(DaemonConfig(socket_path=sock, env=self.env))
                server = await daemon.start()
                if server.load_error is not None:
                    await daemon.close()
                    raise ConfigError(f"environment {self.env.name!r} failed to start: "
                                      f"{server.load_error}\n{server.load_error.traceback}")
                self._daemon = daemon
            assert self._dir is not None
            return self._dir / "control.sock"

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        sock = await self._ensure()
        if self._gate is None:
            self._gate = Gate()
        gate = self._gate
        await gate.learn(self.concurrency)
        await gate.acquire()

        async def tunnel(name: str) -> Streams:
            reader, writer = await asyncio.open_unix_connection(str(sock), limit=1 << 20)
            await open_tunnel_stream(reader, writer, name)
            return reader, writer

        try:
            reader, writer = await asyncio.open_unix_connection(str(sock))
        except BaseException:
            await gate.release()
            raise
        channel = Channel(reader, writer, describe=f"local env {self.env.name}")
        try:
            hello = await channel.call("hello", dict(HELLO))
        except BaseException:
            await channel.close()
            await gate.release()
            raise
        return Lease(channel, tunnel, gate.release, {"placement": "local"}, hello)

    async def shutdown(self) -> None:
        if self._daemon is not None:
            await self._daemon.close()
            self._daemon = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


#: used containers whose background removal may be pending at once (DockerPlacement)
MAX_REMOVING = 8
# docker binaries whose engine refused CAP_SYS_RESOURCE once (see DockerPlacement.open)
_NO_SYS_RESOURCE: set[str] = set()


def _finished(proc: subprocess.Popen[bytes]) -> None:
    """Wait for a background `docker rm`; a failure is logged (prune removes the rest)."""
    _, err = proc.communicate()
    if proc.returncode:
        log.warning("removing a used rollout container failed (%s); `hud prune` removes it",
                    (err or b"").decode(errors="replace").strip())


class DockerPlacement(Placement):
    """A fresh container per rollout from `image`, removed afterwards.

    Args:
        image: the env image (`hud build`'s tag or id).
        network: the container's network; "none" (the default) still serves every
            capability, over exec tunnels.
        cpus: CPUs per container (`docker run --cpus`); None: no limit.
        memory: memory per container (`--memory`, e.g. "2g"); None: no limit.
        pids_limit: processes and threads per container (`--pids-limit`); 0 or less:
            no limit. The default, 1024, fits a shell, a browser and a test suite.
        extra_args: more `docker run` options, added last.
        ready_timeout: seconds for the container's daemon to answer `hello`.
        allow_shared_network: let `network` be `host` or `container:X`, which give the
            agent the host's or that container's network namespace (`check_network`);
            refused at `open()` without it.
        docker: the docker client for this placement [default: `$HUD_DOCKER`, else
            `docker` on PATH].
    """

    name = "docker"

    def __init__(
        self,
        image: str,
        *,
        network: str = "none",
        cpus: float | None = None,
        memory: str | None = None,
        pids_limit: int = DEFAULT_PIDS_LIMIT,
        extra_args: list[str] | None = None,
        ready_timeout: float = READY_TIMEOUT,
        docker: str | None = None,
        allow_shared_network: bool = False,
    ) -> None:
        hd.checked_ref(image)
        self.image = image
        self.network = network
        self.cpus = cpus
        self.memory = memory
        self.pids_limit = pids_limit
        self.extra_args = list(extra_args or [])
        self.ready_timeout = ready_timeout
        self._docker = docker
        self.allow_shared_network = allow_shared_network
        self._removing: list[subprocess.Popen[bytes]] = []
        self._network_checked = False

    @property
    def docker(self) -> str:
        """The docker client this placement runs (`docker=`, else `hud.build.docker`'s).

        Raises:
            DockerError: no docker client is installed.
        """
        return self._docker or hd.docker_bin()

    def describe(self) -> str:
        pids = self.pids_limit if self.pids_limit > 0 else "unlimited"
        return f"docker ({self.image}, network {self.network}, pids {pids})"

    def run_argv(self, job_id: str, rollout_id: str) -> list[str]:
        """The whole `docker run` command line of one rollout's container.

        Raises:
            DockerError: no docker client is installed.
        """
        return hd.argv(*self._run_args(job_id, rollout_id), binary=self._docker)

    def _run_args(self, job_id: str, rollout_id: str) -> list[str]:
        argv = [
            "run", "-d", "--init=false",
            "--label", f"{JOB_LABEL}={job_id}", "--label", f"{ROLLOUT_LABEL}={rollout_id}",
            "--label", f"{OWNER_LABEL}={this_owner()}",
            "--network", self.network,
            # the daemon needs to switch to the agent user, own files and end the agent's
            # processes; SYS_RESOURCE lets it put itself last for the OOM killer and pin the
            # agent's and grader's processes first (oom_score_adj 1000 they cannot lower);
            # everything else is dropped
            "--cap-drop", "ALL",
            *[f"--cap-add={c}" for c in ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID",
                                          "KILL", *self._oom_caps())],
            "--security-opt", "no-new-privileges",
            # the host's pid space (pid_max) is shared by every container: a fork bomb in
            # one rollout must stop at its own limit, not starve the host and its other
            # rollouts; -1 is docker's "unlimited", asked for explicitly
            "--pids-limit", str(self.pids_limit if self.pids_limit > 0 else -1),
        ]
        # CPU and memory are the operator's call (a browser env needs more than a shell):
        # unset means docker's default, no limit. The daemon protects itself from an
        # agent's memory flood with its own OOM priority either way.
        if self.cpus:
            argv += ["--cpus", str(self.cpus)]
        if self.memory:
            argv += ["--memory", self.memory]
        return [*argv, *self.extra_args, self.image]

    async def _remove(self, container: str) -> None:
        """Remove a used container in the background: the next rollout starts while it
        goes (~100 ms of `docker rm -f` off every rollout). The `docker rm` is its own
        process, so it finishes even when the caller's event loop (or process) ends
        first; `shutdown()` waits for the pending ones, and at most `MAX_REMOVING` are
        pending at once."""
        pending = []
        for proc in self._removing:
            if proc.poll() is None:
                pending.append(proc)
            else:
                _finished(proc)
        pending.append(hd.detached("rm", "-f", container, binary=self._docker))
        self._removing = pending
        if len(pending) > MAX_REMOVING:
            oldest = pending.pop(0)
            await asyncio.to_thread(_finished, oldest)

    async def shutdown(self) -> None:
        """Wait for the removals of used containers still pending. A first cancel does
        not cut the wait short (a job cut off by Ctrl-C must not leave them) and is raised
        after; a second gives up, leaving the rest to the job's sweep and `hud prune`."""
        procs, self._removing = self._removing, []
        if not procs:
            return
        def wait_all() -> None:
            for proc in procs:
                _finished(proc)

        waiting = asyncio.ensure_future(asyncio.to_thread(wait_all))
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            await asyncio.shield(waiting)
            raise

    def _oom_caps(self) -> tuple[str, ...]:
        return () if self.docker in _NO_SYS_RESOURCE else ("SYS_RESOURCE",)

    async def _check_network(self) -> None:
        """Refuse a network the image's NETWORK_LABEL forbids (asked once per placement,
        and only for a network other than `none`, which every image may have), and a
        shared one (`check_network`) unless allowed."""
        if self.network == "none" or self._network_checked:
            return
        check_network(self.network, self.allow_shared_network)
        info = await asyncio.to_thread(hd.inspect_image, self.image)
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        required = labels.get(NETWORK_LABEL)
        if required and required != self.network:
            raise ConfigError(f"image {self.image} must run with network {required!r} (label "
                              f"{NETWORK_LABEL}, e.g. a Harbor task with allow_internet = "
                              f"false), not {self.network!r}; run it with network {required!r}")
        self._network_checked = True

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        docker = self.docker
        await self._check_network()
        argv = self._run_args(job_id, rollout_id)
        done = await hd.adocker(*argv, timeout=120, binary=docker)
        if not done.ok and "apply caps" in done.stderr and "--cap-add=SYS_RESOURCE" in argv:
            # an engine whose own bounding set lacks SYS_RESOURCE (nested, some sandboxes)
            # cannot grant it: run without it from now on, and say what is lost
            if docker not in _NO_SYS_RESOURCE:
                _NO_SYS_RESOURCE.add(docker)
                log.warning("this Docker engine cannot grant CAP_SYS_RESOURCE; rollout containers "
                            "run without it, so the daemon cannot lower its own OOM score and "
                            "the agent can undo the +1000 on its processes (grader limits still "
                            "hold)")
            # created, never started
            stale = await hd.alabelled(f"{ROLLOUT_LABEL}={rollout_id}", binary=docker)
            if stale:
                await hd.adocker("rm", "-f", *stale, binary=docker)
            done = await hd.adocker(*self._run_args(job_id, rollout_id), timeout=120,
                                    binary=docker)
        if not done.ok:
            raise hd.failure(done, f"docker run {self.image}")
        container = done.stdout.strip()
        transport = ExecTransport(container, docker)

        async def release() -> None:
            await transport.close()
            await self._remove(container)

        try:
            channel = await transport.channel(self.ready_timeout)
        except BaseException:
            await release()
            raise
        return Lease(channel, transport.tunnel, release,
                     {"placement": "docker", "container": container[:12], "image": self.image},
                     transport.hello)


def new_id() -> str:
    return uuid.uuid4().hex[:12]

