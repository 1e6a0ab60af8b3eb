"""hud: build, serve, run and grade RL environments for AI agents.

Public names are exported lazily (PEP 562) so that `import hud.cli` — the in-container
path behind `hud task start` — does not import pydantic or anything else it does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hud import lazy, moved

__version__ = "0.1.0"

if TYPE_CHECKING:  # what a type checker sees; at run time `__getattr__` imports on first use
    from hud.clients.attach import RemoteEnv as RemoteEnv
    from hud.clients.attach import attach as attach
    from hud.environment import Environment as Environment
    from hud.errors import ConfigError as ConfigError
    from hud.errors import DaemonUnavailable as DaemonUnavailable
    from hud.errors import DockerError as DockerError
    from hud.errors import EnvLoadError as EnvLoadError
    from hud.errors import HudError as HudError
    from hud.errors import InfraError as InfraError
    from hud.errors import ProtocolError as ProtocolError
    from hud.errors import RemoteError as RemoteError
    from hud.errors import TaskError as TaskError
    from hud.messages import Binding as Binding
    from hud.messages import Manifest as Manifest
    from hud.task import Task as Task
    from hud.template import Template as Template

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

__all__ = [
    "Binding",
    "ConfigError",
    "DaemonUnavailable",
    "DockerError",
    "EnvLoadError",
    "Environment",
    "HudError",
    "InfraError",
    "Manifest",
    "ProtocolError",
    "RemoteEnv",
    "RemoteError",
    "Task",
    "TaskError",
    "Template",
    "attach",
]

__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())
moved.install()
