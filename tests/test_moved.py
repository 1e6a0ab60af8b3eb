"""Modules that moved to folders by side stay importable at their old paths, with a warning."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from hud.moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("hud.robot",)  # needs the robot extra; every other module imports with the core


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module_with_a_warning(old: str) -> None:
    """`import hud.<old>` warns with the new path and gives the very module at the new path."""
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old} moved to {MOVED[old]}")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])


def test_unknown_module_still_fails() -> None:
    """The finder answers only for the listed paths: a typo is still ModuleNotFoundError."""
    with pytest.raises(ModuleNotFoundError, match=r"hud\.cdpp"):
        importlib.import_module("hud.cdpp")


def test_an_environment_written_before_the_move_still_loads(tmp_path: Path) -> None:
    """An env importing `hud.cdp` (the round-1 browser template did) loads: `hud manifest`."""
    (tmp_path / "env.py").write_text(textwrap.dedent("""
        from hud import Environment
        from hud.cdp import CDPError
        from hud.rfb import RFBClient

        env = Environment(name="old-style")

        @env.template()
        async def hello():
            answer = yield f"say hi ({CDPError.__name__}, {RFBClient.__name__})"
            yield 1.0 if answer == "hi" else 0.0
    """))
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "manifest", "--module",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"old-style"' in done.stdout


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_the_project_itself_uses_no_old_path() -> None:
    """hud's own code, templates, tests and benches import the new paths (no warnings)."""
    offenders = []
    for top in ("runtime", "cli", "templates", "tests", "bench"):
        for path in (ROOT / top).rglob("*.py"):
            if path.name == "test_moved.py" or "__pycache__" in path.parts:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{line}: {name}"
                          for line, name in _imports(path) if name in MOVED]
    assert not offenders, "\n".join(offenders)


def test_every_module_imports_in_a_fresh_interpreter() -> None:
    """Each hud module imports first in a clean process: no cycle through a package's
    __init__ that a static graph could miss (`import hud.agents` half-initialised)."""
    names = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        if "__pycache__" in path.parts or "_assets" in path.parts:
            continue
        parts = path.relative_to(ROOT / "runtime").with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(("hud", *parts))
        if not name.startswith(OPTIONAL) and name != "hud.grading.harness":
            names.append(name)
    names += [f"hud.cli.{p.stem}" for p in sorted((ROOT / "cli").glob("*.py"))
              if p.stem != "__init__"]
    script = textwrap.dedent("""
        import importlib, sys, traceback
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m == "hud" or m.startswith("hud.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception:
                failed.append(name + ": " + traceback.format_exc(limit=2).splitlines()[-1])
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """)
    with warnings.catch_warnings():
        done = subprocess.run([sys.executable, "-c", script, *names], capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
