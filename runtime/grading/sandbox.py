"""The grading sandbox: run the agent's code as `hud-grader` in a private folder, bounded.

Grading never trusts a result computed in a process that ran the agent's code. Graders
(hud.graders) run that code here and only ever take raw outputs back; the daemon holds the
expected values and compares. The sandbox makes running it safe for the daemon and keeps
what the code does at grade time from reaching the agent:

- **Identity.** The `hud-grader` account (created by the hud base image): neither the
  agent (it cannot write the agent's files, nor signal its processes) nor root, switched
  to with `User.argv` (hud.capabilities.users) and a clean environment from its passwd entry.
  `HUD_GRADER_USER` names another account; set to empty, runs use the daemon's own user
  with no isolation (a dev host without the account; the limits still apply). A missing
  account is a `ConfigError` naming the fix, never a silent downgrade.
- **A private folder**, `/var/lib/hud/grade/<random>` (the parent root-owned 0711, the
  folder 0700 and the grader's), into which root copies only the declared files, with no
  symlink followed (hud.nofollow). HOME and TMPDIR point there.
- **Bounds** on time, memory, processes, file size and output (hud.grading.bounded); at the end
  of a run, or when it is cut short, every process of the grading uid is killed. Before
  it, every process of a dedicated agent account is too (the workspace does so before
  grading already): none may race the copy or read what the grader writes.
- **Nothing survives.** Afterwards the private folder is removed (no symlink followed),
  and what the grading uid left or changed in world-writable places, the agent's home
  and the graded folder is deleted, as are its System V IPC objects (hud.grading.leftovers).
  Runs are serialized per event loop, since the kills and sweeps are by uid.

Not contained: the network. A container started with `--network none` closes that too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import secrets
import signal
import time
import weakref
from collections.abc import Sequence
from types import TracebackType

from hud import nofollow
from hud.capabilities.users import User, kill_processes, resolve_user
from hud.errors import ConfigError
from hud.grading import bounded, leftovers
from hud.grading.bounded import Limits, Outcome

log = logging.getLogger("hud.grading.sandbox")

GRADER_USER_ENV = "HUD_GRADER_USER"
DEFAULT_GRADER = "hud-grader"
GRADE_ROOT = "/var/lib/hud/grade"
SWEEP_MARGIN_NS = 1_000_000_000


def grader_user() -> User:
    """The account graders run as: `hud-grader`, or what `HUD_GRADER_USER` names.

    Raises:
        ConfigError: the account does not exist, is root or the agent, or the daemon is
            not root and so cannot switch to it.
    """
    name = os.environ.get(GRADER_USER_ENV, DEFAULT_GRADER)
    if name == "":
        return resolve_user(None)  # explicitly no isolation: the daemon's own user
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"grading user {name!r} does not exist here; the hud base image creates "
            f"'hud-grader' — on another host create it with `useradd --system "
            f"--no-create-home --shell /usr/sbin/nologin {name}`, or set {GRADER_USER_ENV}= "
            f"(empty) to grade as the daemon's own user without isolation"
        ) from None
    try:
        user = resolve_user(name)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (for grading: set {GRADER_USER_ENV}= (empty) to grade as "
                          f"the daemon's own user without isolation)") from None
    agent = _agent()
    if user.uid == 0 or (agent is not None and agent.switch and agent.uid == user.uid):
        raise ConfigError(
            f"grading user {name!r} (uid {user.uid}) is root or the agent's account; graders "
            f"need their own account: unset {GRADER_USER_ENV} to use 'hud-grader'"
        )
    return user


def _agent() -> User | None:
    """The agent's account (`agent`, or HUD_AGENT_USER), or None where there is none."""
    try:
        return resolve_user("agent")
    except ConfigError:
        return None


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    if loop not in _LOCKS:
        _LOCKS[loop] = asyncio.Lock()
    return _LOCKS[loop]


def _grade_root(user: User) -> str:
    if not user.dedicated:
        return os.environ.get("TMPDIR", "/tmp")
    os.makedirs(GRADE_ROOT, mode=0o711, exist_ok=True)
    st = os.lstat(GRADE_ROOT)
    if not os.path.isdir(GRADE_ROOT) or os.path.islink(GRADE_ROOT) or st.st_uid != 0:
        raise ConfigError(f"{GRADE_ROOT} must be a root-owned folder; remove it and retry")
    os.chmod(GRADE_ROOT, 0o711)
    return GRADE_ROOT


