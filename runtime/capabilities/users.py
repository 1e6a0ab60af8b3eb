"""Who the agent's processes run as: the workspace user, its clean environment, its processes.

Capabilities (the ssh workspace, later chromium) start programs on the agent's behalf. They
all go through this module so that the same four promises hold everywhere:

- **Identity.** A `User` is resolved once from the passwd database. When it is not the
  daemon's own uid, argv gets a `setpriv --reuid --regid --init-groups` prefix, so the
  kernel sees a real login identity (supplementary groups included) and every permission
  check is the kernel's. `setpriv` rather than `preexec_fn`: it keeps fork+exec free of
  Python code in the child, which is unsafe once threads exist.
- **Trusted helpers.** `choom` and `setpriv` run as root, so they are never looked up in
  the child's PATH (for a Harbor env, the task image's, which may hold a folder the agent
  owns): `hud.capabilities.programs` resolves them once to root-owned absolute paths
  (hud's carried tools first).
- **Expendable before the daemon.** Before `setpriv`, a `choom -n 1000` prefix (still as
  root) gives the process, and every child (they inherit it), the highest OOM score: the
  kernel's OOM killer takes the agent's processes before `hud serve`. Where root holds
  CAP_SYS_RESOURCE, setting it also raises the floor, so the agent cannot lower it again;
  under Docker's default capabilities (no CAP_SYS_RESOURCE) the agent can lower it back
  down to the floor it inherited, the daemon's own score, never below.
- **A clean environment.** Built from the passwd entry only (HOME, USER, LOGNAME, SHELL,
  PATH, LANG, TERM for a pty); nothing of the daemon's environment is inherited, so tokens
  and `HUD_*` variables never reach the agent.
- **Ending what the agent started.** A dedicated uid is swept by uid (that also catches
  processes that called `setsid` or double-forked), sparing the sessions of services the
  environment itself runs as that user (`spare_session`: chromium, the X display). The
  daemon's own identity cannot be swept that way, so for `user=None` the caller passes
  the session ids it created. Files such a service keeps where the agent can also write
  (the X display's socket in /tmp/.X11-unix) are registered with `spare_path`, so the
  reset of the agent's scratch space between tasks keeps them.

`user=None` means "the daemon's own user": what tests on a host without an `agent` account
use. It is an explicit choice, never a fallback for a missing user.
"""

from __future__ import annotations

import os
import pwd
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hud.capabilities.programs import program
from hud.errors import ConfigError

ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"
SETPRIV = "setpriv"
CHOOM = "choom"
#: the OOM score adjustment of every process started as a `User` (the maximum: killed first)
OOM_SCORE_ADJ = 1000
KILL_ROUNDS = 20


