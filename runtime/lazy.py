"""Lazy public names for a package (PEP 562): a name's module is imported on first use.

    _EXPORTS = {"Environment": "hud.environment", ...}
    __getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())

`hud`, `hud.eval` and `hud.robot` export this way, so importing one of their modules (the
in-container `hud task` path, an agent reading `hud.eval.traces`) does not import every
other. Each keeps its `_EXPORTS` table literal: tests/importkit.py reads it statically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, table: Mapping[str, str], namespace: dict[str, Any],
            ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package` for the names in `table` (name ->
    defining module); a name, once imported, is kept in `namespace` (the package's
    globals) so the next lookup is a plain attribute."""

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(table))

    return getattr_, dir_
