"""Resetting what the agent can write, as the agent: its workspace, scratch dirs and home.

Root never follows a path the agent can write. A root process that copies into, deletes
in or changes the mode of a directory the agent owns can be pointed anywhere by a symlink
the agent plants (or swaps in mid-walk): `shutil.copytree` as root once made the root-only
env folder world-readable and wrote files into /etc/ssl that way. So every step here that
touches an agent-writable path runs *as the agent* (`hud.capabilities.users`: `setpriv` to its uid):
whatever a symlink points at, the kernel checks the agent's own permissions, and the
worst a race can do is redirect the agent's work to somewhere the agent could already
write. Root only reads trusted, root-only sources (`tar -c` of the env's project folder)
and hands the bytes over a pipe.

- `empty(user, paths)`: `find PATHS -xdev -mindepth 1 -delete` as the agent, after making
  the agent's own read-only directories writable again. find never follows symlinks, and
  stays on each path's filesystem (a bind mount survives).
- `fill(user, root, source)`: `tar -c` as root on `source`, piped into `tar -x` as the
  agent in `root`, so everything extracted belongs to the agent.
- `clear_scratch(user, dirs, ...)`: empties the agent's share of world-writable scratch
  directories (/tmp, /var/tmp, /dev/shm, /run/lock, /dev/mqueue: POSIX message queues)
  and resets its home to /etc/skel.
  Paths registered with `hud.capabilities.users.spare_path` (the X display's socket) are kept.

Only a dedicated agent uid is reset this way: for the daemon's own user (`user=None`) the
"agent's files" would be the daemon's and the developer's, so callers skip it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Sequence

from hud.capabilities.programs import program
from hud.capabilities.users import ROOT_PATH, User, spared_paths
from hud.errors import ConfigError, InfraError
from hud.proc import Completed, arun

log = logging.getLogger("hud.capabilities.ssh")

#: world-writable directories the agent can leave files in (reset before each task)
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
SKEL = "/etc/skel"
STEP_TIMEOUT = 300.0
# Root's half of the copy: pack the trusted source, pipe it to the agent's `tar -x`. Every
# program is a trusted absolute path (hud.capabilities.programs), tar's passed in as $1.
_PACK = ('set -o pipefail; tar=$1; src=$2; shift 2; '
         '"$tar" -C "$src" --exclude=__pycache__ -cf - . | "$@"')


def _glob_quote(path: str) -> str:
    """`path` as a literal find -path pattern."""
    return "".join("\\" + c if c in "\\*?[" else c for c in path)


def _keep_args(starts: Sequence[str], keep: Iterable[str]) -> list[str]:
    args: list[str] = []
    for path in sorted(keep):
        if any(path == start or path.startswith(start.rstrip("/") + "/") for start in starts):
            args += ["!", "-path", _glob_quote(path), "!", "-path", _glob_quote(path) + "/*"]
    return args


async def as_user(user: User, argv: Sequence[str], *, timeout: float = STEP_TIMEOUT) -> Completed:
    """Run `argv` as `user` with its clean environment, from `/`.

    Raises:
        InfraError: it could not start or ran past `timeout`.
    """
    return await arun(user.argv(argv), timeout=timeout, env=user.environment(), cwd="/")


async def empty(user: User, paths: Sequence[str], *, keep: Iterable[str] = (),
                timeout: float = STEP_TIMEOUT) -> Completed:
    """Delete everything under each of `paths` that `user` may delete, as `user` (one find),
    keeping `keep`.

    Returns:
        find's result: a non-zero code means something could not be deleted (for a
        world-writable directory that is normal: other users' files stay).

    Raises:
        InfraError: find could not start or ran past `timeout`.
    """
    starts = [os.path.normpath(path) for path in paths]
    # First give back write and search permission on the user's own directories (a
    # `chmod 555` folder would otherwise keep its files through every reset, and a later
    # setup could fail on it). Pre-order, one chmod per locked directory, so find can then
    # descend into it; only the user's own, and as the user, so a symlink gains nothing.
    find = program("find")
    await as_user(user, [find, *starts, "-xdev", "-type", "d", "-user", str(user.uid),
                         "!", "-perm", "-u=rwx", "-exec", program("chmod"), "u+rwx", "{}", ";"],
                  timeout=timeout)
    return await as_user(user, [find, *starts, "-xdev", "-mindepth", "1",
                                *_keep_args(starts, keep), "-delete"], timeout=timeout)


async def fill(user: User, root: str, source: str | os.PathLike[str], *,
               timeout: float = STEP_TIMEOUT) -> None:
    """Copy the trusted directory `source` into `root`, extracted as `user`.

    `__pycache__` folders are left out; modes follow the source minus the umask; every
    file is owned by `user`; `root`'s own mode and owner stay as they are.

    Raises:
        ConfigError: `source` is not a directory.
        InfraError: packing or extracting failed (the message quotes tar's error).
    """
    src = os.fspath(source)
    if not os.path.isdir(src):
        raise ConfigError(f"cannot copy {src!r} into the workspace: it is not a directory; "
                          f"pass a folder of the env (e.g. Path(__file__).parent / 'project')")
    tar = program("tar")
    unpack = user.argv([tar, "-x", "-f", "-", "-C", root, "--no-same-owner",
                        "--no-same-permissions", "--no-overwrite-dir"])
    done = await arun([program("bash"), "-c", _PACK, "hud-fill", tar, src, *unpack],
                      timeout=timeout, env={"PATH": ROOT_PATH, "LANG": "C.UTF-8"}, cwd="/")
    if not done.ok:
        raise InfraError(f"copying {src!r} into {root!r} as {user.name} failed (exit "
                         f"{done.code}): {done.tail(5)}; the workspace root must belong to "
                         f"{user.name}")


async def clear_scratch(user: User, dirs: Sequence[str] = SCRATCH_DIRS, *,
                        home: bool = True, keep: Iterable[str] = (),
                        skel: str = SKEL) -> list[str]:
    """Remove the agent's files from `dirs` and reset its home to a copy of `skel`.

    Everything runs as `user`. Paths in `keep` and those registered with
    `hud.capabilities.users.spare_path` survive, with their parents (a workspace root in /tmp or under
    the home stays whole). The home is reset only when it is a directory the user owns
    and not itself at or under a kept path.

    Returns:
        The directories that were cleared.

    Raises:
        ValueError: `user` is not a dedicated uid (it would clear the daemon's files).
        InfraError: a step could not start or ran past its timeout.
    """
    if not user.dedicated:
        raise ValueError(f"refusing to clear the scratch files of {user.name!r} (uid "
                         f"{user.uid}): it is root or the daemon's own user")
    kept = {os.path.normpath(p) for p in keep} | spared_paths()
    cleared = [start for start in dict.fromkeys(os.path.normpath(p) for p in dirs)
               if os.path.isdir(start) and start not in kept]
    home_too = home and _resettable_home(user, kept)
    if home_too:
        cleared.append(os.path.normpath(user.home))
    if not cleared:
        return []
    # one find for all of them: each process start costs, and this runs on every task start
    done = await empty(user, cleared, keep=kept)
    if not done.ok:  # other users' files stay: expected in a world-writable directory
        log.debug("clearing %s as %s: %s", ", ".join(cleared), user.name, done.tail(3))
    if done.truncated:
        raise InfraError(f"clearing {', '.join(cleared)} as {user.name}: find wrote more than "
                         f"the output limit and was killed; they may not be clear")
    if home_too and os.path.isdir(skel):
        # plain -R: the home keeps its own mode; new files get skel's minus the umask
        copied = await as_user(user, [program("cp"), "-R", f"{skel}/.", user.home])
        if not copied.ok:
            log.warning("resetting %s from %s: %s", user.home, skel, copied.tail(3))
    return cleared


def _resettable_home(user: User, kept: set[str]) -> bool:
    home = os.path.normpath(user.home)
    try:
        info = os.lstat(home)
    except OSError:
        return False
    if home == "/" or not stat.S_ISDIR(info.st_mode) or info.st_uid != user.uid:
        return False
    # a home at or under a kept path (a workspace root, say) is that path's to keep
    return not any(home == p or home.startswith(p.rstrip("/") + "/") for p in kept)
