"""The `ssh` capability: an asyncssh server giving the agent a shell and files in a workspace.

Design decisions:
- **Loopback and one key pair per start.** The server listens on 127.0.0.1 at an
  ephemeral port; the host reaches it only through a tunnel (`hud connect --tunnel`,
  OpenSSH's `ProxyCommand`, asyncssh's `proxy_command`). Every `start()` generates a fresh
  ed25519 host key and one client key; the binding carries the host's public key (pin
  it, no trust-on-first-use) and the client's private key. Only public-key auth with that
  key, and only as the configured login name; no forwarding of ports, agents or X11.
- **Sessions** are real processes run as the user (see `hud.shells`), with keep-alives
  closing links whose peer vanished.
- **Ending the agent's work.** `task_ended()` kills every process of a dedicated uid (so a
  `setsid`'d or double-forked process is caught too); with `user=None` (the daemon's own
  uid) it can only kill the sessions this workspace created and what stayed in them.
- **Template code** runs commands through the one subprocess helper (`hud.proc.arun`),
  wrapped in `setpriv` for the user and `timeout(1)`, which kills the command's whole
  process group at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import time
from collections.abc import Mapping, Sequence

import asyncssh
from hud.capability import Capability
from hud.errors import ConfigError
from hud.proc import Completed, arun
from hud.protocol import BINDING_PROTOCOLS, Binding
from hud.shells import SFTP_SERVER, ChannelProcess, Shells
from hud.users import User, kill_processes, resolve_user

log = logging.getLogger("hud.workspace")

KEEPALIVE_INTERVAL = 15.0
LOGIN_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
TIMED_OUT = 124  # what coreutils timeout(1) exits with


class _Server(asyncssh.SSHServer):
    """Per-connection policy: public-key auth for one login name, nothing else."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._workspace._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._workspace._connections.discard(self._conn)

    def session_requested(self) -> ChannelProcess:
        assert self._workspace._shells is not None
        return self._workspace._shells.new_channel()

    def begin_auth(self, username: str) -> bool:
        # A wrong login name gets no trusted keys at all, so every key is refused.
        if self._conn is not None and username == self._workspace.login:
            self._conn.set_authorized_keys(self._workspace._authorized)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


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
    ) -> None:
        self.name = name
        self.root = root
        self.user_name = user
        self.env = dict(env or {})
        self.keepalive_interval = keepalive_interval
        self.sftp_server = sftp_server
        self._user: User | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._authorized: asyncssh.SSHAuthorizedKeys | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._shells: Shells | None = None
        self._binding: Binding | None = None

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
        """Generate keys, listen on 127.0.0.1 and return the `ssh/2` binding.

        Raises:
            ConfigError: the user does not exist or cannot be switched to, or `root`
                is not a directory.
        """
        if self._acceptor is not None:
            assert self._binding is not None
            return self._binding
        user = self.user
        if not os.path.isdir(self.root):
            raise ConfigError(
                f"workspace root {self.root!r} is not a directory; create it in the image "
                f"(the hud base image has /workspace) or pass env.workspace(root=...)"
            )
        if not os.access(self.sftp_server, os.X_OK):
            log.warning("%s is missing: sftp and scp will fail; install openssh-sftp-server "
                        "in the image (the hud base image has it)", self.sftp_server)
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        self._shells = Shells(user, self.root, self.env, self.sftp_server)
        host_key = asyncssh.generate_private_key("ssh-ed25519", comment="hud-host")
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment=f"hud-{user.name}")
        self._authorized = asyncssh.import_authorized_keys(
            client_key.export_public_key("openssh").decode()
        )
        self._acceptor = await asyncssh.create_server(
            lambda: _Server(self),
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            encoding=None,
            line_editor=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=self.keepalive_interval,
            keepalive_count_max=3,
            login_timeout=LOGIN_TIMEOUT,
        )
        port = self._acceptor.get_port()
        self._binding = Binding(
            name=self.name,
            protocol=self.protocol,
            url=f"tcp://127.0.0.1:{port}",
            params={
                "user": user.name,
                "host_pubkey": host_key.export_public_key("openssh").decode().strip(),
                "client_key": client_key.export_private_key("openssh").decode(),
                "cwd": self.root,
            },
        )
        log.info("ssh workspace %r listening on 127.0.0.1:%d as %s", self.name, port, user.name)
        return self._binding

    async def stop(self) -> None:
        """Close the listener and every connection, and kill every process spawned."""
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(acceptor.wait_closed(), STOP_TIMEOUT)
        for conn in list(self._connections):
            conn.close()
        await self.task_ended()
        for conn in list(self._connections):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), STOP_TIMEOUT)
        if self._shells is not None:
            await self._shells.wait_idle(STOP_TIMEOUT)
        self._binding = None

    async def task_ended(self) -> None:
        """Kill every process the agent started (ssh sessions and their descendants)."""
        if self._user is None or self._shells is None:
            return
        if self._user.dedicated:
            killed = kill_processes(uid=self._user.uid)
        else:
            killed = kill_processes(sessions=self._shells.session_ids)
        self._shells.forget_ended()
        if killed:
            log.info("task ended: killed %d process(es) of %s", killed, self._user.name)

    async def before_grade(self) -> None:
        """The agent answered: its processes end now, so none can interfere with grading."""
        await self.task_ended()

    async def healthy(self) -> bool:
        """Whether the listener still accepts connections."""
        return self._acceptor is not None and bool(self._acceptor.is_serving())

    # -- template code ----------------------------------------------------------------------

    async def run(
        self,
        cmd: str | Sequence[str],
        *,
        user: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
        input: str | bytes | None = None,
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

        Returns:
            The exit code and the decoded stdout and stderr.

        Raises:
            ConfigError: the user does not exist or cannot be switched to.
            InfraError: the command could not be started, or ignored the kill.
        """
        who = self.user if user is None else resolve_user(user)
        argv = [who.shell, "-c", cmd] if isinstance(cmd, str) else list(cmd)
        # timeout(1) runs the command in its own process group and kills the whole group.
        wrapped = who.argv(["timeout", "--kill-after=2", f"{timeout:g}", *argv])
        started = time.monotonic()
        done = await arun(
            wrapped,
            timeout=timeout + 10.0,
            input=input,
            env=who.environment(extra=self.env),
            cwd=cwd or self.root,
        )
        timed_out = time.monotonic() - started >= timeout
        if timed_out and done.code in (TIMED_OUT, 128 + 9):
            note = f"hud: {shlex.join(argv)!r} ran past {timeout:g}s and was killed\n"
            return Completed(tuple(argv), TIMED_OUT, done.stdout, done.stderr + note)
        return Completed(tuple(argv), done.code, done.stdout, done.stderr)
