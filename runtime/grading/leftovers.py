"""What the grading user leaves behind, found and removed after every sandboxed run.

Code run at grade time can try to pass what it saw (the hidden inputs, the files copied
in) to the agent's next task: by writing it where the agent can read, in world-writable
places (/tmp, /var/tmp, /dev/shm, /run/lock, /dev/mqueue), in folders the agent made
world-writable in its home or workspace, into files the agent left writable, or into
System V shared memory, queues and semaphores. The agent's own processes are dead while
grading runs (the workspace sweeps them before grading), so whatever changed in those
places during the run, where the grader could write, was the grader's doing.

`sweep` walks the given roots without following symlinks (hud.nofollow.walk) and removes:
every entry the grading uid owns; every regular file it may write whose ctime is from the
run; every entry changed during the run in a folder it may write that is not sticky
(created, renamed or linked there). A folder it may write is descended into rather than
removed whole (in /tmp that is other users' folders). Permission bits only: ACLs granting
the grader write access elsewhere are not considered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Sequence

from hud.capabilities.programs import program
from hud.capabilities.users import User
from hud.errors import InfraError
from hud.nofollow import MAX_ENTRIES, Refused, open_dir, remove_at, walk
from hud.proc import run

log = logging.getLogger("hud.grading.leftovers")

WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")


def _writable_by(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def sweep(roots: Sequence[str], *, uid: int, gid: int, since_ns: int,
          max_entries: int = MAX_ENTRIES) -> list[str]:
    """Remove, under each of `roots`, what user `uid` (group `gid`) left since `since_ns`.

    Removed: every entry owned by `uid` (a directory with all it holds); and, changed
    (ctime) since `since_ns`, every regular file `uid` may write and every entry of a
    folder it may write that is not sticky (created, renamed or filled there). A root that is
    missing or a symlink is passed over; so is a tree over `max_entries` names, where only
    what was reached is swept.

    Returns:
        The paths removed (relative to their root, prefixed with it).
    """
    removed: list[str] = []
    #: (device, inode) of each folder reached -> its path, for the report and the log
    names: dict[tuple[int, int], str] = {}

    def visit(fd: int, here: os.stat_result, name: str, st: os.stat_result) -> bool:
        recent = st.st_ctime_ns >= since_ns
        open_folder = _writable_by(here, uid, gid) and not here.st_mode & stat.S_ISVTX
        is_dir = stat.S_ISDIR(st.st_mode)
        # a folder it may write is descended into rather than removed whole: /tmp's
        # children are many users' folders, changed by them while the grade ran
        # (a symlink's mode bits mean nothing; only a regular file keeps what is written)
        filled = stat.S_ISREG(st.st_mode) and _writable_by(st, uid, gid)
        left = recent and (open_folder or filled)
        where = names[(here.st_dev, here.st_ino)]
        if st.st_uid == uid or left:
            try:
                remove_at(fd, name)
            except OSError as exc:
                log.warning("could not remove %s/%s: %s", where, name, exc)
                return False
            removed.append(f"{where}/{name}")
            return False
        if is_dir:
            names[(st.st_dev, st.st_ino)] = f"{where}/{name}"
            return True
        return False

    for root in roots:
        try:
            top = open_dir(root)
        except (Refused, OSError):
            continue
        top_st = os.fstat(top)
        names[(top_st.st_dev, top_st.st_ino)] = root.rstrip("/") or "/"
        try:
            walk(top, visit, max_entries=max_entries)
        except (Refused, OSError) as exc:
            log.warning("sweeping %s stopped early: %s", root, exc)
        finally:
            os.close(top)
    return removed


def remove_ipc(user: User) -> int:
    """Delete the System V shared memory, queues and semaphores owned by `user`.

    `ipcrm` runs *as* `user`: only an object's owner (or CAP_SYS_ADMIN, which a container's
    root has not) may remove it. Returns how many objects were found.
    """
    found = 0
    for kind, flag in (("shm", "-m"), ("msg", "-q"), ("sem", "-s")):
        try:
            with open(f"/proc/sysvipc/{kind}") as handle:
                header, *rows = [line.split() for line in handle]
        except OSError:
            continue
        id_col = 1
        owners = [header.index(c) for c in ("uid", "cuid") if c in header]
        ids = [row[id_col] for row in rows if any(int(row[c]) == user.uid for c in owners)]
        found += len(ids)
        if ids:
            args = [part for object_id in ids for part in (flag, object_id)]
            with contextlib.suppress(InfraError):
                done = run(user.argv([program("ipcrm"), *args]), timeout=10,
                           env=user.environment(), cwd="/")
                if not done.ok:
                    log.warning("removing %s's System V %s objects: %s", user.name, kind,
                                done.tail(3))
    return found
