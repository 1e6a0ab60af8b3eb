"""Red team review of issue 13 (tasks as data, any base image, Harbor in and out), attacked
as a hostile agent, a hostile image / task file / Harbor folder author and a careless user.

Each test documents a confirmed bug. While the bug is open the test is
`xfail(strict=True)` (an XPASS fails the suite); once fixed, the marker is removed and the
test guards the fix. The docker ones build two small env images once per module (a Harbor
env whose image puts a folder of its workdir on PATH, as uv projects do, and an env on a
busybox root) and two label-only images FROM scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hud.build.docker import inspect_image
from hud.build.env_image import build_env
from hud.build.graft import graft
from hud.build.layers import layer_tag
from hud.build.rootfs import bootstrap, rootfs_tag
from hud.errors import ConfigError, HudError
from hud.eval import DockerPlacement, Taskset
from hud.eval.sources import lock_listing
from hud.eval.taskfile import read_rows
from hud.harbor.base import agent_may_own, base_tags, harbor_base_image
from hud.harbor.importer import import_tasks
from hud.task import Task
from tests.build.foreign_roots import write_env
from tests.docker_fixtures import Containers, _engine_or_fail, containers, docker_cli, unique_tag  # noqa: F401
from tests.harbor.kit import copy_task
from tests.redteam.conftest import as_agent

pytestmark = pytest.mark.timeout(600)

#: an OSC "set the window title" sequence and a "clear the screen" one
ESCAPES = "\x1b]0;pwned\x07\x1b[2J"
#: deeper than the JSON parser's recursion limit
DEEP = 20000
HARBOR_ENV = "hud-rt13-harbor-path"
#: a uv-style project venv on PATH, inside the workdir hud gives the agent
VENV_ON_PATH = """\
ENV PATH=/app/.venv/bin:$PATH
RUN mkdir -p /app/.venv/bin
"""
BUSYBOX_DEB = Path("/var/cache/apt/archives")
LOADER = "/lib64/ld-linux-x86-64.so.2"
BUSYBOX_ROOT_DOCKERFILE = """\
FROM scratch
COPY bin/ /bin/
COPY lib/ /lib/
COPY lib64/ /lib64/
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc /root /tmp && chmod 1777 /tmp \\
    && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'root:x:0:' > /etc/group
"""


def xfail(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


def hud(runs: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`hud ARGS` as a user runs it (its own process), traces under `runs`."""
    return subprocess.run([sys.executable, "-m", "hud.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "HUD_RUNS_DIR": str(runs)})


def _manifest(description: str = "a task") -> dict[str, Any]:
    return {"env": {"name": "rt13-label", "version": "1"},
            "tasks": [{"id": "t", "args": {}, "slug": "t", "description": description}]}


# --- label-only images: what a hostile image author controls on the host ---------------


@pytest.fixture(scope="module")
def label_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Images FROM scratch that hold only a manifest label: `escapes` (a task description
    with terminal escapes) and `deep` (a label nested deeper than the JSON parser goes)."""
    _engine_or_fail()
    context = tmp_path_factory.mktemp("label")
    (context / "marker").write_text("x\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    labels = {"escapes": json.dumps(_manifest(f"plain {ESCAPES} end")),
              "deep": '{"env": {"name": "rt13-deep", "version": "1"}, "tasks": '
                      + "[" * DEEP + "]" * DEEP + "}"}
    made: dict[str, str] = {}
    try:
        for key, label in labels.items():
            tag = unique_tag(f"hud-rt13-label-{key}")
            docker_cli("build", "-q", "--label", f"org.hud.manifest={label}", "-t", tag,
                       str(context), check=True)
            made[key] = tag
        yield made
    finally:
        if made:
            docker_cli("rmi", "-f", *made.values())


@pytest.mark.docker
def test_task_list_of_an_image_escapes_its_descriptions(label_images: dict[str, str]) -> None:
    """The descriptions in an image's label reach the terminal with control characters escaped."""
    from hud.cli.main import cli

    result = CliRunner().invoke(cli, ["task", "list", "--image", label_images["escapes"]])
    assert result.exit_code == 0, result.output
    assert "plain" in result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


@pytest.mark.docker
def test_a_deeply_nested_manifest_label_is_refused_by_name(label_images: dict[str, str]) -> None:
    """An image whose label is absurdly deep JSON is a clean error naming the image."""
    with pytest.raises(HudError, match="rt13-label-deep"):
        Taskset.from_source(label_images["deep"])


@pytest.mark.docker
def test_drift_warning_names_rows_listed_from_another_image(label_images: dict[str, str],
                                                            tmp_path: Path) -> None:
    """A task file mixing rows of image A (old ID) and image B runs on B with a warning about A."""
    running = label_images["escapes"]
    info = inspect_image(running)
    assert info is not None
    rows = [{"env": "rt13-label", "id": "t", "image": "hud-rt13-other:1",
             "image_id": "sha256:" + "a" * 64},
            {"env": "rt13-label", "id": "u", "image": running, "image_id": info["Id"]}]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))
    warning = Taskset.from_file(tasks).image_warning(DockerPlacement(running))
    assert warning is not None and "hud-rt13-other:1" in warning


