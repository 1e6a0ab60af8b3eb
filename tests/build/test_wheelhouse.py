"""hud.build.wheelhouse: the two folders the base layer installs, and a cache that
concurrent builds can fill at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from hud.build import wheelhouse
from hud.build.wheelhouse import REQUIREMENTS, make_wheelhouse, requirements


def test_hud_wheel_goes_to_its_own_folder(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With `hud_dest`, the dependency folder holds no hud wheel and names hud's
    requirements in requirements.txt; the hud folder holds the hud wheel alone."""
    carried = tmp_path / "carried"
    carried.mkdir()
    (carried / "click-8.1.0-py3-none-any.whl").write_bytes(b"not read here")
    monkeypatch.setenv("HUD_WHEELHOUSE", str(carried))
    deps, hud = tmp_path / "wheelhouse", tmp_path / "hud-wheel"
    names = make_wheelhouse(deps, hud_dest=hud)
    hud_wheels = [p.name for p in hud.iterdir()]
    assert len(hud_wheels) == 1 and hud_wheels[0].startswith("hud_python-")
    assert sorted(p.name for p in deps.iterdir()) == ["click-8.1.0-py3-none-any.whl",
                                                      REQUIREMENTS]
    assert (deps / REQUIREMENTS).read_text().splitlines() == requirements(hud / hud_wheels[0])
    assert names == sorted(["click-8.1.0-py3-none-any.whl", hud_wheels[0]])


def test_concurrent_cache_fill_keeps_the_first_complete_entry(tmp_path: Path) -> None:
    """Two builds filling one cache entry: the second finds it complete, keeps it, and
    leaves no scratch folder behind."""
    cached = tmp_path / "cache" / "deps-abc"
    first, second = wheelhouse._scratch(cached), wheelhouse._scratch(cached)
    assert first != second
    (first / ".complete").write_text("first\n")
    (second / ".complete").write_text("second\n")
    wheelhouse._publish(first, cached, lambda entry: (entry / ".complete").is_file())
    wheelhouse._publish(second, cached, lambda entry: (entry / ".complete").is_file())
    assert (cached / ".complete").read_text() == "first\n"
    assert [p.name for p in cached.parent.iterdir()] == ["deps-abc"]


def test_incomplete_cache_entry_is_replaced(tmp_path: Path) -> None:
    """An entry left half-written (no completion mark) is replaced by a finished one."""
    cached = tmp_path / "cache" / "deps-abc"
    cached.mkdir(parents=True)
    (cached / "partial.whl").write_bytes(b"")
    finished = wheelhouse._scratch(cached)
    (finished / ".complete").write_text("done\n")
    wheelhouse._publish(finished, cached, lambda entry: (entry / ".complete").is_file())
    assert sorted(p.name for p in cached.iterdir()) == [".complete"]
