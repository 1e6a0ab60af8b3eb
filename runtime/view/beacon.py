"""Whether a viewer serves a runs folder, so `hud eval` can print where to look.

`hud view` writes `.hud-view.json` in the folder it serves: its URL and its owner
(`hud.eval.owner`: host, pid and the pid's start time), and removes it when it stops.
`hud eval` prints the URL of its job when that owner is alive, else the command that
starts a viewer (and the install command when Jinja2, the `view` extra, is missing).
The file is in the runs folder, so it is untrusted like the rest: the URL must look
like one `hud view` writes, or it is ignored.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shlex
from pathlib import Path

from hud.eval.owner import owner_alive, this_owner
from hud.eval.traces import DEFAULT_ROOT, store_root

BEACON = ".hud-view.json"
_URL = re.compile(r"http://[A-Za-z0-9.\-]+:[0-9]{1,5}/|http://\[[0-9A-Fa-f:]+\]:[0-9]{1,5}/")


def announce(root: Path, url: str) -> None:
    """Record that this process serves `root` at `url` (best effort: a read-only folder
    is served all the same, `hud eval` then prints the command instead)."""
    path = root / BEACON
    tmp = root / f".{BEACON}.{os.getpid()}"
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps({"url": url, "owner": this_owner()}))
        tmp.replace(path)


def withdraw(root: Path) -> None:
    """Remove the record, if it is still this process's."""
    path = root / BEACON
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("owner") == this_owner():
            path.unlink()


def running_url(root: Path) -> str | None:
    """The URL of the live viewer serving `root`, or None."""
    try:
        record = json.loads((root / BEACON).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    url, owner = record.get("url"), record.get("owner")
    if not isinstance(url, str) or not isinstance(owner, str) or not _URL.fullmatch(url):
        return None
    return url if owner_alive(owner) else None


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
