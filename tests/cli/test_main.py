"""Every command's --help runs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hud.cli.main import COMMANDS, cli


def _paths() -> list[list[str]]:
    import importlib

    paths: list[list[str]] = [[]]
    for name, (module, attr, _) in COMMANDS.items():
        try:
            command = getattr(importlib.import_module(module), attr)
        except ImportError:
            continue  # reported by test_every_registered_command_imports
        paths.append([name])
        for sub in getattr(command, "commands", {}):
            paths.append([name, sub])
    return paths


@pytest.mark.parametrize("path", _paths(), ids=lambda p: " ".join(p) or "hud")
def test_help(path: list[str]) -> None:
    """`hud ... --help` exits 0 and prints usage."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_every_registered_command_imports() -> None:
    """Each lazily registered command module exists and defines its command."""
    import importlib

    for name, (module, attr, _) in COMMANDS.items():
        assert hasattr(importlib.import_module(module), attr), name


def test_unknown_command_is_a_usage_error() -> None:
    """An unknown subcommand exits 2."""
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 2
