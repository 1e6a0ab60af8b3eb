"""hud init: rendering templates, and refusing bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hud.build.assets import asset_dir
from hud.build.scaffold import scaffold, templates
from hud.cli.main import cli
from hud.errors import ConfigError

LETTER_COUNT = '''\
from hud import Environment, graders
env = Environment(name="letter-count")

@env.template()
async def count_letter(word: str = "strawberry", letter: str = "r"):
    answer = yield f"How many '{letter}'s are in '{word}'? Reply with just the number."
    yield graders.exact_answer(answer, word.count(letter))

tasks = [count_letter(word=w) for w in ("strawberry", "raspberry", "blueberry")]
'''


def _manifest(directory: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "manifest", "--module",
                           str(directory)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_templates_ship_blank_and_coding_with_readmes() -> None:
    """Both shipped templates are listed and each has its own README."""
    found = templates()
    assert {"blank", "coding"} <= set(found)
    for meta in found.values():
        assert (meta.path / "README.md").is_file()


def test_blank_template_is_the_letter_count_env(tmp_path: Path) -> None:
    """`hud init letter-count --template blank` writes the README's code exactly (plus the
    reference solution the oracle agent uses)."""
    target, _ = scaffold(tmp_path / "letter-count", "blank")
    code = (target / "env.py").read_text()
    assert code.startswith(LETTER_COUNT)
    assert "@count_letter.solution" in code[len(LETTER_COUNT):]
    assert not (target / "template.json").exists()


def test_env_is_named_after_the_directory(tmp_path: Path) -> None:
    """The environment (and so the image) takes the new directory's name."""
    target, _ = scaffold(tmp_path / "my-env", "blank")
    assert _manifest(target)["env"]["name"] == "my-env"


def test_coding_template_lists_fix_bug(tmp_path: Path) -> None:
    """The coding template renders a loadable env whose task is fix_bug."""
    target, _ = scaffold(tmp_path / "coder", "coding")
    manifest = _manifest(target)
    assert [t["slug"] for t in manifest["tasks"]] == ["fix_bug"]
    assert (target / "project" / "stats").is_dir()
    assert "def hidden_cases" in (target / "env.py").read_text()  # drawn fresh in env.py


def test_default_template_is_coding(tmp_path: Path) -> None:
    """`hud init NAME` with no --template scaffolds the coding task (the headline flow)."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "my-env")])
    assert result.exit_code == 0, result.output
    assert "hud task start fix_bug" in result.output


def test_init_into_non_empty_directory_is_refused(tmp_path: Path) -> None:
    """A directory with files in it is never overwritten."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"is not empty \(notes.txt\)"):
        scaffold(tmp_path / "taken", "blank")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "keep me"


def test_init_into_empty_existing_directory_works(tmp_path: Path) -> None:
    """An existing but empty directory is fine."""
    (tmp_path / "empty").mkdir()
    target, _ = scaffold(tmp_path / "empty", "blank")
    assert (target / "env.py").is_file()


def test_unknown_template_lists_the_choices(tmp_path: Path) -> None:
    """An unknown template name fails and names the available ones."""
    with pytest.raises(ConfigError, match=r"unknown template 'nope'; choose one of blank, .*coding"):
        scaffold(tmp_path / "x", "nope")


def test_bad_name_is_refused(tmp_path: Path) -> None:
    """A name that cannot be an image name is refused before anything is written."""
    with pytest.raises(ConfigError, match="not usable as an image name"):
        scaffold(tmp_path / "My Env", "blank")
    assert not (tmp_path / "My Env").exists()


def test_cli_errors_exit_1_with_message(tmp_path: Path) -> None:
    """The CLI reports an unknown template as `error: ...` and exit code 1."""
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "x"), "--template", "nope"])
    assert result.exit_code == 1
    assert "error: unknown template 'nope'" in result.output


def test_cli_list_shows_templates() -> None:
    """`hud init --list` prints each template with its description."""
    result = CliRunner().invoke(cli, ["init", "--list"])
    assert result.exit_code == 0
    assert result.output.startswith("blank\t") and "\ncoding\t" in result.output


def test_templates_ship_inside_the_package_assets() -> None:
    """The templates folder is found through hud.build.assets (wheel or checkout)."""
    assert (asset_dir("templates") / "coding" / "env.py").is_file()
