"""hud: build, serve, run and grade RL environments for AI agents.

Public names are exported lazily (PEP 562) so that `import hud.cli` — the in-container
path behind `hud task start` — does not import pydantic or anything else it does not use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> defining private module
_EXPORTS: dict[str, str] = {
    "Binding": "hud.messages",
    "attach": "hud.clients.attach",
    "ConfigError": "hud.errors",
    "DaemonUnavailable": "hud.errors",
    "DockerError": "hud.errors",
    "EnvLoadError": "hud.errors",
    "Environment": "hud.environment",
    "HudError": "hud.errors",
    "InfraError": "hud.errors",
    "Manifest": "hud.messages",
    "ProtocolError": "hud.errors",
    "RemoteEnv": "hud.clients.attach",
    "RemoteError": "hud.errors",
    "Task": "hud.task",
    "TaskError": "hud.errors",
    "Template": "hud.environment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hud' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
