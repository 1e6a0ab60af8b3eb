"""hud build --base-image on roots that are not Debian 12: Debian 11 with no Python, with 3.9."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hud import __version__
from hud.build.env_image import LOCK_FILE, REQUIREMENTS, build_env
from hud.build.foreign import is_debian12, os_release
from hud.build.layers import ensure_layers, layer_tag
from hud.cli.main import cli
from hud.errors import ConfigError, DockerError
from tests.build.foreign_roots import (
    bullseye_python_root,
    bullseye_root,
    missing_bootstrap,
    write_env,
)
from tests.build.test_no_wheelhouse import PROBE, PROBE_ENV, probe_wheel
from tests.docker_fixtures import (  # noqa: F401
    Containers,
    docker_cli,
    image_tags,
    labels,
    openssh_as_agent,
    unique_tag,
)

pytestmark = pytest.mark.docker

HEALTH_TIMEOUT = 90.0
# the shared objects `hud serve` (found by its argv, not tini's) has mapped outside /opt/hud
LEAKS = """\
import os
def argv(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
pids = [p for p in os.listdir("/proc") if p.isdigit() and p not in ("1", str(os.getpid()))]
daemon = next(p for p in pids if b"serve" in argv(p) and argv(p)[0].endswith(b"python3"))
lines = open(f"/proc/{daemon}/maps").read().splitlines()
paths = {line.split()[-1] for line in lines if len(line.split()) >= 6}
print(sorted(p for p in paths if ".so" in p and not p.startswith("/opt/hud/")))
"""


class Running:
    """An env image built on one root, with one container of it (healthy)."""

    def __init__(self, root: str, tag: str, folder: Path, containers: Containers) -> None:
        self.root, self.tag, self.folder, self.containers = root, tag, folder, containers
        self.name = containers.run(tag)
        containers.wait_healthy(self.name)

    def exec(self, *args: str, user: str | None = None) -> str:
        done = self.containers.exec(self.name, *args, user=user)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}{done.stdout}"
        return done.stdout.strip()


def _roots() -> None:
    if (why := missing_bootstrap()) is not None and docker_cli(
            "image", "inspect", "hud-test-rootfs:bullseye").returncode != 0:
        pytest.skip(f"no Debian 11 root and none can be made here: {why}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    """The small env built on both Debian 11 roots, one running container of each."""
    _roots()
    containers = Containers()
    made: dict[str, Running] = {}
    tags: list[str] = []
    try:
        for key, root in (("bare", bullseye_root()), ("python39", bullseye_python_root())):
            folder = write_env(tmp_path_factory.mktemp(key) / "env")
            tag = unique_tag(f"hud-test-anybase-{key}")
            tags.append(tag)
            build_env(folder, tag=tag, base_image=root)
            made[key] = Running(root, tag, folder, containers)
        yield made
    finally:
        containers.remove_all()
        for tag in tags:
            docker_cli("rmi", "-f", tag, timeout=120)


@pytest.mark.parametrize("key", ["bare", "python39"])
def test_task_starts_and_grades_on_debian11(built: dict[str, Running], key: str) -> None:
    """`hud task start` and `grade` work through docker exec: the workspace reset and the
    command ran as the agent, the grader ran bounded as hud-grader."""
    run = built[key]
    prompt = run.exec("hud", "task", "start", "shout")
    assert prompt == "from the project agent: reply with 'hello' in capitals."
    assert run.exec("hud", "task", "grade", "shout", "--answer", "HELLO") == "1.0"


def test_wrong_answer_scores_zero_on_debian11(built: dict[str, Running]) -> None:
    """The carried grader really compares: a wrong answer is 0.0."""
    run = built["bare"]
    run.exec("hud", "task", "start", "shout")
    assert run.exec("hud", "task", "grade", "shout", "--answer", "hello") == "0.0"


def test_openssh_shell_and_scp_as_the_agent(built: dict[str, Running], tmp_path: Path) -> None:
    """A real OpenSSH client gets the agent's shell in /workspace, and scp (sftp: the
    carried sftp-server, which the root lacks) copies a file in as the agent."""
    run = built["bare"]
    ssh, opts = openssh_as_agent(run.name, tmp_path)
    source = tmp_path / "hello.txt"
    source.write_text("over scp\n")
    copied = subprocess.run(["scp", *opts, str(source), f"agent@{run.name}:/workspace/"],
                            capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    done = ssh("id -un; pwd; stat -c %U hello.txt; cat hello.txt")
    assert done.stdout.splitlines() == ["agent", "/workspace", "agent", "over scp"], done.stderr


def test_root_without_python_still_has_none(built: dict[str, Running]) -> None:
    """The minbase root had no python3 and the image has none on PATH either: hud's is
    its own, under /opt/hud."""
    run = built["bare"]
    done = run.containers.exec(run.name, "sh", "-c", "command -v python3 python || echo none")
    assert done.stdout.strip() == "none"
    assert run.exec("ldd", "--version").splitlines()[0].endswith("2.31")


def test_agent_user_and_root_only_env_folder(built: dict[str, Running]) -> None:
    """The agent is uid 1000 with its own group and home; /opt/hud/env is root's, 0700."""
    run = built["bare"]
    assert run.exec("id", "agent") == "uid=1000(agent) gid=1000(agent) groups=1000(agent)"
    assert run.exec("stat", "-c", "%U:%G %a", "/opt/hud/env", "/home/agent", "/workspace") \
        .splitlines() == ["root:root 700", "agent:agent 755", "agent:agent 755"]
    denied = run.containers.exec(run.name, "ls", "/opt/hud/env", user="agent")
    assert denied.returncode != 0 and "Permission denied" in denied.stderr


