"""Old import paths of modules that moved, still importable, with a DeprecationWarning.

Round 2 sorted `runtime/` into folders by side (serve/, grading/, capabilities/,
clients/, build/). An environment written before that (`from hud.cdp import CDPError`,
`from hud.rfb import RFBClient`) must keep loading: `hud` installs this finder on import,
and `import hud.cdp` then returns the module `hud.clients.cdp` itself (one module object,
not a copy) after warning once with the new path. Names that moved *between* modules
(the JSON-RPC codes, now in `hud.wire`) are not covered; the table lists modules only.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

# Plain classes at run time, importlib.abc's for the type checker: importlib.abc imports
# importlib.resources (~13 ms), and every `hud` process (`hud task start` in a
# container) imports this module.
if TYPE_CHECKING:
    from importlib.abc import Loader as _Loader
    from importlib.abc import MetaPathFinder as _MetaPathFinder
else:
    _Loader = _MetaPathFinder = object

#: old module path -> where it lives now
MOVED: dict[str, str] = {
    "hud.protocol": "hud.messages",
    "hud.daemon": "hud.serve.daemon",
    "hud.server": "hud.serve.connections",
    "hud.methods": "hud.serve.methods",
    "hud.sessions": "hud.serve.sessions",
    "hud.runner": "hud.serve.runner",
    "hud.loader": "hud.serve.loader",
    "hud.tunnel": "hud.serve.tunnel",
    "hud.stall": "hud.serve.stall",
    "hud.sandbox": "hud.grading.sandbox",
    "hud.bounded": "hud.grading.bounded",
    "hud.calls": "hud.grading.calls",
    "hud.leftovers": "hud.grading.leftovers",
    "hud.workspace": "hud.capabilities.ssh",
    "hud.shells": "hud.capabilities.shells",
    "hud.tools": "hud.capabilities.mcp",
    "hud.browser": "hud.capabilities.chromium",
    "hud.desktop": "hud.capabilities.desktop",
    "hud.users": "hud.capabilities.users",
    "hud.service": "hud.capabilities.service",
    "hud.scratch": "hud.capabilities.scratch",
    "hud.client": "hud.clients.control",
    "hud.channel": "hud.clients.channel",
    "hud.cdp": "hud.clients.cdp",
    "hud.page": "hud.clients.page",
    "hud.rfb": "hud.clients.rfb",
    "hud.remote": "hud.clients.attach",
    "hud.untrusted": "hud.clients.untrusted",
    "hud.images": "hud.build.layers",
    "hud.bootstrap": "hud.build.rootfs",
    "hud.wheelhouse": "hud.build.wheelhouse",
    "hud.scaffold": "hud.build.scaffold",
    "hud.assets": "hud.build.assets",
    "hud.agents.toolset": "hud.agents.tools.shell",
    "hud.agents.mcp_tools": "hud.agents.tools.mcp",
    "hud.agents.computer": "hud.agents.tools.computer",
}


class _Alias(_Loader):
    """Loads an old path as the module at its new path."""

    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """The default module creation."""

    def exec_module(self, module: ModuleType) -> None:
        """Warn, then put the module at the new path in `sys.modules` under the old name:
        the import system hands out what `sys.modules` holds after this returns, so both
        names are one module object (isinstance checks and module state agree)."""
        warnings.warn(f"{module.__name__} moved to {self.new}; import it from there",
                      DeprecationWarning, stacklevel=2)
        sys.modules[module.__name__] = importlib.import_module(self.new)


class MovedFinder(_MetaPathFinder):
    """Finds the old paths in `MOVED` (and nothing else)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder on `sys.meta_path` once (after the normal finders: a real module
    at an old path, should one appear, wins)."""
    # by name: a re-imported hud (tests clear sys.modules) has a new MovedFinder class
    if not any(type(finder).__name__ == "MovedFinder" for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
