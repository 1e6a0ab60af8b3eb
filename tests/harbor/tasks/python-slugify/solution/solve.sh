#!/bin/bash
set -euo pipefail
cat > /app/textkit/slug.py <<'PY'
"""URL slugs."""

import re


def slugify(title: str) -> str:
    """Lower-case words of `title` joined by single dashes: "Hello, World!" -> "hello-world"."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
PY
