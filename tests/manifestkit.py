"""Shared by the untrusted-manifest tests: a valid manifest with real keys, and edits of it.

The manifest has the shape the daemon answers `hello` with (an ssh workspace, MCP tools,
a VNC desktop), with a real ed25519 key pair made by asyncssh, so a test can change one
field into something hostile and see exactly that field refused.
"""

from __future__ import annotations

import copy
from typing import Any

import asyncssh

_KEY = asyncssh.generate_private_key("ssh-ed25519")
CLIENT_KEY = _KEY.export_private_key("openssh").decode()
HOST_PUBKEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()


def valid_manifest() -> dict[str, Any]:
    """A fresh copy of a manifest as a current daemon sends it."""
    return copy.deepcopy({
        "session_id": "s1",
        "protocol": "hud/1",
        "env": {"name": "caps", "version": "0.1.0", "layer": "base"},
        "bindings": [
            {"name": "shell", "protocol": "ssh/2", "url": "tcp://127.0.0.1:40001",
             "params": {"user": "agent", "host_pubkey": HOST_PUBKEY, "client_key": CLIENT_KEY,
                        "cwd": "/workspace"}},
            {"name": "tools", "protocol": "mcp/2025-11-25", "url": "tcp://127.0.0.1:40002",
             "params": {"path": "/mcp"}},
            {"name": "desktop", "protocol": "rfb/3.8", "url": "tcp://127.0.0.1:40003",
             "params": {"width": 1280, "height": 800, "display": ":1"}},
        ],
        "tasks": [{"slug": "fix", "id": "fix", "args": {}}],
        "templates": [],
    })


def with_field(path: str, value: Any) -> dict[str, Any]:
    """A valid manifest with the field at `path` (e.g. "bindings.0.params.user") set to
    `value`, or deleted when `value` is `DELETE`."""
    manifest = valid_manifest()
    *parents, last = path.split(".")
    node: Any = manifest
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return manifest


DELETE = object()