@pytest.mark.docker
@pytest.mark.parametrize("network", ["host", "container:hud-rt13-other-rollout"])
def test_eval_refuses_or_warns_about_a_shared_network(label_images: dict[str, str],
                                                      tmp_path: Path, network: str) -> None:
    """`hud eval IMG --network host|container:X` is refused, or says what it exposes."""
    done = hud(tmp_path, "eval", label_images["escapes"], "nop", "--network", network)
    warned = [line for line in done.stderr.splitlines()
              if line.startswith("warning") and "network" in line]
    assert done.returncode == 2 or warned, done.stderr


@pytest.mark.docker
@pytest.mark.parametrize("where", ["eval", "harbor"])
def test_an_image_reference_starting_with_a_dash_is_refused(where: str, tmp_path: Path) -> None:
    """A reference that docker would read as an option is a clean error naming it."""
    _engine_or_fail()
    with pytest.raises(HudError, match="--help"):
        if where == "eval":
            Taskset.from_source("docker:--help")
        else:
            task = copy_task(tmp_path / "src")
            shutil.rmtree(task / "environment")
            toml = task / "task.toml"
            toml.write_text(toml.read_text() + 'docker_image = "--help"\n')
            import_tasks([task], tmp_path / "env", name="hud-rt13-dash")
            harbor_base_image(tmp_path / "env", None)


# --- files on the host: task files, locks, Harbor folders, a carried root --------------


@pytest.mark.parametrize("kind", ["task file", "lock"])
def test_a_deeply_nested_file_is_a_config_error(kind: str, tmp_path: Path) -> None:
    """A task file or hud.lock.json nested absurdly deep is a ConfigError naming the file."""
    deep = "[" * DEEP + "]" * DEEP
    with pytest.raises(ConfigError, match=r"tasks\.jsonl|hud\.lock\.json"):
        if kind == "task file":
            (tmp_path / "tasks.jsonl").write_text('{"env": "e", "id": "t", "args": {"x": '
                                                  + deep + "}}\n")
            read_rows(tmp_path / "tasks.jsonl")
        else:
            (tmp_path / "hud.lock.json").write_text('{"tag": "x", "env": {"name": "e"}, '
                                                    '"tasks": ' + deep + "}")
            lock_listing(tmp_path / "hud.lock.json", tmp_path)


