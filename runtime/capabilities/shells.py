"""The asyncssh side of the ssh capability: its listener, its policy, and each session
bridged to one process run as the workspace user.

Loaded at the ssh capability's first connection (`hud.capabilities.activation`): this is
the only module of the capability that imports asyncssh.

Design decisions:
- **Policy.** Only public-key auth, with the one client key, and only as the one login
  name; no passwords, keyboard-interactive or host-based auth.
- **Real processes, real kernel checks.** Exec and shell requests spawn the user's login
  shell through `hud.capabilities.users` (uid switch with `setpriv`, a clean environment) in the
  workspace root. A PTY request gets a real pseudo-terminal, made the new session's
  controlling tty by `setsid --ctty`; window changes reach it through asyncssh's redirect
  (TIOCSWINSZ on the master, and the kernel sends SIGWINCH). The `sftp` subsystem spawns
  OpenSSH's own `sftp-server` as the user, so `sftp` and `scp` behave as against sshd and
  permission checks are the kernel's. Legacy `scp -O` is just an exec of `scp -t`.
- **Bounded memory.** Output goes through `SSHServerProcess.redirect`, which stops reading
  the pipe while the channel's send buffer is full: an agent flooding stdout blocks in
  write(2) instead of filling the daemon's memory.
- **No helper threads.** Process exits are awaited with a pidfd on the event loop.
- **A vanished client** gets its session's process group SIGHUP, then SIGKILL, like sshd;
  what the agent detached (nohup, setsid) lives until the task ends.
- **Refusals.** While `refusal` is set (grading; setting up the next task), every shell,
  exec or sftp request, on a new channel or an old connection, is answered with the
  reason on stderr and exit status 1, and nothing is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any

import asyncssh
from asyncssh.constants import EXTENDED_DATA_STDERR

from hud.capabilities.programs import program
from hud.capabilities.users import User

log = logging.getLogger("hud.capabilities.ssh")

DRAIN_TIMEOUT = 2.0
HANGUP_GRACE = 2.0
CLOSE_TIMEOUT = 5.0


async def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    """Wait for `proc` to exit without blocking the loop or a thread; return its status.

    A death by signal N is reported as 128 + N, as shells do.
    """
    if proc.poll() is None:
        loop = asyncio.get_running_loop()
        pidfd = os.pidfd_open(proc.pid)
        exited = loop.create_future()
        loop.add_reader(pidfd, lambda: None if exited.done() else exited.set_result(None))
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
    code = proc.wait()
    return code if code >= 0 else 128 - code


class ChannelProcess(asyncssh.SSHServerProcess[bytes]):
    """A process session that also routes the `sftp` subsystem to our handler.

    asyncssh runs its own SFTP server for `sftp` and refuses the subsystem without one;
    we want OpenSSH's sftp-server as the user instead, so that subsystem is started like
    an exec session. Relies on asyncssh's stream classes (pinned <3; tests cover it).
    """

    def __init__(self, handler: Callable[[asyncssh.SSHServerProcess[bytes]],
                                         Awaitable[None] | None]) -> None:
        super().__init__(handler, None, 3, False)

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "sftp"

    def session_started(self) -> None:
        if self._chan.get_subsystem() != "sftp":
            super().session_started()
            return
        stdin = asyncssh.SSHReader(self, self._chan)
        stdout = asyncssh.SSHWriter(self, self._chan)
        stderr = asyncssh.SSHWriter(self, self._chan, EXTENDED_DATA_STDERR)
        assert self._conn is not None
        handler = self._start_process(stdin, stdout, stderr)
        assert handler is not None
        self._conn.create_task(handler, stdin.logger)


class Shells:
    """Runs each ssh channel's program as `user` in `root` and remembers what it started.

    Args:
        user: who the programs run as.
        root: their working directory.
        env: extra environment variables for every session.
        sftp_server: path of OpenSSH's sftp-server binary.
    """

    def __init__(self, user: User, root: str, env: Mapping[str, str], sftp_server: str) -> None:
        self.user, self.root, self.env, self.sftp_server = user, root, dict(env), sftp_server
        #: live session leaders, by pid
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        #: every session id created since the last `forget_ended()` (sid == leader pid)
        self.session_ids: set[int] = set()
        self._serving: set[asyncio.Task[Any]] = set()
        #: why no program may start now (set by the workspace while grading), or None
        self.refusal: str | None = None

    def new_channel(self) -> ChannelProcess:
        """The session object for a new ssh channel (`SSHServer.session_requested`)."""
        return ChannelProcess(self.serve)

    def forget_ended(self) -> None:
        """Drop the ids of sessions whose leader is gone (after their processes were killed)."""
        self.session_ids &= set(self.children)

    async def wait_idle(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for every channel being served to finish."""
        if self._serving:
            await asyncio.wait(set(self._serving), timeout=timeout)

    async def serve(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        """Run one channel to completion; any failure becomes exit status 255."""
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        try:
            code = await self._session(process)
        except (asyncssh.Error, ConnectionError) as exc:
            log.debug("ssh session ended by its client: %s", exc)
            code = 255
        except Exception as exc:  # the client sees a failed command, the server lives on
            log.exception("ssh session failed")
            with contextlib.suppress(Exception):
                process.stderr.write(f"hud: session failed: {exc}\n".encode())
            code = 255
        with contextlib.suppress(Exception):
            # Detach stdin now, so asyncssh registers the pipe's close before the
            # wait_closed() below (on channel close it may register it too late).
            await process.redirect_stdin(asyncssh.DEVNULL)
        with contextlib.suppress(Exception):
            process.exit(code)
        # lets asyncssh finish closing the redirected pipes (its cleanup tasks)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)

    def _spawn(self, argv: list[str], *, term: str | None, **popen: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            self.user.argv(argv),
            env=self.user.environment(term=term, extra=self.env),
            cwd=self.root,
            close_fds=True,
            **popen,
        )
        self.children[proc.pid] = proc
        self.session_ids.add(proc.pid)
        return proc

    async def _session(self, process: asyncssh.SSHServerProcess[bytes]) -> int:
        if self.refusal is not None:
            process.stderr.write(f"hud: {self.refusal}\n".encode())
            return 1
        subsystem = process.subsystem
        if subsystem is not None and subsystem != "sftp":
            process.stderr.write(f"hud: unknown subsystem {subsystem!r}; only 'sftp'\n".encode())
            return 1
        term = process.term_type if subsystem is None else None
        if subsystem == "sftp":
            argv = [self.sftp_server, "-d", self.root]
        elif process.command is not None:
            argv = [self.user.shell, "-c", process.command]
        else:
            argv = [self.user.shell, "-l"]
        files: list[IO[bytes]] = []
        proc: subprocess.Popen[bytes] | None = None
        try:
            if term:
                master, slave = os.openpty()
                try:
                    if self.user.switch:
                        os.fchown(slave, self.user.uid, -1)
                    # setsid(1) does not fork (the child is no group leader): the pty
                    # becomes the new session's controlling terminal, so ^C and jobs work.
                    proc = self._spawn([program("setsid"), "--ctty", *argv], term=term,
                                       stdin=slave, stdout=slave, stderr=slave)
                finally:
                    os.close(slave)
                files = [os.fdopen(os.dup(master), "wb", buffering=0), os.fdopen(master, "rb", buffering=0)]
                await process.redirect(stdin=files[0], stdout=files[1])
            else:
                proc = self._spawn(argv, term=None, start_new_session=True, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL if subsystem else subprocess.PIPE)
                files = [f for f in (proc.stdin, proc.stdout, proc.stderr) if f is not None]
                # One EOF for the channel, after both streams: EOF in ssh ends stdout and
                # stderr together, so neither stream may send it on its own.
                await process.redirect(stdin=proc.stdin)
                await process.redirect(stdout=proc.stdout, stderr=proc.stderr, send_eof=False)
            code = await self._wait_or_hang_up(process, proc)
            if code is None:
                return 255  # the client went away; nobody is left to read an exit status
            if term:
                # What the shell wrote before exiting is still in the pty; background jobs
                # holding it open are hung up when the master closes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.stdout.drain(), DRAIN_TIMEOUT)
            else:
                await process.stdout.drain()
                await process.stderr.drain()
            return code
        finally:
            for handle in files:
                with contextlib.suppress(OSError):
                    handle.close()
            if proc is not None:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await wait_exit(proc)
                self.children.pop(proc.pid, None)

    async def _wait_or_hang_up(
        self, process: asyncssh.SSHServerProcess[bytes], proc: subprocess.Popen[bytes]
    ) -> int | None:
        """The exit status, or None if the channel closed first (the session is hung up)."""
        exited = asyncio.ensure_future(wait_exit(proc))
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            await asyncio.wait({exited, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if exited.done():
            return exited.result()
        for sig in (signal.SIGHUP, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), HANGUP_GRACE)
                break
        await exited
        return None


class ConnectionPolicy(asyncssh.SSHServer):
    """Per-connection policy: public-key auth for one login name, nothing else.

    Args:
        shells: runs the connection's sessions.
        login: the only login name accepted.
        authorized: the only key accepted.
        connections: the open connections, kept current (the workspace closes them).
    """

    def __init__(self, shells: Shells, login: str, authorized: asyncssh.SSHAuthorizedKeys,
                 connections: set[asyncssh.SSHServerConnection]) -> None:
        self._shells, self._login, self._authorized = shells, login, authorized
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)

    def session_requested(self) -> ChannelProcess:
        # While grading, the channel opens but its shell, exec or sftp request is answered
        # with the reason and exit status 1 (see `Shells.refusal`): a refused channel open
        # would show the reason only at OpenSSH's LogLevel INFO and above.
        return self._shells.new_channel()

    def begin_auth(self, username: str) -> bool:
        # A wrong login name gets no trusted keys at all, so every key is refused.
        if self._conn is not None and username == self._login:
            self._conn.set_authorized_keys(self._authorized)
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


async def listen(sock: socket.socket, shells: Shells, *, login: str, host_key: str,
                 client_pubkey: str, connections: set[asyncssh.SSHServerConnection],
                 keepalive_interval: float, login_timeout: float) -> asyncssh.SSHAcceptor:
    """Serve ssh on the listening `sock`: `host_key` (OpenSSH private key) identifies the
    server, `client_pubkey` (OpenSSH public key line) is the one key allowed in as `login`.

    Raises:
        asyncssh.KeyImportError: a key is not in OpenSSH format.
    """
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    server_key = asyncssh.import_private_key(host_key)
    authorized = asyncssh.import_authorized_keys(client_pubkey)
    return await asyncssh.listen(
        sock=sock,
        server_factory=lambda: ConnectionPolicy(shells, login, authorized, connections),
        server_host_keys=[server_key],
        encoding=None,
        line_editor=False,
        agent_forwarding=False,
        x11_forwarding=False,
        keepalive_interval=keepalive_interval,
        keepalive_count_max=3,
        login_timeout=login_timeout,
    )
