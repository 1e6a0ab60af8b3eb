"""The slug rules, checked against the agent's textkit.slug."""

import os
import sys

import pytest

sys.path.insert(0, "/app")

from textkit.slug import slugify

CASES = [("Hello, World!", "hello-world"), ("  Rust & Go  ", "rust-go"), ("a--b", "a-b"),
         ("Already-a-slug", "already-a-slug"), ("!!!", "")]
if os.environ.get("SLUG_CASES") == "extended":  # [verifier] env reaches the tests
    CASES += [("Version 2.0 -- final", "version-2-0-final"), ("x", "x")]


@pytest.mark.parametrize(("title", "slug"), CASES)
def test_slugify(title, slug):
    assert slugify(title) == slug