@dataclass(frozen=True)
class User:
    """A login identity from the passwd database.

    Attributes:
        name: login name, e.g. "agent".
        uid: numeric user id.
        gid: primary group id.
        home: home directory.
        shell: login shell (falls back to /bin/sh when the entry has none).
        switch: whether spawning as this user needs a uid change (False for the daemon's
            own user).
    """

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    switch: bool

    @property
    def dedicated(self) -> bool:
        """Whether every process of this uid belongs to the agent (safe to sweep by uid)."""
        return self.switch and self.uid != 0

    def environment(
        self, *, term: str | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A login environment for this user; nothing is taken from the daemon's own.

        Args:
            term: the TERM value when the process gets a pseudo-terminal.
            extra: variables the environment author adds (applied last).
        """
        env = {
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "SHELL": self.shell,
            "PATH": ROOT_PATH if self.uid == 0 else USER_PATH,
            "LANG": "C.UTF-8",
        }
        if term:
            env["TERM"] = term
        if extra:
            env.update(extra)
        return env

    def argv(self, argv: Iterable[str]) -> list[str]:
        """`argv` prefixed so that it runs as this user, with OOM score `OOM_SCORE_ADJ`.

        `choom` comes first, while still root, so the score is set with the daemon's
        privileges; `setpriv` then switches the uid. For the daemon's own user `argv` is
        returned unchanged (no isolation is asked for; a missing program stays a
        FileNotFoundError from the spawn). Both helpers are trusted absolute paths
        (`hud.capabilities.programs`), never looked up in the child's PATH; `argv[0]` is
        looked up by setpriv after the switch, as the user, in its PATH.

        Raises:
            InfraError: no trusted `choom` or `setpriv` is installed.
        """
        argv = list(argv)
        if not self.switch:
            return argv
        return [program(CHOOM), "-n", str(OOM_SCORE_ADJ), "--", program(SETPRIV),
                f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", *argv]


DEFAULT_AGENT = "agent"
AGENT_USER_ENV = "HUD_AGENT_USER"


def resolve_user(name: str | None) -> User:
    """Look up `name` in the passwd database; `None` is the daemon's own user.

    Raises:
        ConfigError: the user does not exist, or the daemon is not root and so cannot
            switch to it.
    """
    euid = os.geteuid()
    if name == DEFAULT_AGENT and AGENT_USER_ENV in os.environ:
        # a dev host without the image's `agent` account: HUD_AGENT_USER names another
        # login, or is empty for the daemon's own user (local placement, no isolation)
        name = os.environ[AGENT_USER_ENV] or None
    if name is None:
        entry = pwd.getpwuid(euid)
    else:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(
                f"user {name!r} does not exist here (not in /etc/passwd); the hud base image "
                f"creates 'agent' (uid 1000) — add it with `useradd -m {name}`, or pass "
                f"user=None to run as the daemon's own user"
            ) from None
    switch = entry.pw_uid != euid
    if switch and euid != 0:
        raise ConfigError(
            f"running as user {entry.pw_name!r} (uid {entry.pw_uid}) needs a root daemon, but "
            f"hud serve runs as uid {euid}; run it as root (the image's default) or pass "
            f"user=None to run as the daemon's own user"
        )
    return User(
        name=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        home=entry.pw_dir or "/",
        shell=entry.pw_shell or "/bin/sh",
        switch=switch,
    )


def _proc_info(pid: int) -> tuple[str, int, set[int]] | None:
    """(state, session id, {real, effective uid}) of a live pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields start after the last ')'
    fields = stat[stat.rindex(b")") + 2 :].split()
    uids: set[int] = set()
    for line in status.splitlines():
        if line.startswith(b"Uid:"):
            uids = {int(value) for value in line.split()[1:3]}
            break
    return fields[0].decode(), int(fields[3]), uids


# Sessions of long-lived services started as the agent's user on the environment's behalf
# (chromium, the X display): a sweep by uid spares them. See `spare_session`.
_SPARED: set[int] = set()


def spare_session(sid: int) -> None:
    """Exempt session `sid` (a service such as chromium running as the agent's user) from
    sweeps by uid; `release_session` undoes it when the service stops."""
    _SPARED.add(sid)


def release_session(sid: int) -> None:
    """Make session `sid` subject to sweeps by uid again."""
    _SPARED.discard(sid)


# Files such services keep in a directory the agent can write: see `spare_path`.
_SPARED_PATHS: set[str] = set()


def spare_path(path: str | os.PathLike[str]) -> None:
    """Keep `path` (and everything under it) when the agent's scratch directories are
    reset between tasks: a file a service running as the agent's user needs, such as the
    X display's socket in /tmp/.X11-unix. `release_path` undoes it."""
    _SPARED_PATHS.add(os.path.normpath(os.path.abspath(path)))


def release_path(path: str | os.PathLike[str]) -> None:
    """Let the reset between tasks remove `path` again."""
    _SPARED_PATHS.discard(os.path.normpath(os.path.abspath(path)))


def spared_paths() -> frozenset[str]:
    """The paths registered with `spare_path` (absolute, normalized)."""
    return frozenset(_SPARED_PATHS)


def _matching_pids(uid: int | None, sessions: frozenset[int]) -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        info = _proc_info(int(entry))
        if info is None or info[0] in ("Z", "X"):
            continue
        _, session, uids = info
        if session in sessions or (uid is not None and uid in uids and session not in _SPARED):
            found.append(int(entry))
    return found


def kill_processes(*, uid: int | None = None, sessions: Iterable[int] = ()) -> int:
    """SIGKILL every live process of `uid` and every process in one of `sessions`.

    Processes of `uid` in a session exempted with `spare_session` are left alone.

    Repeats until a sweep finds nothing (a process forking during the sweep is caught by
    the next round). Zombies are skipped: their parents reap them.

    Returns:
        How many processes were signalled.

    Raises:
        ValueError: `uid` is root or the daemon's own uid (that would kill the daemon).
    """
    if uid is not None and uid in (0, os.getuid(), os.geteuid()):
        raise ValueError(f"refusing to kill every process of uid {uid}: it is root or the daemon's own")
    session_set = frozenset(sessions)
    signalled: set[int] = set()
    for _ in range(KILL_ROUNDS):
        pids = _matching_pids(uid, session_set)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                signalled.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return len(signalled)
