"""hud's modules import one another without a cycle, counting imports inside functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tests.importkit import PACKAGES, imports_of


def _modules() -> Iterator[tuple[str, Path]]:
    """Every module of hud and hud.cli with its source file."""
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            if package == "hud" and (name == "hud.cli" or name.startswith("hud.cli.")):
                continue  # runtime/ has no cli folder; this cannot happen, but be exact
            yield name, path


def _graph() -> dict[str, set[str]]:
    """Module -> the hud modules it imports (at any depth; `if TYPE_CHECKING:` excluded).

    An import of a module's own package (`from hud.agents.tools import Tool` inside
    hud.agents.tools.shell) is left out: importing a submodule runs its packages first
    whatever it imports, so that edge orders nothing. A package importing one of its own
    submodules does count.
    """
    modules = dict(_modules())
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {imported for imported, _, _ in imports_of(name, path)
                       if imported in modules and imported != name
                       and not name.startswith(imported + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_finder_sees_a_cycle() -> None:
    """The cycle finder reports a two-module cycle and leaves a chain alone."""
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert _cycles(graph) == [["a", "b"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_of_hud_imports_itself_through_others() -> None:
    """No import cycle among hud's modules (e.g. the cdp client and the page it makes)."""
    graph = _graph()
    assert "hud.clients.page" in graph["hud.clients.cdp"]  # the walk sees real imports
    cycles = _cycles(graph)
    shown = [" -> ".join([*cycle, cycle[0]]) + "  (edges: " + "; ".join(
        f"{m} imports {', '.join(sorted(graph[m] & set(cycle)))}" for m in cycle) + ")"
        for cycle in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(shown)
