"""The distribution ships every package of the source tree (setup.cfg lists them by hand)."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}


def _on_disk() -> set[str]:
    found = {"hud.cli"}
    for init in (ROOT / "runtime").rglob("__init__.py"):
        if "__pycache__" in init.parts or "_assets" in init.parts:
            continue
        parts = init.parent.relative_to(ROOT / "runtime").parts
        found.add(".".join(("hud", *parts)))
    return found


def test_setup_cfg_lists_every_package_folder() -> None:
    """A folder under runtime/ with an __init__.py that setup.cfg forgets is missing from the wheel."""
    missing = _on_disk() - _declared()
    assert not missing, f"add to setup.cfg [options] packages: {sorted(missing)}"


def test_setup_cfg_lists_no_package_that_is_gone() -> None:
    """A package setup.cfg names must exist, or the wheel build fails."""
    gone = _declared() - _on_disk()
    assert not gone, f"remove from setup.cfg [options] packages: {sorted(gone)}"
