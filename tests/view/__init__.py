"""Tests of `hud view`, the local web viewer."""
