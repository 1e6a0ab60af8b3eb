"""Find and import an environment: a `.py` file, a directory, or `pkg.mod[:attr]`.

A directory means its `env.py` (or, for a package directory, its `__init__.py`). The
module's directory goes on sys.path so an environment can import its own helpers. The
environment is the `attr` named, else the module's `env`, else its only `Environment`.
A module-level `tasks` list becomes the manifest's task list.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from hud.environment import Environment
from hud.errors import EnvLoadError
from hud.task import Task

DEFAULT_FILES = ("env.py", "tasks.py")


def default_spec() -> str:
    """What `hud serve` loads with no argument: `$HUD_ENV`, else the current directory."""
    return os.environ.get("HUD_ENV") or "."


def stdlib_shadows(folder: str) -> list[str]:
    """The files in `folder` that Python would import in place of a standard-library
    module once the folder is first on sys.path (`NAME.py`, `NAME/__init__.py`, a
    compiled `NAME.*.so`), in name order."""
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return []
    suffixes = tuple(importlib.machinery.all_suffixes())
    found = []
    for entry in entries:
        if entry.endswith(suffixes):
            name = entry.split(".", 1)[0]
        elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
            name = entry
        else:
            continue
        if name in sys.stdlib_module_names:
            found.append(entry)
    return found


def _import_file(path: Path) -> ModuleType:
    parent = str(path.parent.resolve())
    clashes = stdlib_shadows(parent)
    if clashes:
        first = clashes[0].split(".", 1)[0]
        # hud's own code imports standard modules long after the environment loaded
        # (the grading sandbox at the first sandboxed grade, ssh and MCP at their first
        # client): with this folder first on sys.path it would get the author's file
        raise EnvLoadError(
            f"{parent} holds {', '.join(clashes)}, named like the standard library's "
            f"{', '.join(sorted({c.split('.', 1)[0] for c in clashes}))}: with the "
            f"environment's folder first on sys.path, Python would import it in place of "
            f"the standard module, for hud's own code too (grading, ssh, MCP); rename it "
            f"(e.g. {first} -> {first}_data) and update its imports")
    if parent not in sys.path:
        sys.path.insert(0, parent)
    name = path.stem if path.name != "__init__.py" else path.parent.name
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[parent] if path.name == "__init__.py" else None
    )
    if spec is None or spec.loader is None:
        raise EnvLoadError(f"cannot import {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _resolve_path(spec: str) -> tuple[Path | None, str | None]:
    """For a filesystem spec, the file to import and the attr; (None, None) otherwise."""
    attr = None
    target = spec
    if ":" in spec and not os.path.exists(spec):
        target, attr = spec.rsplit(":", 1)
    path = Path(target)
    if path.is_dir():
        for name in DEFAULT_FILES:
            if (path / name).is_file():
                return path / name, attr
        if (path / "__init__.py").is_file():
            return path / "__init__.py", attr
        raise EnvLoadError(
            f"no environment in directory {path.resolve()}: expected one of "
            f"{', '.join(DEFAULT_FILES)} (or pass FILE.py / package.module:attr)"
        )
    if path.suffix == ".py":
        if not path.is_file():
            raise EnvLoadError(f"environment file {path} does not exist")
        return path, attr
    return None, attr


def _pick(module: ModuleType, attr: str | None, where: str) -> Environment:
    if attr is not None:
        value = getattr(module, attr, None)
        if not isinstance(value, Environment):
            raise EnvLoadError(
                f"{where}:{attr} is {type(value).__name__ if value is not None else 'missing'}, "
                f"not an Environment"
            )
        return value
    env = getattr(module, "env", None)
    if isinstance(env, Environment):
        return env
    found = {k: v for k, v in vars(module).items() if isinstance(v, Environment)}
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise EnvLoadError(
            f"{where} defines no Environment; create one: `env = Environment(name=...)`"
        )
    raise EnvLoadError(
        f"{where} defines several environments ({', '.join(sorted(found))}); name one as "
        f"{where}:NAME"
    )


def load_environment(spec: str | None = None) -> Environment:
    """Import the environment named by `spec` (see module docstring).

    Raises:
        EnvLoadError: the module is missing, fails to import (the traceback is attached),
            or holds no single Environment.
    """
    spec = spec or default_spec()
    path, attr = _resolve_path(spec)
    where = str(path) if path is not None else spec.split(":")[0]
    try:
        if path is not None:
            module = _import_file(path)
        else:
            module = importlib.import_module(spec.split(":")[0])
    except EnvLoadError:
        raise
    except BaseException as exc:  # SyntaxError, SystemExit in a module... all are load errors
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise EnvLoadError(
            f"importing {where} raised {type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        ) from exc
    env = _pick(module, attr, where)
    listed = getattr(module, "tasks", None)
    if not env.tasks and isinstance(listed, (list, tuple)) and all(
        isinstance(t, Task) for t in listed
    ):
        env.add_tasks(listed)
    return env
