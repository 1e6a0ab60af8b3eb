"""Build hook: ship `images/` and `templates/` inside the wheel as `hud/_assets/`.

Metadata lives in setup.cfg. The two folders sit at the repository root (the design
card fixes the layout), outside the `hud` package directory, so package_data cannot
reach them; this copies them into the build tree instead. Editable installs find them
at the repository root (see runtime/build/assets.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
ASSET_DIRS = ("images", "templates")


class BuildPyWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "hud" / "_assets"
        for name in ASSET_DIRS:
            dst = target / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(
                ROOT / name, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".hud")
            )


setup(cmdclass={"build_py": BuildPyWithAssets})
