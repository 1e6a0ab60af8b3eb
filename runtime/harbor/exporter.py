"""`hud harbor export ENV -o DIR`: one Harbor task folder per hud task Harbor can express.

What Harbor's format can hold is a fixed instruction, one container image built from a
Dockerfile, a shell verifier that writes a reward file, and a shell solution: the agent
gets a shell and nothing else. So a hud task is exported when it is one: a task of an
env made by `hud harbor import` (the template `hud.harbor.env` made from a Harbor
task). Its folder comes back verbatim (task.toml, instruction.md, tests/, solution/),
with the env's environment/ folder as its own, so export → import round-trips.

Every other task is refused, each with its reason:
- its prompt is made by Python setup code in the hud daemon, per rollout and per
  argument (a template's args, drawn inputs), where Harbor has one instruction.md;
- its reward is computed by Python grading code in the daemon (hud.graders, comparing
  with values the daemon keeps), where Harbor runs tests/test.sh in the container;
- it offers capabilities other than a shell (an MCP tool server, a browser over CDP, a
  VNC desktop, a robot), which a Harbor task has no place for.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hud.errors import ConfigError
from hud.harbor.config import ENVIRONMENT, TASKS_DIR, EnvSpec, read_spec
from hud.harbor.importer import is_harbor_env

LOCK_FILE = "hud.lock.json"
NOT_HARBOR = ("its prompt comes from the env's Python setup code and its reward from Python "
              "grading code in the hud daemon; Harbor's format holds a fixed instruction.md "
              "and a tests/test.sh that writes the reward")


@dataclass
class ExportResult:
    """The Harbor task folders written, and the tasks refused with why."""

    written: list[Path] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _listed_tasks(env_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(the env's tasks, its capabilities other than a shell), from the env module read on
    this host, else from its hud.lock.json (a built env whose module needs the image)."""
    from hud.build.env_image import host_manifest

    manifest, error = host_manifest(env_dir)
    lock: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        lock = json.loads((env_dir / LOCK_FILE).read_text())
    capabilities = [c for c in lock.get("capabilities", []) if c != "shell"]
    if manifest is not None:
        return list(manifest.get("tasks", [])), capabilities
    if lock.get("tasks"):
        return list(lock["tasks"]), capabilities
    raise ConfigError(f"cannot list the tasks of {env_dir}: its module does not import here "
                      f"({error.strip().splitlines()[-1] if error.strip() else 'no output'}) "
                      f"and it has no {LOCK_FILE}; build it first (`hud build {env_dir}`)")


def _reason(task: dict[str, Any], spec: EnvSpec | None, capabilities: list[str]) -> str | None:
    """Why `task` cannot be a Harbor task, or None when it can."""
    if spec is not None and task.get("id") in spec.tasks and not task.get("args"):
        return None
    reason = NOT_HARBOR
    if task.get("args"):
        reason += f"; it is template {task.get('id')!r} with arguments {task['args']}"
    if capabilities:
        reason += (f"; the env offers {', '.join(capabilities)} besides a shell, which a "
                   f"Harbor task has no place for")
    return reason


def export_env(env_dir: str | Path, out: str | Path) -> ExportResult:
    """Write one Harbor task folder under `out` per task of `env_dir` Harbor can express.

    Raises:
        ConfigError: `env_dir` is not an environment, `out` exists and is not empty, or
            no task can be expressed (each refused task is named with its reason).
    """
    env_dir = Path(env_dir)
    if not env_dir.is_dir():
        raise ConfigError(f"{env_dir} is not a directory; pass a hud environment directory")
    spec = read_spec(env_dir) if is_harbor_env(env_dir) else None
    tasks, capabilities = _listed_tasks(env_dir)
    result = ExportResult()
    exported: list[str] = []
    for task in tasks:
        reason = _reason(task, spec, capabilities)
        if reason is None:
            exported.append(str(task["id"]))
        else:
            result.refused[str(task.get("slug") or task.get("id"))] = reason
    if not exported:
        listed = "\n".join(f"  {slug}: {why}" for slug, why in result.refused.items())
        raise ConfigError(f"no task of {env_dir} can be written as a Harbor task:\n"
                          f"{listed or '  (it lists no tasks)'}")
    assert spec is not None  # only a Harbor env's tasks are exported
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty directory; choose a new -o, or "
                          f"remove it first")
    for template_id in exported:
        folder = spec.tasks[template_id]
        target = out / folder
        shutil.copytree(env_dir / TASKS_DIR / folder, target, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if spec.docker_image is None:
            shutil.copytree(env_dir / ENVIRONMENT, target / ENVIRONMENT, symlinks=True)
        result.written.append(target)
    return result