class Sandbox:
    """One grading run's private folder and identity; use as `async with Sandbox() as box`.

    Args:
        limits: the bounds of every run in this sandbox.
        sweep: folders (besides the world-writable ones and the agent's home) to clear of
            what the grader left, e.g. the folder being graded.
    """

    def __init__(self, limits: Limits | None = None, *, sweep: Sequence[str] = ()) -> None:
        self.limits = limits or Limits()
        self.sweep_roots = [*leftovers.WORLD_WRITABLE, *sweep]
        self.user: User | None = None
        self.path = ""
        self._root_fd = -1
        self._started = 0

    async def __aenter__(self) -> Sandbox:
        """Resolve the grading user, end the agent's and the grader's processes, create the
        private folder.

        Raises:
            ConfigError: the grading user is missing or unusable, or a tool is missing.
        """
        user = grader_user()
        bounded.check_tools()
        await _lock().acquire()
        # ctimes come from the kernel's coarse clock, a tick behind time_ns(): keep a margin
        self._started = time.time_ns() - SWEEP_MARGIN_NS
        self.user = user
        try:
            await asyncio.to_thread(self._prepare)
            base = _grade_root(user)
            name = f"hud-grade-{secrets.token_hex(8)}"
            os.mkdir(os.path.join(base, name), 0o700)
            self.path = os.path.join(base, name)
            self._root_fd = nofollow.open_dir(self.path)
            os.mkdir("tmp", 0o700, dir_fd=self._root_fd)
        except BaseException:
            await self._cleanup()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._cleanup()

    def _prepare(self) -> None:
        """End the agent's processes (none may watch or race the grade), record its home
        for the sweep, and end what the grading uid may still run."""
        agent = _agent()
        if agent is not None and agent.dedicated:
            kill_processes(uid=agent.uid)
            self.sweep_roots.append(agent.home)
        self._end_processes(None)

    def file(self, name: str) -> str:
        """The absolute path of `name` inside the private folder."""
        return os.path.join(self.path, name)

    async def copy_in(self, source: str, include: Sequence[str], dest: str) -> nofollow.Copied:
        """Copy the regular files under `source` matching `include` into folder `dest`.

        Raises:
            ValueError: a bad pattern or a relative `source`.
            hud.nofollow.Refused: `source` is missing or a symlink, or the files are over
                `Limits.files`.
        """
        os.mkdir(dest, 0o755, dir_fd=self._root_fd)
        fd = os.open(dest, nofollow.DIR_FLAGS, dir_fd=self._root_fd)
        try:
            return await asyncio.to_thread(nofollow.copy_matching, source, fd, include,
                                           max_bytes=self.limits.files)
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """Create file `name` in the private folder with `data`."""
        nofollow.write_new(self._root_fd, name, data, mode)

    async def run(self, argv: Sequence[str], *, stdin: bytes = b"", cwd: str = "") -> Outcome:
        """Run `argv` in the sandbox as the grading user, bounded by the sandbox's limits.

        Args:
            argv: the program and its arguments (looked up on a minimal PATH);
                `{result_fd}` becomes the number of the result channel's write end.
            stdin: bytes fed to standard input.
            cwd: working folder, relative to the private folder ("" for the folder itself).

        Raises:
            InfraError: the program could not be started at all.
        """
        assert self.user is not None, "use `async with Sandbox() as box`"
        await asyncio.to_thread(self._hand_over)
        env = self.user.environment(extra={"HOME": self.path, "TMPDIR": self.file("tmp")})
        return await bounded.run(self.user.argv(argv), limits=self.limits, env=env,
                                 cwd=os.path.join(self.path, cwd), stdin=stdin,
                                 end=self._end_processes)

    def _hand_over(self) -> None:
        """Give the private folder and everything copied into it to the grading user."""
        assert self.user is not None
        if not self.user.dedicated:
            return
        uid, gid = self.user.uid, self.user.gid

        def visit(fd: int, _here: os.stat_result, name: str, st: os.stat_result) -> bool:
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
            return True

        # root made every entry here itself and the grader has not run yet: nothing to race
        nofollow.walk(self._root_fd, visit)
        os.fchown(self._root_fd, uid, gid)

    def _end_processes(self, pid: int | None) -> None:
        assert self.user is not None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if self.user.dedicated:
            kill_processes(uid=self.user.uid)
        elif pid is not None:
            kill_processes(sessions=[pid])

    async def _cleanup(self) -> None:
        if self.user is None:
            return
        try:
            await asyncio.to_thread(self._clear)
        finally:
            self.user = None
            _lock().release()

    def _clear(self) -> None:
        assert self.user is not None
        self._end_processes(None)
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1
        if self.path:
            parent, name = os.path.split(self.path)
            base = nofollow.open_dir(parent)
            try:
                nofollow.remove_at(base, name)
            finally:
                os.close(base)
        if self.user.dedicated and self._started:
            left = leftovers.sweep(self.sweep_roots, uid=self.user.uid, gid=self.user.gid,
                                  since_ns=self._started)
            if left:
                log.info("grading sandbox: removed what the grader left: %s", ", ".join(left[:20]))
            leftovers.remove_ipc(self.user)

