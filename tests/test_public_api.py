"""The public surface: `hud.__all__` complete and sorted; every name importable."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path
from types import ModuleType

import hud


def test_all_is_sorted_and_importable() -> None:
    """Every exported name resolves, and the list is sorted."""
    assert hud.__all__ == sorted(hud.__all__)
    for name in hud.__all__:
        assert getattr(hud, name) is not None


def test_all_covers_every_public_class_of_the_exported_modules() -> None:
    """A public class in an exporting module that is missing from __all__ fails this."""
    import importlib

    modules = {importlib.import_module(m) for m in hud._EXPORTS.values()}
    for module in modules:
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_"):
                if module.__name__ in ("hud.messages",):
                    continue  # wire models: public through hud.messages, not the root
                assert name in hud.__all__, f"{module.__name__}.{name} is not exported"


def test_eval_and_agents_exports_are_sorted_and_resolve() -> None:
    """hud.eval and hud.agents export sorted, importable names."""
    import hud.agents
    import hud.eval

    for module in (hud.eval, hud.agents):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None


def _type_checked_exports(package: ModuleType) -> dict[str, str]:
    """name -> module of each `from M import N as N` under the package's `if TYPE_CHECKING:`."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module is not None
                for alias in stmt.names:
                    assert alias.asname == alias.name, f"{alias.name} is not re-exported"
                    found[alias.name] = stmt.module
    return found


def test_type_checkers_see_every_lazy_export_as_itself() -> None:
    """The names a type checker is shown in hud, hud.eval and hud.robot are the lazy
    table's, and each is the very object the package hands out at run time."""
    import hud.eval
    import hud.robot

    for package in (hud, hud.eval, hud.robot):
        shown = _type_checked_exports(package)
        assert sorted(shown) == sorted(package._EXPORTS) == package.__all__
        for name, module in shown.items():
            assert getattr(importlib.import_module(module), name) is getattr(package, name)
