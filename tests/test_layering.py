"""The in-container side never reaches host-only code, and `hud task ...` stays light.

Two checks. A static one walks the imports of everything that runs inside a container
(tests/importkit.py: `ast`, transitively through hud's modules, function-level imports
included) and fails on any path to the host side. A dynamic one runs the fast
in-container commands and looks at `sys.modules`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.importkit import PROBE, ROOT, forbidden_imports, imports_of, module_file

#: what runs inside a container: the commands `hud serve`, `hud task`, `hud connect`,
#: `hud health`, `hud manifest` (health and manifest live in hud.cli.task), the daemon, the
#: grading sandbox, the graders library, the authoring API and every capability
IN_CONTAINER = sorted({
    "hud.cli.main", "hud.cli.serve", "hud.cli.task", "hud.cli.connect",
    "hud.environment", "hud.graders", "hud.robot.server",
    # an env made by `hud harbor import` loads these in the container
    "hud.harbor.env", "hud.harbor.verifier", "hud.harbor.config",
    *(f"hud.{folder}.{path.stem}" for folder in ("serve", "grading", "capabilities")
      for path in (ROOT / "runtime" / folder).glob("*.py") if path.stem != "__init__"),
})

#: the host side: image builds, evals, agents, and the libraries only they use
HOST_ONLY = ("hud.build", "hud.eval", "hud.agents", "rich", "anthropic", "openai", "google",
             "ray", "playwright", "hud.harbor.importer", "hud.harbor.exporter", "hud.harbor.base")

#: the host-only branches of in-container modules: ("module:function", host module) -> why
#: the import can only run on the host. Each entry must still be needed (a test checks).
ALLOWED: dict[tuple[str, str], str] = {
    ("hud.cli.task:_label_manifest", "hud.build.docker"):
        "`hud task list --image IMG` reads a built image's label through the docker module; "
        "it runs on the host (a container has no Docker), never on the `hud task` fast path",
    ("hud.cli.task:_export", "hud.eval.taskset"):
        "`hud task export SOURCE` reads an image's label, a container's manifest, a lock or "
        "task file through the eval's Taskset; it runs on the host, never on the fast path",
}


def _host_imports(roots: list[tuple[str, Path]],
                  allowed: dict[tuple[str, str], str] | None = None,
                  used: set[tuple[str, str]] | None = None) -> list[str]:
    return forbidden_imports(roots, HOST_ONLY, allowed, used)


def test_in_container_modules_never_reach_the_host_side() -> None:
    """No import path from the in-container side (commands, daemon, grading, graders,
    capabilities) leads to build, eval, agents, rich, provider SDKs, ray or playwright."""
    roots = [(name, module_file(name)) for name in IN_CONTAINER]
    missing = [name for name, path in roots if path is None]
    assert not missing, f"in-container modules without a source file: {missing}"
    assert _host_imports([(name, path) for name, path in roots if path is not None],
                         ALLOWED) == []


def test_every_allowed_host_import_is_still_needed() -> None:
    """Each ALLOWED entry matches an import that exists today (no stale exceptions)."""
    used: set[tuple[str, str]] = set()
    _host_imports([(name, path) for name in IN_CONTAINER if (path := module_file(name))],
                  ALLOWED, used)
    assert used == set(ALLOWED)


def test_an_allowance_covers_only_its_own_function(tmp_path: Path) -> None:
    """An exception for one function does not excuse the same import elsewhere."""
    module = tmp_path / "two.py"
    module.write_text("def listed():\n    import hud.eval\n\n\ndef other():\n"
                      "    import hud.eval\n")
    used: set[tuple[str, str]] = set()
    allowed = {("two:listed", "hud.eval"): "test"}
    assert _host_imports([("two", module)], allowed, used) == [
        f"hud.eval <- two ({tmp_path.name}/two.py:6)"]
    assert used == set(allowed)


def test_the_walk_covers_every_capability_and_command() -> None:
    """The roots include each capability module and each in-container command's module."""
    assert {"hud.capabilities.ssh", "hud.capabilities.mcp", "hud.capabilities.chromium",
            "hud.capabilities.desktop", "hud.robot.server", "hud.serve.daemon",
            "hud.grading.sandbox", "hud.cli.serve", "hud.cli.task",
            "hud.cli.connect"} <= set(IN_CONTAINER)
    from hud.cli.main import COMMANDS

    for command in ("serve", "task", "connect", "health", "manifest"):
        assert COMMANDS[command][0] in IN_CONTAINER, command


def test_walk_catches_a_host_import_inside_a_function(tmp_path: Path) -> None:
    """A module importing hud.eval in a function body is reported, with the line."""
    module = tmp_path / "bad.py"
    module.write_text("import json\n\n\ndef later():\n    from hud.eval import Taskset\n"
                      "    return Taskset\n")
    assert _host_imports([("bad", module)]) == [f"hud.eval <- bad ({tmp_path.name}/bad.py:5)",
                                                f"hud.eval.taskset <- bad ({tmp_path.name}/bad.py:5)"]


def test_walk_follows_hud_modules_transitively(tmp_path: Path) -> None:
    """Importing a hud module whose functions import the host side is reported through it."""
    module = tmp_path / "indirect.py"
    module.write_text("import hud.cli.eval\n")
    chains = _host_imports([("indirect", module)])
    assert any(chain.startswith("hud.agents <- hud.cli.eval (cli/eval.py:") and
               chain.endswith(f"<- indirect ({tmp_path.name}/indirect.py:1)") for chain in chains)


def test_walk_follows_lazy_exports_and_relative_imports(tmp_path: Path) -> None:
    """`from hud import attach` loads hud.clients.attach (PEP 562), and a relative import
    inside a package resolves against it."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("from .sibling import value\nfrom hud import attach\n")
    found = [name for name, _, _ in imports_of("pkg.mod", package / "mod.py")]
    assert "pkg.sibling" in found and "hud.clients.attach" in found


def test_type_checking_imports_are_not_runtime_imports(tmp_path: Path) -> None:
    """An import under `if TYPE_CHECKING:` loads nothing at run time, so it is allowed."""
    module = tmp_path / "typed.py"
    module.write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                      "    from hud.eval import Job\nelse:\n    import json\n")
    assert _host_imports([("typed", module)]) == []
    assert "json" in [name for name, _, _ in imports_of("typed", module)]


HEAVY = ("pydantic", "rich", "ray", "anthropic", "openai", "google.genai", "asyncssh", "mcp",
         "uvicorn", "httpx", "docker", "numpy", "asyncio")



@pytest.mark.parametrize("argv", [["task", "start", "x"], ["task", "grade", "--answer", "1"],
                                  ["task", "list"], ["connect", "--tunnel", "shell"], ["health"]])
def test_in_container_commands_import_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    """No pydantic, asyncio, provider SDKs or Docker helpers on the `hud task` path."""
    env = {"HUD_SOCKET": str(tmp_path / "none.sock"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], env=env,
                          capture_output=True, text=True, timeout=60)
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    loaded = [m for m in modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
              and any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []
