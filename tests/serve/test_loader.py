"""Finding and importing environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from hud.errors import EnvLoadError
from hud.serve.loader import load_environment
from tests.conftest import ENVS


def test_load_py_file_and_module_level_tasks() -> None:
    """A .py file loads; its `tasks` list becomes the manifest's tasks."""
    env = load_environment(str(ENVS / "letters.py"))
    assert env.name == "letter-count" and len(env.listed_tasks()) == 3


def test_load_directory_uses_env_py(tmp_path: Path) -> None:
    """A directory means its env.py, and its helpers import from beside it."""
    (tmp_path / "helpers_for_dir_test.py").write_text("WORD = 'kiwi'\n")
    (tmp_path / "env.py").write_text(
        "from hud import Environment\nfrom helpers_for_dir_test import WORD\n"
        "env = Environment(name='dir-env')\n"
        "@env.template()\nasync def t(word: str = WORD):\n    a = yield word\n    yield 1.0\n"
    )
    env = load_environment(str(tmp_path))
    assert env.name == "dir-env"


def test_directory_without_env_py(tmp_path: Path) -> None:
    """An empty directory says which files it looked for."""
    with pytest.raises(EnvLoadError, match=r"expected one of env\.py, tasks\.py"):
        load_environment(str(tmp_path))


def test_missing_file() -> None:
    """A .py path that does not exist is named."""
    with pytest.raises(EnvLoadError, match=r"nope\.py does not exist"):
        load_environment("/nonexistent/nope.py")


def test_import_error_carries_the_traceback() -> None:
    """The exception type, message and full traceback are kept."""
    with pytest.raises(EnvLoadError, match="raised ImportError: no module named") as info:
        load_environment(str(ENVS / "broken.py"))
    assert "Traceback" in info.value.traceback and "broken.py" in info.value.traceback


def test_syntax_error_is_a_load_error(tmp_path: Path) -> None:
    """A SyntaxError in the module is reported, not raised raw."""
    bad = tmp_path / "syntax_env.py"
    bad.write_text("def broken(:\n")
    with pytest.raises(EnvLoadError, match="SyntaxError"):
        load_environment(str(bad))


def test_module_attr_spec() -> None:
    """pkg.mod:attr imports a module by name and takes that attribute."""
    env = load_environment("tests.envs.faults:env")
    assert env.name == "faults"


def test_attr_that_is_not_an_environment() -> None:
    """Naming an attribute that is not an Environment says what it is."""
    with pytest.raises(EnvLoadError, match="EVENTS is list, not an Environment"):
        load_environment("tests.envs.faults:EVENTS")


def test_module_without_environment(tmp_path: Path) -> None:
    """A module with no Environment says how to make one."""
    plain = tmp_path / "plain_env_mod.py"
    plain.write_text("x = 1\n")
    with pytest.raises(EnvLoadError, match="defines no Environment"):
        load_environment(str(plain))


def test_module_with_two_environments(tmp_path: Path) -> None:
    """Two environments and no `env`: ambiguous, name one."""
    two = tmp_path / "two_envs_mod.py"
    two.write_text("from hud import Environment\na = Environment(name='a')\nb = Environment(name='b')\n")
    with pytest.raises(EnvLoadError, match=r"several environments \(a, b\)"):
        load_environment(str(two))


@pytest.mark.parametrize("clash", ["secrets.py", "email/__init__.py", "shutil.py"])
def test_a_file_named_like_a_stdlib_module_is_refused_at_load(tmp_path: Path,
                                                              clash: str) -> None:
    """An environment's folder goes first on sys.path, and hud's own code imports standard
    modules long after the load (the grading sandbox at the first sandboxed grade, ssh
    and MCP at their first client): a `secrets.py` there would be imported in their
    place mid-rollout. Refused at load instead, naming the file and the fix."""
    (tmp_path / clash).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / clash).write_text("ANSWERS = {}\n")
    (tmp_path / "env.py").write_text("from hud import Environment\nenv = Environment(name='x')\n")
    name = clash.split("/")[0].removesuffix(".py")
    with pytest.raises(EnvLoadError, match=rf"holds {name}\S*, named like the standard "
                                           rf"library's {name}: .* rename it \(e\.g\. "
                                           rf"{name} -> {name}_data\)"):
        load_environment(str(tmp_path))
    renamed = tmp_path / f"{name}_data.py"
    (tmp_path / clash).rename(renamed)
    if (tmp_path / name).is_dir():
        (tmp_path / name).rmdir()
    assert load_environment(str(tmp_path)).name == "x"