def test_tini_is_pid_1_and_docker_sees_healthy(built: dict[str, Running]) -> None:
    """PID 1 is the carried tini, and the image's HEALTHCHECK turns the container healthy."""
    run = built["bare"]
    assert run.exec("readlink", "/proc/1/exe") == "/opt/hud/tools/tini"
    deadline = time.monotonic() + HEALTH_TIMEOUT
    status = ""
    while time.monotonic() < deadline:
        status = docker_cli("inspect", "--format", "{{.State.Health.Status}}",
                            run.name).stdout.strip()
        if status == "healthy":
            break
        time.sleep(0.5)
    assert status == "healthy"


def test_image_python_stays_39_and_untouched(built: dict[str, Running]) -> None:
    """The image's own python3 is still Debian 11's 3.9, its files unmodified (dpkg)."""
    run = built["python39"]
    assert run.exec("python3", "-c", "import sys; print(sys.version_info[:2])") == "(3, 9)"
    assert run.exec("readlink", "-f", "/usr/bin/python3") == "/usr/bin/python3.9"
    assert run.exec("dpkg", "--verify", "python3.9", "python3.9-minimal",
                    "libpython3.9-stdlib") == ""


def test_daemon_loads_no_library_of_the_image(built: dict[str, Running]) -> None:
    """`hud serve`, after serving a task, has mapped shared objects only from /opt/hud,
    though the image sets LD_LIBRARY_PATH and PYTHONHOME for its own Python."""
    run = built["python39"]
    run.exec("hud", "task", "start", "shout")
    assert run.exec("/opt/hud/venv/bin/python3", "-c", LEAKS) == "[]"
    assert "LD_LIBRARY_PATH" in run.exec("env")  # the image's own, kept for its programs


def test_self_contained_check_names_what_leaks_in(built: dict[str, Running]) -> None:
    """The build's check fails on a carried library gone missing (libffi: the root has
    only an older one) and on one the image supplied instead (libz)."""
    done = docker_cli("run", "--rm", "--entrypoint", "/opt/hud/tools/bash",
                      layer_tag("base", root=built["bare"].root), "-c",
                      "rm /opt/hud/lib/libz.so.1 /opt/hud/lib/libffi.so.8 && "
                      "/opt/hud/venv/bin/python3 -I -m hud.build.graft", timeout=120)
    assert done.returncode == 1
    assert "import _ctypes: ImportError: libffi.so.8: cannot open" in done.stderr
    assert re.search(r"loaded /usr/lib/x86_64-linux-gnu/libz\.so\.1\S* from the image",
                     done.stderr)


def test_sys_executable_runs_the_carried_python(built: dict[str, Running]) -> None:
    """A subprocess started with sys.executable is the carried 3.11 with its libraries."""
    run = built["python39"]
    code = ("import subprocess, sys; print(subprocess.run([sys.executable, '-c', "
            "'import ssl, sys, hud; print(sys.version_info[:2], ssl.OPENSSL_VERSION[:9])'], "
            "capture_output=True, text=True, check=True).stdout.strip())")
    assert run.exec("hud", "--version") == f"hud, version {__version__}"
    assert run.exec("/opt/hud/venv/bin/python3", "-c", code) == "(3, 11) OpenSSL 3"


