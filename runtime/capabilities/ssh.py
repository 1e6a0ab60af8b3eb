"""The `ssh` capability: an asyncssh server giving the agent a shell and files in a workspace.

Design decisions:
- **Loopback and one key pair per start.** The server listens on 127.0.0.1 at an
  ephemeral port; the host reaches it only through a tunnel (`hud connect --tunnel`,
  OpenSSH's `ProxyCommand`, asyncssh's `proxy_command`). Every `start()` generates a fresh
  ed25519 host key and one client key; the binding carries the host's public key (pin
  it, no trust-on-first-use) and the client's private key. Only public-key auth with that
  key, and only as the configured login name; no forwarding of ports, agents or X11.
- **asyncssh loads at the first connection.** `start()` makes the keys with
  `cryptography` and binds the listener; asyncssh (~8 MB more, ~0.1 s) and
  `hud.capabilities.shells`, the only module here that imports it, load when the first
  client connects (`hud.capabilities.activation`). An idle container never pays for them.
- **Sessions** are real processes run as the user (see `hud.capabilities.shells`), with keep-alives
  closing links whose peer vanished.
- **Ending the agent's work.** `task_ended()` kills every process of a dedicated uid (so a
  `setsid`'d or double-forked process is caught too); with `user=None` (the daemon's own
  uid) it can only kill the sessions this workspace created and what stayed in them.
  The same sweep runs in `before_start()` (nothing the agent left may race the next
  task's setup) and `before_grade()`.
- **No new work while grading.** From `before_grade()` until `task_ended()` (or the next
  `before_start()`) every new session's shell, exec or sftp request is refused with
  "grading in progress" and exit status 1, before any process starts: after the sweep,
  nothing the agent starts can run beside the grader. The same holds while
  `before_start()` resets the agent's files.
- **Root never follows a path the agent can write.** `before_start()` clears the agent's
  files in the scratch directories (/tmp, /var/tmp, /dev/shm, /run/lock, /dev/mqueue)
  and resets its home, and `reset()` empties and refills the workspace: all of it as the
  agent, see `hud.capabilities.scratch`. The workspace itself is the template's to reset
  (`await ws.reset(source)`).
- **Template code** runs commands through the one subprocess helper (`hud.proc.arun`),
  wrapped in `setpriv` for the user and `timeout(1)`, which kills the command's whole
  process group at the deadline (both trusted absolute paths, hud.capabilities.programs:
  never the `timeout` a PATH the agent can write names); output is bounded (`limit`), so a command flooding it
  cannot grow the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from hud.capabilities.activation import FirstConnection, loopback_listener
from hud.capabilities.programs import program
from hud.capabilities.scratch import SCRATCH_DIRS, clear_scratch, empty, fill
from hud.capabilities.users import User, kill_processes, resolve_user
from hud.capability import Capability
from hud.errors import ConfigError, InfraError
from hud.grading.leftovers import remove_ipc
from hud.messages import BINDING_PROTOCOLS, Binding
from hud.proc import DEFAULT_LIMIT, Completed, arun

if TYPE_CHECKING:  # asyncssh loads at the first connection (see the module doc)
    import asyncssh

    from hud.capabilities.shells import Shells

log = logging.getLogger("hud.capabilities.ssh")

KEEPALIVE_INTERVAL = 15.0
LOGIN_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
TIMED_OUT = 124  # what coreutils timeout(1) exits with
GRADING = ("grading in progress: no new ssh sessions until the task is graded; "
           "connect again when the next task starts")
STARTING = "the next task is being set up; connect again in a moment"


def _key_pair(comment: str) -> tuple[str, str]:
    """A fresh ed25519 key: (OpenSSH private key, `ssh-ed25519 BASE64 COMMENT` line).

    Made with `cryptography` (which asyncssh stands on) so that starting the capability
    does not load asyncssh.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


