"""`hud harbor import` / `export` on the host: the env written, refusals, the round trip."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hud.cli.main import cli
from hud.errors import ConfigError
from hud.eval.rollout import agent_timeout
from hud.harbor.base import agent_may_own, check_workdir
from hud.harbor.config import read_spec
from hud.harbor.exporter import export_env
from hud.harbor.importer import import_tasks
from hud.serve.loader import load_environment
from tests.harbor.kit import EXAMPLES, copy_task, example


def _examples() -> list[Path]:
    return [example(name) for name in EXAMPLES]


def _same_tree(left: Path, right: Path) -> list[str]:
    """The relative paths that differ between two folders (missing on either side too)."""
    diff: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        diff.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.diff_files
                    + cmp.funny_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right), "")
    return diff


def test_import_writes_an_env_directory(tmp_path: Path) -> None:
    """The env holds env.py, harbor.json, the shared environment/, each task, a Dockerfile."""
    result = import_tasks(_examples(), tmp_path / "env")
    env = tmp_path / "env"
    assert sorted(p.name for p in env.iterdir()) == ["Dockerfile", "env.py", "environment",
                                                     "harbor.json", "tasks"]
    spec = read_spec(env)
    assert spec == result.spec
    assert (spec.name, spec.workdir, spec.allow_internet) == ("env", "/app", False)
    assert spec.tasks == {name: name for name in EXAMPLES}
    assert not (env / "tasks" / "json-report" / "environment").exists()
    assert _same_tree(env / "environment", example("json-report") / "environment") == []


def test_the_env_lists_one_template_per_task(tmp_path: Path) -> None:
    """Loaded, the env has one template per task, the instruction's title as description,
    the longer timeout plus a margin as grade limit, and solutions attached."""
    import_tasks(_examples(), tmp_path / "env", name="harbor-examples")
    env = load_environment(str(tmp_path / "env"))
    manifest = env.manifest()
    assert env.name == "harbor-examples"
    assert [(t.id, t.description, t.has_solution, t.grade_timeout) for t in manifest.templates] \
        == [("shell-line-count", "Count the q-words", True, 180.0),
            ("python-slugify", "Fix the slugs", True, 180.0),
            ("json-report", "Sales report", True, 180.0)]
    assert [t.slug for t in manifest.tasks] == list(EXAMPLES)


def test_no_network_becomes_an_image_label(tmp_path: Path) -> None:
    """allow_internet = false puts org.hud.network=none in the env's Dockerfile; a task
    that allows internet does not, and a note says hud's containers have none anyway."""
    import_tasks([example("shell-line-count")], tmp_path / "closed")
    assert 'LABEL org.hud.network="none"' in (tmp_path / "closed" / "Dockerfile").read_text()
    task_dir = copy_task(tmp_path / "src")
    toml = (task_dir / "task.toml").read_text().replace("allow_internet = false", "")
    (task_dir / "task.toml").write_text(toml)
    result = import_tasks([task_dir], tmp_path / "open")
    assert "org.hud.network" not in (tmp_path / "open" / "Dockerfile").read_text()
    assert any("allow internet (Harbor's default), but hud runs containers without a network"
               in note for note in result.notes)


def test_tasks_with_different_environments_are_refused_by_group(tmp_path: Path) -> None:
    """Two environments: the groups are listed with the command that imports each."""
    other = copy_task(tmp_path / "src", "python-slugify")
    dockerfile = other / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN true\n")
    with pytest.raises(ConfigError, match=r"(?s)need different environments, and one hud env "
                                          r"is one image:\n  1\. environment/ [0-9a-f]{12}, "
                                          r"workdir /app, allow_internet false: shell-line-count,"
                                          r" json-report\n  2\. .*: python-slugify\n.*hud harbor "
                                          r"import \S+shell-line-count \S+json-report -o ENV1"):
        import_tasks([example("shell-line-count"), other, example("json-report")],
                     tmp_path / "env")
    assert not (tmp_path / "env").exists()


def test_two_tasks_of_one_name_are_refused(tmp_path: Path) -> None:
    """Folders with the same name (from different parents) cannot share one env."""
    twin = copy_task(tmp_path / "src")
    with pytest.raises(ConfigError, match=r"two tasks are named 'shell-line-count'"):
        import_tasks([example("shell-line-count"), twin], tmp_path / "env")


