"""One docker module: no module of runtime/ or cli/ but hud.build.docker starts a docker client.

Static: every module is parsed with `ast` and searched for the ways code has started
docker on its own before (`run(["docker", ...])`, `[self.docker, "exec", ...]`,
`create_subprocess_exec(docker, ...)`, `shlex.join([docker, ...])`,
`shutil.which("docker")`). The detector is tested on those shapes too, so the search
cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THE_MODULE = ROOT / "runtime" / "build" / "docker.py"
#: functions that start a process from their first argument (an argv or the program)
STARTERS = {"run", "arun", "Popen", "call", "check_call", "check_output",
            "create_subprocess_exec", "execv", "execvp", "execvpe", "spawnv", "spawnvp"}


def _names_docker(node: ast.AST) -> bool:
    """Whether `node` is the docker client: "docker" (or a path to it), a variable or
    attribute called docker, or a call of docker_bin()."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.rsplit("/", 1)[-1] == "docker"
    if isinstance(node, (ast.Name, ast.Attribute)):
        return _identifier(node) == "docker"
    return isinstance(node, ast.Call) and _identifier(node.func) == "docker_bin"


def _identifier(node: ast.AST) -> str:
    """`x` for `x` and for `a.b.x`; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def offences(source: str) -> list[str]:
    """Where `source` starts docker by hand, as `line N: what`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and _names_docker(node.elts[0]):
            found.append(f"line {node.lineno}: an argv that starts with the docker client")
        elif isinstance(node, ast.Call):
            name = _identifier(node.func)
            if name == "which" and node.args and _names_docker(node.args[0]):
                found.append(f"line {node.lineno}: which(docker) (use hud.build.docker.docker_bin)")
            elif name in STARTERS and node.args and _names_docker(node.args[0]):
                found.append(f"line {node.lineno}: {name}() starts the docker client")
    return found


def _modules() -> list[Path]:
    found = sorted([*(ROOT / "runtime").rglob("*.py"), *(ROOT / "cli").rglob("*.py")])
    return [path for path in found if path != THE_MODULE]


def test_only_the_docker_module_starts_docker() -> None:
    """No module under runtime/ or cli/ other than runtime/build/docker.py starts docker."""
    modules = _modules()
    assert len(modules) > 50  # the walk found the tree
    report = {str(path.relative_to(ROOT)): found for path in modules
              if (found := offences(path.read_text()))}
    assert report == {}


@pytest.mark.parametrize("source", [
    'run(["docker", "image", "inspect", image], timeout=30)',
    'await arun([self.docker, "rm", "-f", container], timeout=60)',
    'proc = await asyncio.create_subprocess_exec(docker, "exec", "-i", name)',
    'subprocess.Popen(("/usr/bin/docker", "ps"))',
    'proxy = shlex.join([docker, "exec", "-i", container, "hud", "connect"])',
    'argv = [docker_bin(), "logs", name]',
    'binary = shutil.which("docker") or "docker"',
    'os.execvp("docker", ["docker", "exec", "-it", name, "bash"])',
], ids=["literal", "attribute", "asyncio", "path", "shlex", "docker_bin", "which", "execvp"])
def test_the_detector_finds_each_shape(source: str) -> None:
    """Each way docker was once started by hand is reported."""
    assert offences(source)


def test_the_detector_lets_the_module_be_used() -> None:
    """Calls through hud.build.docker, and docs that mention docker, are not reported."""
    assert offences('"""Runs `docker exec -i C hud connect`."""\n'
                    'done = await hd.adocker("rm", "-f", container, binary=self.docker)\n'
                    'proxy = command_line("exec", "-i", name, binary=docker)\n'
                    'proc = await hd.spawn("exec", "-i", name)\n'
                    'labels = ["docker-compose", "x"]\n') == []