def test_harbor_import_of_the_current_folder_keeps_its_name(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing `.` from inside a task folder names the task after that folder."""
    task = copy_task(tmp_path / "src")
    monkeypatch.chdir(task)
    result = import_tasks(["."], tmp_path / "env")
    assert result.spec.tasks == {"shell-line-count": "shell-line-count"}


@pytest.mark.parametrize("workdir", ["/usr/local/bin", "/usr/local", "/opt/hud"])
def test_the_build_never_gives_the_agent_what_root_executes(workdir: str) -> None:
    """A workdir on root's PATH, or hud's own tree, is not given to the agent."""
    assert not agent_may_own(workdir)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_graft_gives_the_workspace_to_an_existing_agent(tmp_path: Path) -> None:
    """On a root whose `agent` is uid 1001, /workspace belongs to uid 1001."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "agent:x:1001:1001::/home/agent:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nagent:x:1001:\n")
    graft(root)
    assert (root / "workspace").stat().st_uid == 1001


# --- the agent on a Harbor task whose image puts a workdir folder on PATH --------------


class _Planter:
    """An agent that runs `script` as `agent` over ssh, then `check` in a new session."""

    name = "hostile"

    def __init__(self, script: str, check: str = "true") -> None:
        self.script, self.check = script, check
        self.output = ""

    async def __call__(self, run: Any) -> Any:
        planted = await as_agent(run, self.script)
        assert "planted" in str(planted.stdout), planted.stderr
        self.output = str((await as_agent(run, self.check)).stdout).strip()
        return "done"


@pytest.fixture(scope="module")
def harbor_path_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example shell task (tests/harbor: a test.sh that never runs the agent's code)
    on an image whose Dockerfile adds /app/.venv/bin to PATH, imported and built once."""
    _engine_or_fail()
    if inspect_image(rootfs_tag()) is None:
        bootstrap()
    work = tmp_path_factory.mktemp("harbor-path")
    task = copy_task(work / "src", as_name="q-words")
    dockerfile = task / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + VENV_ON_PATH)
    import_tasks([task], work / "env", name=HARBOR_ENV)
    tag = unique_tag(HARBOR_ENV)
    try:
        build_env(work / "env", tag=tag)
        yield tag
    finally:
        task_tag, base_tag = base_tags(HARBOR_ENV)
        docker_cli("rmi", "-f", tag, layer_tag("base", root=base_tag), base_tag, task_tag,
                   timeout=300)


@pytest.mark.docker
async def test_a_planted_choom_never_runs_as_root(harbor_path_env: str) -> None:
    """A `choom` the agent puts on the image's PATH is never run by root."""
    plant = ("printf '#!/bin/sh\\nid -u > /app/.venv/ran-as\\nexec /usr/bin/choom \"$@\"\\n' "
             "> /app/.venv/bin/choom && chmod +x /app/.venv/bin/choom && echo planted")
    agent = _Planter(plant, "cat /app/.venv/ran-as 2>/dev/null || echo never")
    job = await Taskset([Task(env=HARBOR_ENV, id="q-words")]).run(
        agent, runtime=DockerPlacement(harbor_path_env))
    assert job.runs[0].status == "completed", job.runs[0].error
    assert agent.output in ("never", "1000"), agent.output


@pytest.mark.docker
async def test_a_planted_timeout_does_not_grade_the_task(harbor_path_env: str) -> None:
    """With no work done, a `timeout` the agent puts on PATH still grades 0.0."""
    plant = ("printf '#!/bin/sh\\necho 1 > /logs/verifier/reward.txt\\n' "
             "> /app/.venv/bin/timeout && chmod +x /app/.venv/bin/timeout && echo planted")
    job = await Taskset([Task(env=HARBOR_ENV, id="q-words")]).run(
        _Planter(plant), runtime=DockerPlacement(harbor_path_env))
    run, = job.runs
    assert (run.status, run.reward) == ("completed", 0.0), (run.error, run.grade)


# --- the portable runtime on a busybox root ---------------------------------------------


@pytest.fixture(scope="module")
def busybox_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The small any-base env (tests/build/foreign_roots.py) built on a root made of
    Debian's busybox and glibc only (as busybox:glibc is), once."""
    _engine_or_fail()
    debs = sorted(BUSYBOX_DEB.glob("busybox_*.deb"))
    libs = [Path("/lib/x86_64-linux-gnu") / lib for lib in ("libc.so.6", "libresolv.so.2")]
    if not debs or not all(lib.exists() for lib in [*libs, Path(LOADER)]):
        pytest.skip(f"no busybox .deb in {BUSYBOX_DEB}, or no x86-64 glibc here, to make a "
                    f"busybox root from")
    work = tmp_path_factory.mktemp("busybox")
    unpacked, context = work / "deb", work / "root"
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)], check=True, timeout=60)
    for folder in ("bin", "lib/x86_64-linux-gnu", "lib64"):
        (context / folder).mkdir(parents=True)
    shutil.copy(unpacked / "bin" / "busybox", context / "bin")
    for lib in libs:
        shutil.copy(lib, context / "lib/x86_64-linux-gnu")
    shutil.copy(LOADER, context / "lib64")
    (context / "Dockerfile").write_text(BUSYBOX_ROOT_DOCKERFILE)
    root, tag = unique_tag("hud-rt13-busybox-root"), unique_tag("hud-rt13-busybox-env")
    try:
        docker_cli("build", "-q", "-t", root, str(context), check=True, timeout=300)
        build_env(write_env(work / "env"), tag=tag, base_image=root)
        yield tag
    finally:
        docker_cli("rmi", "-f", tag, layer_tag("base", root=root), root, timeout=300)


@pytest.mark.docker
def test_a_task_starts_on_a_busybox_root(busybox_env: str, containers: Containers) -> None:
    """On a busybox root, `hud task start` resets the workspace and runs a command as the agent."""
    name = containers.run(busybox_env)
    containers.wait_healthy(name)
    done = containers.exec(name, "hud", "task", "start", "shout")
    assert done.returncode == 0, done.stderr[-600:]
    assert done.stdout.strip() == "from the project agent: reply with 'hello' in capitals."
