"""A static import walker for the layering tests: which modules can importing X load?

It reads source with `ast` and never imports what it reads. Every import statement
counts, at any depth (a function-level import runs when the function does), except under
`if TYPE_CHECKING:`; `from hud import Name` follows the package's lazy `_EXPORTS` table
(PEP 562). Only hud's own modules are walked into; other libraries are leaves.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: import package -> source folder (setup.cfg's package_dir); the longer prefix first
PACKAGES = {"hud.cli": ROOT / "cli", "hud": ROOT / "runtime"}


def module_file(name: str) -> Path | None:
    """The source file of hud module `name` (a package's __init__.py), or None."""
    for package, folder in PACKAGES.items():
        if name == package or name.startswith(package + "."):
            rest = name.removeprefix(package).strip(".")
            base = folder.joinpath(*rest.split(".")) if rest else folder
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    return candidate
            return None
    return None


def _lazy_exports(tree: ast.Module) -> dict[str, str]:
    """A package's PEP 562 table `_EXPORTS = {name: module}`, when it has one."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and node.value is not None:
            table = ast.literal_eval(node.value)
            assert isinstance(table, dict)
            return table
    return {}


def _runtime_imports(node: ast.AST, scope: str = "") -> Iterator[tuple[ast.stmt, str]]:
    """Every import statement at any depth with its enclosing function or class (`scope`,
    "" at module level), except those under `if TYPE_CHECKING:` (they never run)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, scope
    children: Iterable[ast.AST] = ast.iter_child_nodes(node)
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
        children = node.orelse
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        scope = f"{scope}.{node.name}" if scope else node.name
    for child in children:
        yield from _runtime_imports(child, scope)


def _with_parents(name: str) -> list[str]:
    """Importing a.b.c imports a and a.b first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imports_of(name: str, path: Path) -> list[tuple[str, int, str]]:
    """The modules that importing `name` (source at `path`) can load: each with the line
    and the function (or "") of its import statement."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int, str]] = []
    for node, scope in _runtime_imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(parent, node.lineno, scope) for alias in node.names
                      for parent in _with_parents(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found += [(parent, node.lineno, scope) for parent in _with_parents(base)]
            base_file = module_file(base)
            exports = _lazy_exports(ast.parse(base_file.read_text())) if base_file else {}
            for alias in node.names:
                if module_file(f"{base}.{alias.name}") is not None:
                    found.append((f"{base}.{alias.name}", node.lineno, scope))
                elif alias.name in exports:
                    found.append((exports[alias.name], node.lineno, scope))
    return found


def _allowance(importer: str, scope: str, imported: str,
               allowed: Mapping[tuple[str, str], str]) -> tuple[str, str] | None:
    """The `allowed` entry covering this import (the module or a package on its way)."""
    for key in allowed:
        where, module = key
        if where == f"{importer}:{scope}" and (module == imported
                                               or module.startswith(imported + ".")):
            return key
    return None


def forbidden_imports(roots: Iterable[tuple[str, Path]], forbidden: Iterable[str],
                      allowed: Mapping[tuple[str, str], str] | None = None,
                      used: set[tuple[str, str]] | None = None) -> list[str]:
    """Every import chain from a root to a `forbidden` module (or a module inside one),
    one line each, `forbidden <- importer (file:line) <- ... <- root`; none: clean.

    Follows hud modules only (other libraries are not walked into), breadth first, so each
    chain shown is a shortest one. An import that an `allowed` entry covers is neither
    reported nor followed; the entries that matched are added to `used`.
    """
    banned = tuple(forbidden)
    via: dict[str, tuple[str, Path, int] | None] = {}
    queue: deque[tuple[str, Path]] = deque()
    for name, path in roots:
        via[name] = None
        queue.append((name, path))
    bad: list[str] = []
    while queue:
        name, path = queue.popleft()
        for imported, line, scope in imports_of(name, path):
            if imported in via:
                continue
            host = any(imported == b or imported.startswith(b + ".") for b in banned)
            key = _allowance(name, scope, imported, allowed or {}) if host else None
            if key is not None:
                if used is not None:
                    used.add(key)
                continue
            via[imported] = (name, path, line)
            if host:
                bad.append(_chain(imported, via))
                continue
            target = module_file(imported)
            if target is not None:
                queue.append((imported, target))
    return bad


def _chain(name: str, via: dict[str, tuple[str, Path, int] | None]) -> str:
    steps = [name]
    link = via[name]
    while link is not None:
        importer, path, line = link
        shown = path.relative_to(ROOT if path.is_relative_to(ROOT) else path.parents[1])
        steps.append(f"{importer} ({shown}:{line})")
        link = via[importer]
    return " <- ".join(steps)


#: a script that runs `hud ARGV...` in-process and prints the modules it loaded (as JSON,
#: on stderr); format with `argv=[...]`
PROBE = """
import json, sys
sys.argv = ["hud", *{argv!r}]
try:
    from hud.cli.main import main
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