def _load_asyncssh() -> None:
    """Import asyncssh and the sessions module (what the first connection needs)."""
    import asyncssh  # noqa: F401

    import hud.capabilities.shells  # noqa: F401


class Workspace(Capability):
    """An ssh server (`ssh/2`) whose sessions run as `user` in `root`.

    Args:
        root: the workspace directory; sessions, sftp and `run()` start there.
        user: login name the agent runs as (`agent`, uid 1000, in hud images); `None`
            runs as the daemon's own user (tests on a host without that account).
        name: the binding name.
        env: extra environment variables for every session (PYTHONPATH, ...).
        keepalive_interval: seconds between ssh keep-alives; 3 unanswered close the link.
        sftp_server: path of OpenSSH's sftp-server binary.
        scratch: world-writable directories whose files of the agent `before_start()`
            removes (only for a dedicated agent uid).
        reset_home: whether `before_start()` also resets the agent's home to /etc/skel.
    """

    protocol = BINDING_PROTOCOLS["ssh"]

    def __init__(
        self,
        root: str = "/workspace",
        *,
        user: str | None = "agent",
        name: str = "shell",
        env: Mapping[str, str] | None = None,
        keepalive_interval: float = KEEPALIVE_INTERVAL,
        sftp_server: str = SFTP_SERVER,
        scratch: Sequence[str] = SCRATCH_DIRS,
        reset_home: bool = True,
    ) -> None:
        self.name = name
        self.root = root
        self.user_name = user
        self.env = dict(env or {})
        self.keepalive_interval = keepalive_interval
        self.sftp_server = sftp_server
        self.scratch = list(scratch)
        self.reset_home = reset_home
        self._user: User | None = None
        self._activation: FirstConnection | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        #: this start's host key (OpenSSH private key) and the one client key's public line
        self._keys: tuple[str, str] | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._shells: Shells | None = None
        self._binding: Binding | None = None
        #: why new sessions are refused right now (grading, setting up), or None
        self._refusal: str | None = None

    @property
    def user(self) -> User:
        """The resolved login identity (resolved at the first `start()` or `run()`)."""
        if self._user is None:
            self._user = resolve_user(self.user_name)
        return self._user

    @property
    def login(self) -> str:
        return self.user.name

    async def start(self) -> Binding:
        """Generate keys, listen on 127.0.0.1 and return the `ssh/2` binding; the ssh
        server itself (asyncssh) is loaded when the first client connects.

        Raises:
            ConfigError: the user does not exist or cannot be switched to, or `root`
                is not a directory.
        """
        if self._binding is not None:
            if await self.healthy():
                return self._binding
            await self.stop()
        user = self.user
        if not os.path.isdir(self.root):
            raise ConfigError(
                f"workspace root {self.root!r} is not a directory; create it in the image "
                f"(the hud base image has /workspace) or pass env.workspace(root=...)"
            )
        if not os.access(self.sftp_server, os.X_OK):
            log.warning("%s is missing: sftp and scp will fail; install openssh-sftp-server "
                        "in the image (the hud base image has it)", self.sftp_server)
        host_key, host_pubkey = _key_pair("hud-host")
        client_key, client_pubkey = _key_pair(f"hud-{user.name}")
        self._keys = (host_key, client_pubkey)
        sock = loopback_listener()
        port = sock.getsockname()[1]
        self._activation = FirstConnection(sock, self._serve, self.name)
        self._binding = Binding(
            name=self.name,
            protocol=self.protocol,
            url=f"tcp://127.0.0.1:{port}",
            params={"user": user.name, "host_pubkey": host_pubkey, "client_key": client_key,
                    "cwd": self.root},
        )
        log.info("ssh workspace %r listening on 127.0.0.1:%d as %s", self.name, port, user.name)
        return self._binding

    async def _serve(self) -> None:
        """At the first connection: load asyncssh and serve ssh on the listener."""
        assert self._activation is not None and self._keys is not None
        await asyncio.to_thread(_load_asyncssh)  # ~0.1 s: off the loop
        from hud.capabilities.shells import Shells, listen

        self._shells = Shells(self.user, self.root, self.env, self.sftp_server)
        self._shells.refusal = self._refusal
        host_key, client_pubkey = self._keys
        self._acceptor = await listen(
            self._activation.sock, self._shells, login=self.login, host_key=host_key,
            client_pubkey=client_pubkey, connections=self._connections,
            keepalive_interval=self.keepalive_interval, login_timeout=LOGIN_TIMEOUT)

    async def stop(self) -> None:
        """Close the listener and every connection, and kill every process spawned."""
        activation, self._activation = self._activation, None
        if activation is not None:
            await activation.close()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(acceptor.wait_closed(), STOP_TIMEOUT)
        for conn in list(self._connections):
            conn.close()
        self._sweep()  # not task_ended(): a restart while grading keeps refusing sessions
        for conn in list(self._connections):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), STOP_TIMEOUT)
        if self._shells is not None:
            await self._shells.wait_idle(STOP_TIMEOUT)
        if activation is not None:
            activation.sock.close()
        self._binding = self._keys = None

    def _refuse(self, reason: str | None) -> None:
        self._refusal = reason
        if self._shells is not None:
            self._shells.refusal = reason

    def _sweep(self) -> int:
        """Kill every process of the agent; how many were signalled."""
        user = self._user
        if user is None:
            return 0  # never started nor used: nothing runs as the agent on our behalf
        if user.dedicated:
            killed = kill_processes(uid=user.uid)
        elif self._shells is not None:
            killed = kill_processes(sessions=self._shells.session_ids)
        else:
            return 0
        if self._shells is not None:
            self._shells.forget_ended()
        return killed

    async def before_start(self) -> None:
        """A task is about to be set up: end what the agent left and reset its scratch space.

        Kills every process of the agent (as `task_ended`), then, for a dedicated agent
        uid, removes its files from the `scratch` directories and resets its home to
        /etc/skel, as the agent (never root following its paths). Kept: the workspace root
        (the template resets it with `reset()`) and paths registered with
        `hud.capabilities.users.spare_path` by services running as the agent (the X display's socket).
        New sessions are refused meanwhile.

        Raises:
            InfraError: a cleanup step could not run or ran past its timeout.
        """
        user = self.user
        self._refuse(STARTING)
        try:
            killed = self._sweep()
            if killed:
                log.info("before the task: killed %d leftover process(es) of %s", killed,
                         user.name)
            if user.dedicated:
                remove_ipc(user)
                cleared = await clear_scratch(user, self.scratch, home=self.reset_home,
                                              keep=[self.root])
                log.info("before the task: cleared %s's files in %s", user.name,
                         ", ".join(cleared) or "nothing")
        finally:
            self._refuse(None)

    async def before_grade(self) -> None:
        """The agent answered: refuse new sessions, and kill its processes, until the task
        has ended, so that nothing it starts can interfere with grading."""
        self._refuse(GRADING)
        killed = self._sweep()
        if killed:
            log.info("before grading: killed %d process(es) of %s", killed, self.user.name)
        if self.user.dedicated:
            # System V IPC outlives processes and files: a 0666 segment of the agent's
            # would be a channel from the grader's run of its code back to its next task
            remove_ipc(self.user)

    async def task_ended(self) -> None:
        """Kill every process the agent started (ssh sessions and their descendants), and
        accept sessions again."""
        killed = self._sweep()
        if killed:
            log.info("task ended: killed %d process(es) of %s", killed, self.user.name)
        self._refuse(None)

    async def reset(self, source: str | os.PathLike[str] | None = None, *,
                    timeout: float = 300.0) -> None:
        """Empty the workspace root and copy the directory `source` into it, as the agent.

        Why as the agent: the root is the agent's to write, so anything in it (or a process
        of the agent still running) can swap a directory for a symlink. Root copying into
        it (`shutil.copytree`, and its `copystat`) follows that symlink: it once made the
        root-only env folder world-readable and wrote into /etc/ssl. Here root only packs
        `source` (trusted, root-only, e.g. the env folder's `project/`) with `tar -c`, and
        `find -delete` and `tar -x` run as the agent: a planted symlink sends them only
        where the agent could write anyway. The result belongs to the agent; `__pycache__`
        folders are not copied; the root's own mode and owner are kept.

        Args:
            source: the directory whose contents the workspace gets; None leaves it empty.
            timeout: seconds for each of the two steps.

        Raises:
            ConfigError: `source` is not a directory.
            InfraError: the root could not be emptied (files the agent cannot delete: put
                nothing root-owned in the workspace) or the copy failed.
        """
        if source is not None and not os.path.isdir(source):
            raise ConfigError(f"cannot reset the workspace from {os.fspath(source)!r}: it is "
                              f"not a directory; pass a folder of the env "
                              f"(e.g. Path(__file__).parent / 'project')")
        done = await empty(self.user, [self.root], timeout=timeout)
        if not done.ok:
            raise InfraError(f"emptying the workspace {self.root!r} as {self.user.name} failed "
                             f"(exit {done.code}): {done.tail(5)}; the root must belong to "
                             f"{self.user.name} and hold nothing it cannot delete")
        if source is not None:
            await fill(self.user, self.root, source, timeout=timeout)

    async def healthy(self) -> bool:
        """Whether it serves: listening for its first client, loading asyncssh, or the
        listener still accepting connections."""
        activation = self._activation
        if activation is None or activation.failed is not None:
            return False
        return self._acceptor is None or bool(self._acceptor.is_serving())

    # -- template code ----------------------------------------------------------------------

    async def run(
        self,
        cmd: str | Sequence[str],
        *,
        user: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
        input: str | bytes | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Completed:
        """Run a command in the workspace on the author's behalf (setup, grading).

        Args:
            cmd: a shell command line (run with the user's shell `-c`) or an argv list.
            user: who runs it: `None` is the workspace's user (the agent), "root" is root,
                or any other login name.
            timeout: seconds; then the command and every process in its process group
                are killed and the result has exit code 124 and a note in stderr.
            cwd: working directory (default: the workspace root).
            input: bytes or text fed to stdin.
            limit: bytes kept of each of stdout and stderr (16 MiB by default). A command
                writing more is killed with its process group at that point, and the
                result is `truncated`, with a note in stderr: output the agent's code
                floods cannot grow the daemon.

        Returns:
            The exit code and the decoded stdout and stderr.

        Raises:
            ConfigError: the user does not exist or cannot be switched to.
            InfraError: the command could not be started, or ignored the kill, or no
                trusted `timeout` is installed (hud.capabilities.programs).
        """
        who = self.user if user is None else resolve_user(user)
        argv = [who.shell, "-c", cmd] if isinstance(cmd, str) else list(cmd)
        # timeout(1) runs the command in its own process group and kills the whole group;
        # a trusted absolute path: as root, PATH may name a folder the agent writes
        wrapped = who.argv([program("timeout"), "--kill-after=2", f"{timeout:g}", *argv])
        started = time.monotonic()
        done = await arun(
            wrapped,
            timeout=timeout + 10.0,
            input=input,
            env=who.environment(extra=self.env),
            cwd=cwd or self.root,
            limit=limit,
        )
        if done.truncated:
            note = f"hud: {shlex.join(argv)!r} wrote more than {limit} bytes and was killed\n"
            return Completed(tuple(argv), done.code, done.stdout, done.stderr + note, True)
        timed_out = time.monotonic() - started >= timeout
        if timed_out and done.code in (TIMED_OUT, 128 + 9):
            note = f"hud: {shlex.join(argv)!r} ran past {timeout:g}s and was killed\n"
            return Completed(tuple(argv), TIMED_OUT, done.stdout, done.stderr + note)
        return Completed(tuple(argv), done.code, done.stdout, done.stderr)
