"""The README points at things that exist: test files, and the hud modules it names."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: file names that look like module paths
FILES = {"hud.lock.json"}
DOCS = [ROOT / "README.md", *sorted((ROOT / "templates").glob("*/README.md"))]


def test_every_test_file_the_docs_cite_exists() -> None:
    """A test cited as proof of a claim (the reward-integrity table) must be there."""
    missing = [f"{doc.relative_to(ROOT)}: {path}" for doc in DOCS
               for path in sorted(set(re.findall(r"tests/[\w/]+\.py", doc.read_text())))
               if not (ROOT / path).is_file()]
    assert not missing, "\n".join(missing)


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_every_hud_name_the_docs_mention_resolves() -> None:
    """`hud.x.y.Name` in the docs imports (at its current path, not an old one)."""
    broken = []
    for doc in DOCS:
        for dotted in sorted(set(re.findall(r"`(hud(?:\.\w+)+)", doc.read_text())) - FILES):
            parts = dotted.split(".")
            for cut in range(len(parts), 0, -1):  # the longest importable module prefix
                try:
                    obj = importlib.import_module(".".join(parts[:cut]))
                except ImportError:
                    continue
                try:
                    for attr in parts[cut:]:
                        obj = getattr(obj, attr)
                except AttributeError:
                    broken.append(f"{doc.relative_to(ROOT)}: {dotted}")
                break
            else:
                broken.append(f"{doc.relative_to(ROOT)}: {dotted}")
    assert not broken, "\n".join(broken)
