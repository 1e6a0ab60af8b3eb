"""The docker placement: a fresh container per rollout, always removed.

Each rollout's container is started with the placement's `docker run` options (labelled
with job, rollout and owner ids, `--network none`, dropped capabilities, a pids limit)
and reached over its own `docker run -i` (hud.eval.run_transport), or, for an image built
by an older hud whose daemon does not serve its stdio, started with `docker run -d` and
reached over one `docker exec -i ... hud connect --mux` (hud.eval.exec_transport). A
used container goes in the background; `shutdown()` waits for it. Imported from
hud.eval.placement too.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import uuid

from hud.build import docker as hd
from hud.errors import ConfigError, DockerError, HudError
from hud.eval.exec_transport import ExecTransport
from hud.eval.lease import Lease, Placement
from hud.eval.owner import OWNER_LABEL, this_owner
from hud.eval.run_transport import RunTransport
from hud.serve.attached import CONNECT_LABEL, ENV_VAR, STDIO

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


#: used containers whose background removal may be pending at once (DockerPlacement)
MAX_REMOVING = 8
#: `docker run` options that would change how an attached container is reached (its
#: stdio is the connection): refused in extra_args
_ATTACHED_LONG = ("--tty", "--detach", "--attach", "--log-driver", "--log-opt", "--name",
                  "--rm", "--sig-proxy", "--interactive", "--detach-keys")
_ATTACHED = ("-t", "-d", "-a", "-i", "-it", "-ti", "-dt", "-td", "-id", "-di", *_ATTACHED_LONG)
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
        self._finishing: set[asyncio.Task[None]] = set()
        self._network_checked = False
        self._labels: dict[str, str] | None = None

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

    def _run_args(self, job_id: str, rollout_id: str, name: str | None = None) -> list[str]:
        # `name`: the container serves its connection on the run's stdio (RunTransport):
        # attached, removed by docker when it exits, its stdout (the connection) not
        # logged, no healthcheck exec (the connection is its health), no signal proxying
        attached = ["-i", "--rm", "--name", name, "--log-driver", "none", "--no-healthcheck",
                    "--sig-proxy=false", "-e", f"{ENV_VAR}={STDIO}"] if name else ["-d"]
        argv = [
            "run", *attached, "--init=false",
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
        """Wait for the used containers still going (their removal, or their exit and
        docker's removal of them), within this event loop. A first cancel does
        not cut the wait short (a job cut off by Ctrl-C must not leave them) and is raised
        after; a second gives up, leaving the rest to the job's sweep and `hud prune`."""
        procs, self._removing = self._removing, []
        loop = asyncio.get_running_loop()
        # a used container's wait is a task of the loop that ran its rollout: one of an
        # earlier loop has gone with it (the container goes by itself; `hud prune` else)
        ending = [t for t in self._finishing if t.get_loop() is loop and not t.done()]
        if not procs and not ending:
            return

        def wait_all() -> None:
            for proc in procs:
                _finished(proc)

        async def both() -> None:
            await asyncio.gather(asyncio.to_thread(wait_all), *ending,
                                 return_exceptions=True)

        waiting = asyncio.ensure_future(both())
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            await asyncio.shield(waiting)
            raise

    def _oom_caps(self) -> tuple[str, ...]:
        return () if self.docker in _NO_SYS_RESOURCE else ("SYS_RESOURCE",)

    async def _image_labels(self) -> dict[str, str] | None:
        """The image's labels, read with this placement's docker client (once, when the
        read succeeds; None when it fails, e.g. no such image: `docker run` says why)."""
        if self._labels is None:
            self._labels = await hd.aimage_labels(self.image, binary=self._docker)
        return self._labels

    async def _check_network(self) -> None:
        """Refuse a network the image's NETWORK_LABEL forbids (asked once per placement,
        and only for a network other than `none`, which every image may have), and a
        shared one (`check_network`) unless allowed."""
        if self.network == "none" or self._network_checked:
            return
        check_network(self.network, self.allow_shared_network)
        labels = await self._image_labels()
        if labels is None:  # a check that cannot read the label must not pass
            raise DockerError(f"cannot read the labels of image {self.image} to check that "
                              f"it may run with network {self.network!r}; is it built "
                              f"(`docker image inspect {self.image}`)?")
        required = labels.get(NETWORK_LABEL)
        if required and required != self.network:
            raise ConfigError(f"image {self.image} must run with network {required!r} (label "
                              f"{NETWORK_LABEL}, e.g. a Harbor task with allow_internet = "
                              f"false), not {self.network!r}; run it with network {required!r}")
        self._network_checked = True

    def _cannot_grant(self, said: str, argv: list[str]) -> bool:
        """Whether `docker run` failed because the engine's own bounding set lacks
        SYS_RESOURCE (nested, some sandboxes); if so, run without it from now on, and
        say what is lost."""
        if "apply caps" not in said or "--cap-add=SYS_RESOURCE" not in argv:
            return False
        if self.docker not in _NO_SYS_RESOURCE:
            _NO_SYS_RESOURCE.add(self.docker)
            log.warning("this Docker engine cannot grant CAP_SYS_RESOURCE; rollout containers "
                        "run without it, so the daemon cannot lower its own OOM score and "
                        "the agent can undo the +1000 on its processes (grader limits still "
                        "hold)")
        return True

    async def open(self, job_id: str, rollout_id: str) -> Lease:
        await self._check_network()
        if ((await self._image_labels()) or {}).get(CONNECT_LABEL) == STDIO:
            return await self._open_attached(job_id, rollout_id)
        return await self._open_detached(job_id, rollout_id)

    async def _open_attached(self, job_id: str, rollout_id: str) -> Lease:
        """One rollout's container, reached over its own `docker run -i`.

        Raises:
            ConfigError: `extra_args` would change how the container is attached (a
                tty, detached, another log driver or name...).
        """
        for arg in self.extra_args:
            if arg in _ATTACHED or arg.split("=", 1)[0] in _ATTACHED_LONG:
                raise ConfigError(f"extra docker run option {arg!r} conflicts with how the "
                                  f"docker placement runs its containers (`docker run -i "
                                  f"--rm --name ... --log-driver none`: the run's stdio is "
                                  f"the daemon's connection, and docker must not log it); "
                                  f"drop it")
        name = f"hud-{new_id()}{new_id()[:4]}"
        argv = self._run_args(job_id, rollout_id, name)
        transport = RunTransport(name, argv, self._docker)
        try:
            channel = await transport.channel(self.ready_timeout)
        except HudError:
            if not self._cannot_grant(transport.stderr_tail(), argv):
                raise
            name = f"hud-{new_id()}{new_id()[:4]}"  # again, without SYS_RESOURCE
            transport = RunTransport(name, self._run_args(job_id, rollout_id, name),
                                     self._docker)
            channel = await transport.channel(self.ready_timeout)

        async def release() -> None:
            await transport.disconnect()
            self._finish_later(transport)

        return Lease(channel, transport.tunnel, release,
                     {"placement": "docker", "container": name, "image": self.image},
                     transport.hello)

    def _finish_later(self, transport: RunTransport) -> None:
        """Let a used container go in the background (`shutdown()` waits for it)."""
        task = asyncio.ensure_future(transport.finish())
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _open_detached(self, job_id: str, rollout_id: str) -> Lease:
        """One rollout's container of an image whose daemon does not serve its stdio
        (built by an older hud): `docker run -d`, reached over `docker exec`."""
        docker = self.docker
        argv = self._run_args(job_id, rollout_id)
        done = await hd.adocker(*argv, timeout=120, binary=docker)
        if not done.ok and self._cannot_grant(done.stderr, argv):
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
