"""Whether a viewer serves a runs folder, so `hud eval` can print where to look.

`hud view` writes `.hud-view.json` in the folder it serves: its URL and its owner
(`hud.eval.owner`: host, pid and the pid's start time), and removes it when it stops.
`hud eval` prints the URL of its job when that owner is alive, else the command that
starts a viewer (and the install command when Jinja2, the `view` extra, is missing).
The file is in the runs folder, so it is untrusted like the rest: the URL must look
like one `hud view` writes and name the loopback, or it is ignored; the file is written
and read without following a symlink.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import re
import shlex
from pathlib import Path

from hud.eval.owner import owner_alive, this_owner
from hud.eval.traces import DEFAULT_ROOT, store_root

BEACON = ".hud-view.json"
_URL = re.compile(r"http://(?:([A-Za-z0-9.\-]+)|\[([0-9A-Fa-f:]+)\]):[0-9]{1,5}/")
#: a beacon is a few hundred bytes; more is not one
MAX_BEACON = 4096


def announce(root: Path, url: str) -> None:
    """Record that this process serves `root` at `url` (best effort: a read-only folder
    is served all the same, `hud eval` then prints the command instead). The record is
    written to a new file (never through a link planted in the folder) and renamed."""
    path = root / BEACON
    tmp = root / f".{BEACON}.{os.getpid()}"
    data = json.dumps({"url": url, "owner": this_owner()}).encode()
    with contextlib.suppress(OSError):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a leftover, or a planted link: the entry goes, not its target
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        tmp.replace(path)


def _record(path: Path) -> dict[str, object] | None:
    """The beacon in `path` when it is a JSON object (not followed if a link), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            record = json.loads(fh.read(MAX_BEACON))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def withdraw(root: Path) -> None:
    """Remove the record, if it is still this process's (anything else is left alone)."""
    path = root / BEACON
    record = _record(path)
    if record is not None and record.get("owner") == this_owner():
        with contextlib.suppress(OSError):
            path.unlink()


def running_url(root: Path) -> str | None:
    """The URL of the live viewer serving `root`, or None."""
    record = _record(root / BEACON)
    if record is None:
        return None
    url, owner = record.get("url"), record.get("owner")
    if not isinstance(url, str) or not isinstance(owner, str) or not loopback_url(url):
        return None
    return url if owner_alive(owner) else None


def loopback_url(url: str) -> bool:
    """Whether `url` is a viewer's URL on this machine: http://HOST:PORT/ with HOST
    127.0.0.0/8, [::1] or localhost (a runs folder must not send the user elsewhere)."""
    found = _URL.fullmatch(url)
    if found is None:
        return False
    host = found.group(1) or found.group(2)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def viewer_hint(job_id: str, root: Path | None = None) -> str:
    """One line for the end of `hud eval`: the job's page in the running viewer, or how
    to start one."""
    base = root or store_root()
    url = running_url(base)
    if url is not None:
        return f"view: {url}job/{job_id}"
    command = "hud view" if base == DEFAULT_ROOT or os.environ.get("HUD_RUNS_DIR") \
        else f"hud view {shlex.quote(str(base))}"
    if importlib.util.find_spec("jinja2") is None:
        return f"view: pip install 'hud-python[view]', then {command}"
    return f"view: {command}  (a local web viewer of the runs, screenshots and comparisons)"
