"""hud build: templates end to end in Docker, author Dockerfiles, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hud import __version__
from hud.build.env_image import LOCK_FILE, build_env, default_tag
from hud.build.scaffold import scaffold
from hud.cli.main import cli
from hud.errors import ConfigError, DockerError, EnvLoadError
from tests.docker_fixtures import (  # noqa: F401
    base_layer,
    containers,
    docker_cli,
    env_dir,
    image_tags,
    labels,
    unique_tag,
)

pytestmark = pytest.mark.docker

FIX = ["sed", "-i", "s/ordered\\[mid + 1\\]/ordered[mid - 1]/", "/workspace/stats/core.py"]
BROKEN_FIX = ["sed", "-i", "s/ordered\\[mid + 1\\]/ordered[mid]/", "/workspace/stats/core.py"]


@pytest.fixture
def built(tmp_path: Path, base_layer: str, image_tags: list[str]):
    """Render a template and build it under a unique tag (removed afterwards)."""

    def make(template: str) -> tuple[Path, str]:
        target, _ = scaffold(tmp_path / template, template)
        tag = unique_tag(f"hud-test-{template}")
        image_tags.append(tag)
        build_env(target, tag=tag)
        return target, tag

    return make


def test_blank_template_builds_runs_and_grades(built, containers) -> None:
    """letter-count: the right answer grades 1.0, a wrong one 0.0, in a real container."""
    _, tag = built("blank")
    run1 = containers.run(tag)
    containers.wait_healthy(run1)
    prompt = containers.hud(run1, "task", "start", "count_letter")
    assert prompt == "How many 'r's are in 'strawberry'? Reply with just the number."
    assert containers.hud(run1, "task", "grade", "count_letter", "--answer", "3") == "1.0"
    containers.hud(run1, "task", "start", "count_letter")
    assert containers.hud(run1, "task", "grade", "count_letter", "--answer", "2") == "0.0"


def test_coding_template_grades_the_fix(built, containers) -> None:
    """fix_bug: no fix and a wrong fix grade 0.0; the right fix, made as agent, grades 1.0."""
    _, tag = built("coding")
    run1 = containers.run(tag)
    containers.wait_healthy(run1)
    assert "/workspace" in containers.hud(run1, "task", "start", "fix_bug")
    assert containers.hud(run1, "task", "grade", "fix_bug", "--answer", "nothing") == "0.0"
    containers.hud(run1, "task", "start", "fix_bug")
    assert containers.exec(run1, *BROKEN_FIX, user="agent").returncode == 0
    assert containers.hud(run1, "task", "grade", "fix_bug", "--answer", "tried") == "0.0"
    containers.hud(run1, "task", "start", "fix_bug")
    assert containers.exec(run1, *FIX, user="agent").returncode == 0
    frame = json.loads(containers.hud(run1, "task", "grade", "fix_bug", "--answer", "fixed",
                                      "--json"))
    assert frame["score"] == 1.0 and frame["info"]["passed"] == frame["info"]["total"] == 15


def test_coding_workspace_is_agents_and_tests_are_hidden(built, containers) -> None:
    """After start the project is in /workspace owned by agent; the hidden cases (env.py) are
    not readable by it."""
    _, tag = built("coding")
    run1 = containers.run(tag)
    containers.wait_healthy(run1)
    containers.hud(run1, "task", "start", "fix_bug")
    listing = containers.exec(run1, "find", "/workspace", "-not", "-user", "agent", user="root")
    assert listing.stdout.strip() == ""
    assert containers.exec(run1, "cat", "/opt/hud/env/env.py", user="agent").returncode != 0
    assert containers.exec(run1, "hud", "task", "list", user="agent").returncode != 0


def test_lock_file_and_label_describe_the_image(built) -> None:
    """hud.lock.json and the org.hud.manifest label carry the tasks, layers and version."""
    target, tag = built("blank")
    lock = json.loads((target / LOCK_FILE).read_text())
    assert lock["tag"] == lock["image"] == tag
    assert lock["hud_version"] == __version__
    assert lock["layers"] == {"base": f"hud-base:{__version__}"}
    assert lock["tasks"][0]["slug"] == "count_letter"
    manifest = json.loads(labels(tag)["org.hud.manifest"])
    assert manifest["env"] == lock["env"] and manifest["tasks"] == lock["tasks"]
    assert docker_cli("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip() == \
        lock["image_id"]


def test_task_list_reads_the_label_without_a_container(built) -> None:
    """`hud task list --image TAG` lists the tasks from the label."""
    _, tag = built("coding")
    result = CliRunner().invoke(cli, ["task", "list", "--image", tag])
    assert result.exit_code == 0, result.output
    assert result.output.split("\t")[0] == "fix_bug"


def test_unchanged_rebuild_is_a_cache_hit(built) -> None:
    """Building again with nothing changed gives the same image id."""
    target, tag = built("blank")
    first = json.loads((target / LOCK_FILE).read_text())["image_id"]
    assert build_env(target, tag=tag).image_id == first


def test_editing_a_task_rebuilds_only_the_env_layer(built) -> None:
    """An edit to env.py changes the image but reuses the base layer."""
    target, tag = built("blank")
    first = json.loads((target / LOCK_FILE).read_text())["image_id"]
    env_py = target / "env.py"
    env_py.write_text(env_py.read_text().replace('"blueberry"', '"cranberry"'))
    result = build_env(target, tag=tag)
    assert result.image_id != first
    assert "cranberry" in json.dumps(result.tasks)
    layers = lambda ref: json.loads(docker_cli(  # noqa: E731
        "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref, check=True).stdout)
    base = layers(f"hud-{result.layer}:{__version__}")
    assert layers(result.image_id)[:len(base)] == base  # the layer below is reused as is


def test_author_dockerfile_extends_the_layer(tmp_path: Path, base_layer: str,
                                             image_tags: list[str], containers) -> None:
    """A directory's own Dockerfile is used: RUN apt-get on top of the hud layer works."""
    folder, _ = scaffold(tmp_path / "with-tools", "blank")
    (folder / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "RUN set -eux; apt-get update; apt-get install -y --no-install-recommends jq; "
        "rm -rf /var/lib/apt/lists/*\n"
        "COPY . /opt/hud/env/\n")
    tag = unique_tag("hud-test-author")
    image_tags.append(tag)
    result = build_env(folder, tag=tag)
    assert result.dockerfile.endswith("with-tools/Dockerfile")
    done = docker_cli("run", "--rm", tag, "jq", "-n", "1+1", check=True)
    assert done.stdout.strip() == "2"
    run1 = containers.run(tag)
    containers.wait_healthy(run1)
    assert containers.hud(run1, "task", "start", "count_letter").startswith("How many")