def test_lock_names_the_carried_layer(built: dict[str, Running]) -> None:
    """hud.lock.json names the carried base layer and the portable runtime."""
    run = built["bare"]
    lock = json.loads((run.folder / LOCK_FILE).read_text())
    assert lock["layers"] == {"base": layer_tag("base", root=run.root),
                              "portable": f"hud-portable:{__version__}"}


def test_requirements_install_into_the_carried_venv(built: dict[str, Running],
                                                    tmp_path: Path) -> None:
    """An env's requirements.txt on a root with no Python installs into hud's own venv
    (offline, from wheels made on the host) and the env imports it."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    probe_wheel(wheels, "2.0", {"__init__": 'VERSION = "2.0"\n'})
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "env.py").write_text(PROBE_ENV)
    (folder / REQUIREMENTS).write_text(f"{PROBE}==2.0\n")
    tag = unique_tag("hud-test-anybase-probe")
    # the layers first: a hud wheel built under PIP_NO_INDEX could not get its build deps
    ensure_layers("base", base_image=built["bare"].root)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PIP_NO_INDEX", "1")
            patch.setenv("PIP_FIND_LINKS", str(wheels))
            result = build_env(folder, tag=tag, base_image=built["bare"].root)
        assert [t["slug"] for t in result.tasks] == ["probe_version"]
        done = docker_cli("run", "--rm", "--network", "none", "--entrypoint",
                          "/opt/hud/venv/bin/python3", tag, "-c",
                          "import hud_probe; print(hud_probe.__file__)", check=True)
        assert done.stdout.strip().startswith("/opt/hud/venv/lib/python3.11/site-packages/")
    finally:
        docker_cli("rmi", "-f", tag, timeout=120)


def test_os_release_decides_the_way(built: dict[str, Running]) -> None:
    """A Debian 12 root keeps the Debian layer; Debian 11, and a root with no os-release
    (the portable payload: not even `cat`), are carried."""
    assert is_debian12(os_release(layer_tag("base")))
    assert not is_debian12(os_release(built["bare"].root))
    assert os_release(f"hud-portable:{__version__}") == {}


def test_a_debian12_root_keeps_the_debian_layer_under_its_own_tag(
        image_tags: list[str]) -> None:
    """--base-image on a Debian 12 root builds images/base on it as before, tagged after
    the root: hud-base:<version> (what every default build uses) is left as it was."""
    standard = ensure_layers("base")[-1]
    root = standard.tag  # a Debian 12 image that is always there
    image_tags.append(layer_tag("base", root=root))
    built = ensure_layers("base", base_image=root)
    assert [r.tag for r in built] == [f"hud-base:{__version__}-on-hud-base-{__version__}"]
    assert labels(built[-1].tag)["org.hud.parent"] == standard.image_id
    assert ensure_layers("base")[-1].image_id == standard.image_id


def test_browser_layer_on_a_foreign_root_is_refused() -> None:
    """An env that needs Chromium cannot be carried onto Debian 11: a clear error."""
    _roots()
    with pytest.raises(ConfigError, match=r"the browser layer needs a Debian 12 root .* "
                                          r"Debian GNU/Linux 11 \(bullseye\); build"):
        ensure_layers("browser", base_image=bullseye_root())


def test_missing_base_image_names_it_and_the_fix() -> None:
    """A --base-image the engine does not have (and no --pull) is an error with the fix."""
    with pytest.raises(DockerError, match=r"base image 'hud-test-absent:never' is not in the "
                                          r"local Docker engine; load it \(`docker load -i "
                                          r"FILE`.*or pass --pull"):
        ensure_layers("base", base_image="hud-test-absent:never", pull=False)


def test_cli_build_with_missing_base_image_exits_1(tmp_path: Path) -> None:
    """`hud build --base-image MISSING` prints the error and the fix, exit 1."""
    folder = write_env(tmp_path / "env")
    result = CliRunner().invoke(cli, ["build", str(folder), "--base-image",
                                      "hud-test-absent:never", "--no-pull"])
    assert result.exit_code == 1
    assert "'hud-test-absent:never' is not in the local Docker engine" in result.output
    assert "--pull" in result.output
