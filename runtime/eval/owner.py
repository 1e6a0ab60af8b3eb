"""Who owns a rollout container: the process running its job, so `hud prune` can tell a
live job's containers from those a killed job left.

Each container carries `org.hud.owner=HOST/PID/START`: the host name, the pid of the
process that ran `docker run`, and that process's start time (clock ticks since boot,
field 22 of /proc/PID/stat), so a pid reused by another process does not pass for the
owner. Liveness can only be checked on the owner's own host.
"""

from __future__ import annotations

import functools
import os
import socket

OWNER_LABEL = "org.hud.owner"


def _start_ticks(pid: int) -> str | None:
    """The start time of process `pid` (field 22 of /proc/PID/stat), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


@functools.cache
def this_owner() -> str:
    """This process as a container's owner: HOST/PID/START."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid) or '?'}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process named by an owner label still runs: True or False on its own
    host; None when it is another host's (or the label is not one of ours)."""
    host, _, rest = owner.partition("/")
    pid, _, start = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit() or not start:
        return None
    return _start_ticks(int(pid)) == start