def test_a_used_output_directory_is_refused(tmp_path: Path) -> None:
    """-o names a folder with files in it: refused, nothing overwritten."""
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"env exists and is not an empty directory"):
        import_tasks(_examples(), tmp_path / "env")
    assert (tmp_path / "env" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("workdir", ["/usr/local/bin", "/opt/hud/env", "/etc/app", "/var/lib"])
def test_a_workdir_root_executes_from_is_refused_at_import(tmp_path: Path, workdir: str) -> None:
    """task.toml's workdir on root's PATH, in hud's runtime or in /etc: a ConfigError naming
    the value, its task.toml and the fix, and nothing is written."""
    task = copy_task(tmp_path / "src")
    toml = task / "task.toml"
    toml.write_text(toml.read_text().replace('workdir = "/app"', f'workdir = "{workdir}"'))
    message = rf"workdir '{workdir}' \(\[environment\] workdir in .*task\.toml\) .*WORKDIR /app"
    with pytest.raises(ConfigError, match=message):
        import_tasks([task], tmp_path / "env")
    assert not (tmp_path / "env").exists()


@pytest.mark.parametrize("workdir", ["/", "/usr", "/opt", "/home"])
def test_a_bare_top_level_workdir_stays_roots_without_an_error(workdir: str) -> None:
    """`/` and the top-level system folders are not refused: the build only leaves them
    root's, as before (a task whose image has no WORKDIR still builds)."""
    check_workdir(workdir, "test")
    assert not agent_may_own(workdir) and agent_may_own("/app")


def test_a_docker_image_starting_with_a_dash_is_refused_by_its_file(tmp_path: Path) -> None:
    """[environment] docker_image = "--help" is refused when task.toml is read, naming it."""
    task = copy_task(tmp_path / "src")
    (task / "task.toml").write_text('[environment]\ndocker_image = "--help"\n')
    with pytest.raises(ConfigError, match=r"task\.toml: \[environment\] docker_image: .*"
                                          r"'--help' is not an image reference"):
        import_tasks([task], tmp_path / "env")


def test_export_gives_back_the_task_folders(tmp_path: Path) -> None:
    """export writes each task folder as it was imported, its environment/ included."""
    import_tasks(_examples(), tmp_path / "env")
    result = export_env(tmp_path / "env", tmp_path / "out")
    assert [p.name for p in result.written] == list(EXAMPLES) and result.refused == {}
    for name in EXAMPLES:
        assert _same_tree(tmp_path / "out" / name, example(name)) == [], name


def test_export_then_import_round_trips(tmp_path: Path) -> None:
    """import → export → import gives the same env directory."""
    import_tasks(_examples(), tmp_path / "env1", name="same")
    export_env(tmp_path / "env1", tmp_path / "out")
    import_tasks(sorted((tmp_path / "out").iterdir(), key=lambda p: EXAMPLES.index(p.name)),
                 tmp_path / "env2", name="same")
    assert _same_tree(tmp_path / "env1", tmp_path / "env2") == []


def test_export_refuses_what_harbor_cannot_express(tmp_path: Path) -> None:
    """A task added in Python to an imported env is refused with why; the rest export."""
    import_tasks(_examples(), tmp_path / "env")
    env_py = tmp_path / "env" / "env.py"
    env_py.write_text(env_py.read_text() + (
        "\n\n@env.template()\nasync def extra():\n    answer = yield 'say hi'\n"
        "    yield 1.0 if answer == 'hi' else 0.0\n"))
    result = export_env(tmp_path / "env", tmp_path / "out")
    assert len(result.written) == 3
    assert list(result.refused) == ["extra"]
    assert "its prompt comes from the env's Python setup code" in result.refused["extra"]


def test_export_of_a_plain_hud_env_names_each_task(tmp_path: Path) -> None:
    """An env not made from Harbor tasks: nothing written, every task named with why."""
    folder = tmp_path / "letters"
    folder.mkdir()
    (folder / "env.py").write_text(
        "from hud import Environment\nenv = Environment(name='letters')\n\n"
        "@env.template()\nasync def count(word: str = 'strawberry'):\n"
        "    answer = yield f'How many r in {word}?'\n    yield 1.0\n\n"
        "tasks = [count(), count(word='berry')]\n")
    (folder / "hud.lock.json").write_text(json.dumps({"capabilities": ["browser", "shell"]}))
    with pytest.raises(ConfigError, match=r"(?s)no task of \S+letters can be written as a "
                                          r"Harbor task:\n  count: its prompt comes from.*\n"
                                          r"  count-[0-9a-f]{8}: .*with arguments \{'word': "
                                          r"'berry'\}; the env offers browser besides a shell"):
        export_env(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_import_and_export(tmp_path: Path) -> None:
    """`hud harbor import` prints the env and the next step; `export` what it wrote."""
    runner = CliRunner()
    done = runner.invoke(cli, ["harbor", "import", *map(str, _examples()), "-o",
                               str(tmp_path / "env")])
    assert done.exit_code == 0, done.output
    assert "tasks    3: shell-line-count, python-slugify, json-report" in done.output
    assert f"next     hud build {tmp_path / 'env'}" in done.output
    done = runner.invoke(cli, ["harbor", "export", str(tmp_path / "env"), "-o",
                               str(tmp_path / "out"), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["written"] == [str(tmp_path / "out" / n) for n in EXAMPLES]


def test_cli_bad_input_is_one_error_line(tmp_path: Path) -> None:
    """A broken task folder: `error: ...` naming the file, exit 1, no traceback."""
    task_dir = copy_task(tmp_path)
    (task_dir / "tests" / "test.sh").unlink()
    done = CliRunner().invoke(cli, ["harbor", "import", str(task_dir), "-o",
                                    str(tmp_path / "env")])
    assert done.exit_code == 1
    assert "error: " in done.output and "tests/test.sh is missing" in done.output
    assert "Traceback" not in done.output


@pytest.mark.parametrize(("own", "host", "expected"), [
    (120.0, None, 120.0), (120.0, 30.0, 30.0), (30, 120.0, 30.0), (None, 50.0, 50.0),
    ("soon", 50.0, 50.0), (-5, None, None), (True, None, None)])
def test_agent_timeout_is_the_shorter(own: object, host: float | None,
                                      expected: float | None) -> None:
    """A task's own agent_timeout (start frame) shortens the host's; junk is ignored."""
    frame = {"prompt": "p"} if own is None else {"prompt": "p", "agent_timeout": own}
    assert agent_timeout(frame, host) == expected
