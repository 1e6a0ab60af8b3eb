"""hud.robot's public surface, and that it stays off hud's import-time path."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys

import pytest

import hud.robot

PROBE = "import json, sys, hud, hud.{module}; print(json.dumps(sorted(sys.modules)))"


def test_the_robot_extra_imports() -> None:
    """gymnasium and MuJoCo import here (else every other robot test is not collected)."""
    from .conftest import ROBOT_EXTRA_ERROR

    if ROBOT_EXTRA_ERROR is not None:
        if os.environ.get("CI"):  # scripts/setup installs the extra: missing is a failure
            pytest.fail(ROBOT_EXTRA_ERROR)
        pytest.skip(ROBOT_EXTRA_ERROR)


def test_all_is_sorted_and_every_name_resolves() -> None:
    """Every exported name resolves, and the list is sorted."""
    assert hud.robot.__all__ == sorted(hud.robot.__all__)
    for name in hud.robot.__all__:
        assert getattr(hud.robot, name) is not None


def test_all_covers_every_public_class_of_the_robot_modules() -> None:
    """A public class defined in an exporting module but missing from __all__ fails this."""
    for module in {importlib.import_module(m) for m in hud.robot._EXPORTS.values()}:
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_"):
                assert name in hud.robot.__all__, f"{module.__name__}.{name} is not exported"


def _modules_after(module: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_importing_hud_imports_no_simulator() -> None:
    """`import hud` (and the daemon's environment module) pulls in no numpy or gymnasium."""
    loaded = _modules_after("environment")
    assert not [m for m in loaded if m.split(".")[0] in ("numpy", "gymnasium", "mujoco", "msgpack")]


def test_the_codec_needs_no_gymnasium() -> None:
    """hud.robot.codec imports numpy and msgpack only, not gymnasium or mujoco."""
    loaded = _modules_after("robot.codec")
    assert not [m for m in loaded if m.split(".")[0] in ("gymnasium", "mujoco")]
