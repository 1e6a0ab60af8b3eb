"""The hud wheel ships the viewer's templates, stylesheet and script (package data)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from hud.build.wheelhouse import make_wheelhouse
from hud.view.render import STATIC, TEMPLATES


def test_the_wheel_holds_every_template_and_static_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file under runtime/view/templates and static/ is in the wheel `hud build`
    and `pip wheel .` make, at hud/view/..."""
    carried = tmp_path / "carried"  # an empty carried wheelhouse: only hud's wheel is made
    carried.mkdir()
    monkeypatch.setenv("HUD_WHEELHOUSE", str(carried))
    make_wheelhouse(tmp_path / "deps", hud_dest=tmp_path / "hud")
    (wheel,) = (tmp_path / "hud").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"hud/view/{folder.name}/{path.name}" for folder in (TEMPLATES, STATIC)
              for path in folder.iterdir() if path.is_file()}
    assert len(wanted) >= 12 and wanted <= names, sorted(wanted - names)
