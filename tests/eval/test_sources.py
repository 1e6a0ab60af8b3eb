"""Where an eval's tasks come from: a built env directory gives its hud.lock.json's tasks
without importing the module; only the local placement imports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hud.errors import ConfigError, EnvLoadError
from hud.eval import DockerPlacement, Taskset

IMAGE_ID = "sha256:" + "12" * 32
#: an env module that must not be imported on this host
UNIMPORTABLE = "raise ImportError('the host imported the env module')\n"


def built(tmp_path: Path, tasks: list[dict] | None = None) -> Path:
    """An env directory as `hud build` leaves it, whose module cannot import here."""
    folder = tmp_path / "my-env"
    folder.mkdir()
    (folder / "env.py").write_text(UNIMPORTABLE)
    lock = {"tag": "my-env", "image": "my-env", "image_id": IMAGE_ID,
            "env": {"name": "letter-count", "version": "0.1.0"},
            "tasks": tasks if tasks is not None else [
                {"slug": "count_letter", "id": "count_letter", "args": {}, "description": None},
                {"slug": "count_letter-7723267a", "id": "count_letter",
                 "args": {"word": "raspberry"}, "description": None}]}
    (folder / "hud.lock.json").write_text(json.dumps(lock))
    return folder


def test_a_built_directory_lists_its_lock_without_importing(tmp_path: Path) -> None:
    """The lock's tasks, on the image it names, and the module is never imported."""
    tasks = Taskset.from_source(built(tmp_path))
    assert [(t.env, t.slug) for t in tasks] == [("letter-count", "count_letter"),
                                                ("letter-count", "count_letter-7723267a")]
    placement = tasks.placement(None)
    assert isinstance(placement, DockerPlacement) and placement.image == "my-env"


def test_the_directorys_own_module_is_the_directory(tmp_path: Path) -> None:
    """`hud eval DIR/env.py` on a built directory is `hud eval DIR`: the lock, no import."""
    folder = built(tmp_path)
    assert len(Taskset.from_source(folder / "env.py")) == 2


def test_only_the_local_placement_imports_a_built_directory(tmp_path: Path) -> None:
    """runtime="local" imports the module (here it fails, with its own error)."""
    with pytest.raises(EnvLoadError, match="the host imported the env module"):
        Taskset.from_source(built(tmp_path), runtime="local")


def test_a_lock_with_an_invalid_task_names_the_lock_and_the_fix(tmp_path: Path) -> None:
    """A hand-edited lock whose task has no id: ConfigError naming it and `hud build`."""
    folder = built(tmp_path, tasks=[{"slug": "x", "args": {}}])
    with pytest.raises(ConfigError, match=r"hud\.lock\.json lists an invalid task \(tasks\[0\]: "
                       r"id: Field required\).*run `hud build .*my-env` again"):
        Taskset.from_source(folder)
