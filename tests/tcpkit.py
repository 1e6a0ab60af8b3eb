"""Shared by the TCP and fuzz tests: a free port, a process's RSS, a private token file."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """The process's resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def token_file(directory: Path, token: str) -> Path:
    """A token file readable by its owner only."""
    path = directory / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path
