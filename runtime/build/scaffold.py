"""`hud init NAME`: a new environment directory from one of the shipped templates.

Each folder under `templates/` is a runnable environment with a `template.json`
(`name`: the environment name used in its files, `description`, `example_task`).
Rendering copies the folder and replaces that name with the new directory's name in the
text files, so `hud init my-env && hud build my-env` makes an image called `my-env`. The
templates stay plain, runnable projects (no placeholder syntax to fill in).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hud.build.assets import asset_dir
from hud.errors import ConfigError

DEFAULT_TEMPLATE = "coding"
META_FILE = "template.json"
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".json", ".yaml", ".yml", ""}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_IGNORE = shutil.ignore_patterns(META_FILE, "__pycache__", "*.pyc", ".hud", "hud.lock.json")


@dataclass(frozen=True)
class TemplateMeta:
    """A shipped template: its folder name, the env name its files use, what it is."""

    key: str
    name: str
    description: str
    example_task: str
    path: Path


def templates() -> dict[str, TemplateMeta]:
    """The shipped templates by key (the folder name), sorted.

    Raises:
        HudError: the installation has no templates/ folder.
    """
    found: dict[str, TemplateMeta] = {}
    for folder in sorted(asset_dir("templates").iterdir()):
        meta = folder / META_FILE
        if not meta.is_file():
            continue
        data = json.loads(meta.read_text())
        found[folder.name] = TemplateMeta(folder.name, data["name"], data.get("description", ""),
                                          data.get("example_task", ""), folder)
    return found


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f"environment name {name!r} is not usable as an image name: use lowercase "
            f"letters, digits, '.', '_' and '-', starting with a letter or digit"
        )


def scaffold(target: str | Path, template: str = DEFAULT_TEMPLATE) -> tuple[Path, TemplateMeta]:
    """Render `template` into the new directory `target`; the env is named after it.

    Returns:
        The created directory and the template's metadata.

    Raises:
        ConfigError: unknown template, a bad name, or `target` exists and is not empty.
    """
    available = templates()
    if template not in available:
        raise ConfigError(f"unknown template {template!r}; choose one of "
                          f"{', '.join(sorted(available))} (`hud init --list`)")
    meta = available[template]
    target = Path(target)
    name = target.resolve().name
    _check_name(name)
    if target.exists():
        if not target.is_dir():
            raise ConfigError(f"{target} exists and is not a directory; pick another name")
        leftovers = sorted(p.name for p in target.iterdir())
        if leftovers:
            shown = ", ".join(leftovers[:5]) + (" ..." if len(leftovers) > 5 else "")
            raise ConfigError(f"{target} is not empty ({shown}); hud init will not overwrite "
                              f"files: pick a new directory or empty this one")
    shutil.copytree(meta.path, target, ignore=_IGNORE, dirs_exist_ok=True)
    if name != meta.name:
        _rename(target, meta.name, name)
    return target, meta


def _rename(root: Path, old: str, new: str) -> None:
    """Replace the template's env name with the new one in every text file."""
    for path in root.rglob("*"):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if old in text:
            path.write_text(text.replace(old, new))
