"""The programs hud itself runs as root, or runs to switch identity: trusted absolute paths.

The daemon is root, and the environment a child gets is not hud's to trust: for a Harbor
env it holds the task image's PATH, whose folders the build may have given to the agent
(a uv project's /app/.venv/bin inside the workdir). A helper run by bare name (`choom`,
`setpriv`, `timeout`, `bash`) is looked up in that PATH by the exec, so a program the
agent plants there would run as uid 0. So every program hud runs on its own behalf is
resolved here, once, to an absolute path, from trusted directories only:

    /opt/hud/tools    hud's own known-good tools, on a root the runtime was carried into
                      (hud.build.portable): first, so a busybox `setpriv` without
                      `--reuid` or a `timeout` without `--kill-after` is never used
    /usr/bin, /bin, /usr/sbin, /sbin

A candidate is accepted only if it is a regular executable file and every directory on
the way to it, each symbolic link on that way and the file itself belong to root and are
not writable by a group or by others: nobody but root can swap it. `/usr/local/*` is not
searched (Debian gives it to group `staff`; images install anything there).

What a program hud runs then runs in turn (test.sh under the image's PATH) is the task's
own code, not hud's: see README, "Harbor tasks".
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Sequence

from hud.errors import InfraError

#: hud's own tools on a root the runtime was carried into (hud.build.portable.PREFIX/tools)
CARRIED_TOOLS = "/opt/hud/tools"
#: where a hud helper is looked up, in order
TRUSTED_DIRS = (CARRIED_TOOLS, "/usr/bin", "/bin", "/usr/sbin", "/sbin")
#: the most symbolic links followed while checking one path (as the kernel's ELOOP)
MAX_LINKS = 40
#: the Debian package of each helper hud runs, for the error message
PACKAGES = {"setpriv": "util-linux", "choom": "util-linux", "prlimit": "util-linux",
            "ipcrm": "util-linux", "setsid": "util-linux", "timeout": "coreutils",
            "chmod": "coreutils", "cp": "coreutils", "find": "findutils", "tar": "tar",
            "bash": "bash", "xprop": "x11-utils", "xdotool": "xdotool"}


def _unsafe(st: os.stat_result, path: str, link: bool = False) -> str | None:
    """Why the entry `path` with status `st` is not trusted, or None."""
    if st.st_uid != 0:
        return f"{path} belongs to uid {st.st_uid}, not root"
    if not link and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'}"
    return None


def untrusted_reason(path: str, *, executable: bool = True) -> str | None:
    """Why the absolute `path` is not a trusted program (see the module docstring), or
    None when it is one: walked component by component with lstat, following each
    symbolic link (the link, the folders it leads through and its target are checked).
    With `executable=False` any kind of entry (a folder) may end the path."""
    if not path.startswith("/"):
        return f"{path} is not an absolute path"
    root = os.lstat("/")
    reason = _unsafe(root, "/")
    if reason:
        return reason
    current, pending, links = "/", [p for p in path.split("/") if p], 0
    while pending:
        name = pending.pop(0)
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current) or "/"
            continue
        candidate = os.path.join(current, name)
        try:
            st = os.lstat(candidate)
        except OSError as exc:
            return f"{candidate}: {exc.strerror}"
        if stat.S_ISLNK(st.st_mode):
            reason = _unsafe(st, candidate, link=True)
            links += 1
            if reason or links > MAX_LINKS:
                return reason or f"{path}: too many symbolic links"
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending = [p for p in target.split("/") if p] + pending
            continue
        reason = _unsafe(st, candidate)
        if reason:
            return reason
        if pending and not stat.S_ISDIR(st.st_mode):
            return f"{candidate} is not a directory"
        current = candidate
    final = os.lstat(current)
    if not executable:
        return None
    if not stat.S_ISREG(final.st_mode):
        return f"{path} is not a regular file"
    if not final.st_mode & stat.S_IXUSR:
        return f"{path} is not executable"
    return None


@functools.cache
def _resolve(name: str, dirs: tuple[str, ...]) -> str:
    refused: list[str] = []
    for folder in dirs:
        candidate = os.path.join(folder, name)
        if not os.path.lexists(candidate):
            continue
        reason = untrusted_reason(candidate)
        if reason is None:
            return candidate
        refused.append(reason)
    package = PACKAGES.get(name, name)
    seen = f" (refused: {'; '.join(refused)})" if refused else ""
    raise InfraError(f"no trusted {name!r} for hud to run: none in {', '.join(dirs)} is a "
                     f"root-owned executable that only root can change{seen}; install it "
                     f"(apt-get install {package}; the hud base image has it) or rebuild the "
                     f"image with `hud build` so that {CARRIED_TOOLS} carries it")


def program(name: str, dirs: Sequence[str] = TRUSTED_DIRS) -> str:
    """The absolute path of the trusted program `name` (resolved once, then cached).

    Args:
        name: a program name, no slash (`setpriv`, `timeout`, `bash`).
        dirs: the folders to look in, in order (`TRUSTED_DIRS`; tests pass others).

    Raises:
        ValueError: `name` holds a slash or is empty.
        InfraError: no folder holds a trusted program of that name (each candidate
            refused is named, with why).
    """
    if not name or "/" in name:
        raise ValueError(f"program name {name!r} must be a bare name such as 'setpriv'")
    return _resolve(name, tuple(dirs))


def forget() -> None:
    """Drop the cached paths (a test that installs or removes a program)."""
    _resolve.cache_clear()