def test_env_that_fails_to_import_fails_the_build(tmp_path: Path, base_layer: str,
                                                  image_tags: list[str]) -> None:
    """A module that raises on import fails the build with its traceback; no image is left."""
    folder = env_dir(tmp_path, "broken", "from hud import Environment\n"
                     "env = Environment(name='broken')\n"
                     "import definitely_missing_module_42\n")
    tag = unique_tag("hud-test-broken")
    image_tags.append(tag)
    with pytest.raises(EnvLoadError, match="fails to load inside the image") as info:
        build_env(folder, tag=tag)
    assert "ModuleNotFoundError: No module named 'definitely_missing_module_42'" in \
        info.value.traceback
    assert docker_cli("image", "inspect", tag).returncode != 0
    assert not (folder / LOCK_FILE).exists()


def test_cli_build_of_broken_env_prints_traceback(tmp_path: Path,
                                                  base_layer: str) -> None:
    """`hud build` exits 1 and prints the import traceback."""
    folder = env_dir(tmp_path, "broken-cli", "raise RuntimeError('env exploded on import')\n")
    result = CliRunner().invoke(cli, ["build", str(folder), "-t", unique_tag("hud-test-bc")])
    assert result.exit_code == 1
    assert "fails to load inside the image" in result.output
    assert "RuntimeError: env exploded on import" in result.output


def test_failing_author_step_names_the_step(tmp_path: Path, base_layer: str,
                                            image_tags: list[str]) -> None:
    """A failing RUN in the author's Dockerfile reports that step and its output."""
    folder, _ = scaffold(tmp_path / "bad-step", "blank")
    (folder / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo compiling && false\n"
        "COPY . /opt/hud/env/\n")
    tag = unique_tag("hud-test-step")
    image_tags.append(tag)
    with pytest.raises(DockerError, match=r"(?s)failed at Step 3/4 : RUN echo compiling && false"
                                          r".*compiling"):
        build_env(folder, tag=tag)


def test_cli_build_json_is_one_document(built, tmp_path: Path) -> None:
    """`hud build --json` prints exactly the lock document on stdout."""
    target, tag = built("blank")
    result = CliRunner().invoke(cli, ["build", str(target), "-t", tag, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tag"] == tag and data["layer"] == "base"


def test_directory_without_env_is_refused(tmp_path: Path) -> None:
    """A directory with no env.py/tasks.py/Dockerfile is a ConfigError naming hud init."""
    with pytest.raises(ConfigError, match=r"holds no environment.*hud init"):
        build_env(tmp_path)


def test_default_tag_is_a_valid_image_name() -> None:
    """Env names become lowercase image names."""
    assert default_tag("Letter Count!") == "letter-count"
