"""Where the shipped `images/` and `templates/` folders are.

A wheel carries them as `hud/_assets/` (copied by setup.py); an editable install or a
source checkout has them at the repository root, next to `runtime/`.
"""

from __future__ import annotations

from pathlib import Path

from hud.errors import HudError

#: the `hud` package folder (this module lives in hud/build/)
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def asset_dir(name: str) -> Path:
    """Return the folder of a shipped asset tree (`images` or `templates`).

    Raises:
        HudError: the installation carries no such folder (a broken install).
    """
    for candidate in (_PACKAGE_DIR / "_assets" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise HudError(
        f"the hud installation has no {name}/ folder (looked in {_PACKAGE_DIR / '_assets'} "
        f"and {_PACKAGE_DIR.parent}); reinstall hud-python"
    )
