"""Well-known paths of the runtime, shared by the daemon and its thin clients.

Kept free of heavy imports: `hud task start` imports this on every call.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_SOCKET = Path("/run/hud/control.sock")
ROOT_LOG = Path("/run/hud/serve.log")


def _user_runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "hud"
    return Path(f"/tmp/hud-{os.getuid()}")


def default_socket_path() -> Path:
    """`$HUD_SOCKET`, else /run/hud/control.sock for root, else a per-user path."""
    override = os.environ.get("HUD_SOCKET")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return ROOT_SOCKET
    return _user_runtime_dir() / "control.sock"


def default_log_path() -> Path | None:
    """Where `hud serve` mirrors its log: `$HUD_LOG`, else /run/hud/serve.log for root."""
    override = os.environ.get("HUD_LOG")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return ROOT_LOG
    return None
