"""Reading a Harbor task folder: what is taken from it, and each bad input named with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from hud.errors import ConfigError
from hud.harbor.config import read_spec, read_task, template_id
from tests.harbor.kit import copy_task, example


def test_an_example_task_is_read() -> None:
    """The instruction, the timeouts, the workdir and allow_internet come from the folder."""
    task = read_task(example("python-slugify"))
    assert task.name == task.id == "python-slugify"
    assert task.instruction.startswith("# Fix the slugs")
    assert (task.config.agent.timeout_sec, task.config.verifier.timeout_sec) == (120.0, 60.0)
    assert task.config.verifier.env == {"SLUG_CASES": "extended"}
    assert (task.config.environment.workdir, task.config.environment.allow_internet) == \
        ("/app", False)
    assert task.has_solution


def test_harbor_defaults_apply_to_an_empty_task_toml(tmp_path: Path) -> None:
    """An empty task.toml takes Harbor's defaults: 600 s each, internet allowed."""
    task_dir = copy_task(tmp_path)
    (task_dir / "task.toml").write_text("")
    config = read_task(task_dir).config
    assert (config.agent.timeout_sec, config.verifier.timeout_sec) == (600.0, 600.0)
    assert config.environment.allow_internet is True


def test_unknown_keys_are_kept_not_refused(tmp_path: Path) -> None:
    """Keys hud does not use (newer schema versions) pass, as Harbor lets them."""
    task_dir = copy_task(tmp_path)
    (task_dir / "task.toml").write_text('schema_version = "1.3"\n[task]\nname = "x/y"\n'
                                        '[agent]\ntimeout_sec = 5\nuser = "agent"\n')
    assert read_task(task_dir).config.agent.timeout_sec == 5.0


def test_missing_instruction_names_the_file(tmp_path: Path) -> None:
    """No instruction.md: the error names the file and what goes there."""
    task_dir = copy_task(tmp_path)
    (task_dir / "instruction.md").unlink()
    with pytest.raises(ConfigError, match=r"shell-line-count/instruction\.md is missing: the "
                                          r"instruction \(the agent's prompt\) goes there"):
        read_task(task_dir)


def test_empty_instruction_is_refused(tmp_path: Path) -> None:
    """A blank instruction.md is an error, not an empty prompt."""
    task_dir = copy_task(tmp_path)
    (task_dir / "instruction.md").write_text("  \n")
    with pytest.raises(ConfigError, match=r"instruction\.md is empty; write the task's"):
        read_task(task_dir)


def test_missing_test_script_names_the_file(tmp_path: Path) -> None:
    """No tests/test.sh: the error names it and says what it must write."""
    task_dir = copy_task(tmp_path)
    (task_dir / "tests" / "test.sh").unlink()
    with pytest.raises(ConfigError, match=r"tests/test\.sh is missing: Harbor's verifier, which "
                                          r"writes the reward to /logs/verifier/reward\.txt"):
        read_task(task_dir)


def test_task_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    """A task.toml that is not TOML: the file, the parser's position, the fix."""
    task_dir = copy_task(tmp_path)
    (task_dir / "task.toml").write_text("[agent\ntimeout_sec = 10\n")
    with pytest.raises(ConfigError, match=r"shell-line-count/task\.toml is not valid TOML "
                                          r"\(.*line 1.*\); fix its syntax"):
        read_task(task_dir)


def test_task_toml_bad_value_names_the_key(tmp_path: Path) -> None:
    """A timeout that is not a positive number: the table, key and value are named."""
    task_dir = copy_task(tmp_path)
    (task_dir / "task.toml").write_text('[verifier]\ntimeout_sec = "soon"\n')
    with pytest.raises(ConfigError, match=r"task\.toml: \[verifier\] timeout_sec: .*got 'soon'"):
        read_task(task_dir)
    (task_dir / "task.toml").write_text("[agent]\ntimeout_sec = -1\n")
    with pytest.raises(ConfigError, match=r"\[agent\] timeout_sec: Input should be greater "
                                          r"than 0 \(got -1\)"):
        read_task(task_dir)


def test_missing_task_toml_is_named(tmp_path: Path) -> None:
    """No task.toml at all: named, with the hint that an empty one takes the defaults."""
    task_dir = copy_task(tmp_path)
    (task_dir / "task.toml").unlink()
    with pytest.raises(ConfigError, match=r"task\.toml is missing; .*an empty task\.toml"):
        read_task(task_dir)


def test_missing_dockerfile_is_named_unless_an_image_is(tmp_path: Path) -> None:
    """No environment/Dockerfile: an error, unless [environment] docker_image names one."""
    task_dir = copy_task(tmp_path)
    (task_dir / "environment" / "Dockerfile").unlink()
    with pytest.raises(ConfigError, match=r"environment/Dockerfile is missing; add the task's "
                                          r"Dockerfile there, or name a prebuilt image"):
        read_task(task_dir)
    (task_dir / "task.toml").write_text('[environment]\ndocker_image = "some/image:1"\n')
    assert read_task(task_dir).config.environment.docker_image == "some/image:1"


def test_host_secrets_are_refused(tmp_path: Path) -> None:
    """A ${VAR} value in [verifier] env (filled from the host by Harbor) is refused."""
    task_dir = copy_task(tmp_path)
    (task_dir / "task.toml").write_text('[verifier]\nenv = { KEY = "${OPENAI_API_KEY}" }\n')
    with pytest.raises(ConfigError, match=r"\[verifier\] env\.KEY = '\$\{OPENAI_API_KEY\}' "
                                          r"takes a value from the host's environment"):
        read_task(task_dir)


def test_compose_and_windows_environments_are_refused(tmp_path: Path) -> None:
    """A docker-compose environment or os = windows: refused, with why."""
    task_dir = copy_task(tmp_path)
    (task_dir / "environment" / "docker-compose.yaml").write_text("services: {}\n")
    with pytest.raises(ConfigError, match=r"docker-compose\.yaml: a multi-container "
                                          r"environment; hud runs one container"):
        read_task(task_dir)
    (task_dir / "environment" / "docker-compose.yaml").unlink()
    (task_dir / "task.toml").write_text('[environment]\nos = "windows"\n')
    with pytest.raises(ConfigError, match=r"os = 'windows'; hud runs Linux containers only"):
        read_task(task_dir)


def test_not_a_folder_is_named(tmp_path: Path) -> None:
    """A path that is not a folder: named, with the layout of a task folder."""
    with pytest.raises(ConfigError, match=r"nope is not a directory; a Harbor task folder "
                                          r"holds task\.toml, instruction\.md"):
        read_task(tmp_path / "nope")


def test_template_ids_are_safe() -> None:
    """A folder name becomes a template id of letters, digits and _.-."""
    assert template_id("fix the bug!") == "fix-the-bug"
    assert template_id("ok_name-1.2") == "ok_name-1.2"
    assert template_id("???") == "task"


def test_a_missing_spec_says_how_to_make_one(tmp_path: Path) -> None:
    """read_spec on a folder hud harbor import did not make: the fix is named."""
    with pytest.raises(ConfigError, match=r"harbor\.json is missing: .* was not made by `hud "
                                          r"harbor import`"):
        read_spec(tmp_path)
