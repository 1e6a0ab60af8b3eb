"""Well-known paths of the runtime, shared by the daemon and its thin clients.

Kept free of heavy imports: `hud task start` imports this on every call. pathlib is one
(~4.6 ms in a hud image, with the urllib.parse and ntpath it pulls in), so the thin
clients use the `str` forms (`default_socket`, `default_log`) and pathlib loads on first
use of a `Path` form or of the constants.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    ROOT_SOCKET: Path
    ROOT_LOG: Path

_ROOT = {"ROOT_SOCKET": "/run/hud/control.sock", "ROOT_LOG": "/run/hud/serve.log"}


def __getattr__(name: str) -> Path:
    """`ROOT_SOCKET` and `ROOT_LOG`, as `Path`s made on first use (PEP 562)."""
    if name in _ROOT:
        from pathlib import Path

        return Path(_ROOT[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _user_runtime_dir() -> str:
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return os.path.join(base, "hud")
    return f"/tmp/hud-{os.getuid()}"


def default_socket() -> str:
    """`$HUD_SOCKET`, else /run/hud/control.sock for root, else a per-user path."""
    override = os.environ.get("HUD_SOCKET")
    if override:
        return override
    if os.geteuid() == 0:
        return _ROOT["ROOT_SOCKET"]
    return os.path.join(_user_runtime_dir(), "control.sock")


def default_socket_path() -> Path:
    """`default_socket()` as a `Path`."""
    from pathlib import Path

    return Path(default_socket())


def default_log() -> str | None:
    """Where `hud serve` mirrors its log: `$HUD_LOG`, else /run/hud/serve.log for root."""
    override = os.environ.get("HUD_LOG")
    if override:
        return override
    if os.geteuid() == 0:
        return _ROOT["ROOT_LOG"]
    return None


def default_log_path() -> Path | None:
    """`default_log()` as a `Path` (None when there is none)."""
    from pathlib import Path

    log = default_log()
    return Path(log) if log is not None else None
