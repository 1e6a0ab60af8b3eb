"""hud.build.docker: the engine check, build failures, inspect, and the async twins."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

import hud.build.docker as hd
from hud.errors import DockerError
from tests.build.fakedocker import ENGINE_DOWN, FakeDocker
from tests.docker_fixtures import base_layer, image_tags, unique_tag  # noqa: F401

CLASSIC_LOG = """\
Step 1/3 : FROM hud-base:0.1.0
 ---> 3e4821a0aabb
Step 2/3 : RUN echo fine
 ---> Running in 1
fine
 ---> 5d1
Step 3/3 : RUN echo about to fail && exit 3
 ---> Running in 2
about to fail
"""


@pytest.fixture
def fresh_check() -> Iterator[None]:
    """Forget which clients were already checked, before and after the test."""
    hd._checked.clear()
    yield
    hd._checked.clear()


def test_missing_client_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      fresh_check: None) -> None:
    """With no docker on PATH the error says Docker is missing and how to install it."""
    monkeypatch.delenv("HUD_DOCKER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DockerError, match=r"Docker is not installed.*scripts/setup"):
        hd.ensure_engine()


def test_engine_down_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   fresh_check: None) -> None:
    """When the engine does not answer, the error quotes docker and says how to start it."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(DockerError, match=r"engine is not reachable.*start it as root: `systemctl"):
        hd.ensure_engine()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """A stand-in client as $HUD_DOCKER (tests/build/fakedocker.py)."""
    client = FakeDocker(tmp_path / "bin")
    client.use(monkeypatch)
    return client


async def test_adocker_runs_hud_docker_and_returns_its_answer(fake: FakeDocker) -> None:
    """adocker runs $HUD_DOCKER with the arguments given and returns code and output."""
    done = await hd.adocker("ps", "-aq", "--filter", "label=x")
    assert done.ok and done.stdout == "\n"
    assert fake.calls() == [[str(fake.path), "ps", "-aq", "--filter", "label=x"]]


async def test_acheck_with_the_engine_down_says_how_to_start_it(
        fake: FakeDocker, monkeypatch: pytest.MonkeyPatch) -> None:
    """acheck of a failing command: DockerError with what failed, docker's words, the fix."""
    monkeypatch.setenv("FAKE_DOCKER_DOWN", "1")
    with pytest.raises(DockerError, match=rf"(?s)listing things failed: the Docker engine is not reachable \("
                                          rf"{ENGINE_DOWN[:30]}.*start it as root"):
        await hd.acheck("ps", what="listing things")


def test_check_names_the_command_when_not_told_what(fake: FakeDocker) -> None:
    """check of an unknown command: DockerError naming `docker ARGS` and the exit code."""
    with pytest.raises(DockerError, match=r"docker frobnicate --hard failed \(exit 125\): "
                                          r"fake docker: unexpected"):
        hd.check("frobnicate", "--hard")


async def test_adocker_past_its_timeout_is_a_docker_error(fake: FakeDocker) -> None:
    """A docker command that hangs is killed and reported as a DockerError."""
    with pytest.raises(DockerError, match=r"did not finish within 0.5s.*Docker engine answers"):
        await hd.adocker("sleep", timeout=0.5)


async def test_spawn_gives_a_live_process_of_hud_docker(fake: FakeDocker) -> None:
    """spawn starts $HUD_DOCKER with pipes: what goes into stdin comes back on stdout."""
    proc = await hd.spawn("echo")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"ping\n")
    proc.stdin.write_eof()
    assert await proc.stdout.read() == b"ping\n"
    assert await proc.wait() == 0
    assert fake.calls() == [[str(fake.path), "echo"]]


def test_command_line_quotes_every_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """command_line: the client's path and each argument survive a shell as one word each."""
    odd = FakeDocker(tmp_path / "d $(x) `y` ;z")
    monkeypatch.setenv("HUD_DOCKER", str(odd.path))
    line = hd.command_line("exec", "-i", "c1", "a b")
    assert shlex.split(line) == [str(odd.path), "exec", "-i", "c1", "a b"]


def test_hud_docker_that_is_not_executable_is_named(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """HUD_DOCKER naming a file that is not executable: DockerError with the value."""
    plain = tmp_path / "docker"
    plain.write_text("not a program")
    monkeypatch.setenv("HUD_DOCKER", str(plain))
    with pytest.raises(DockerError, match=r"HUD_DOCKER=.*/docker' is not an executable .*unset it"):
        hd.docker_bin()


def test_failed_step_is_found_in_a_classic_log() -> None:
    """The last `Step N/M` line and the output after it are what a failure reports."""
    step, output = hd._failed_step(CLASSIC_LOG)
    assert step == "Step 3/3 : RUN echo about to fail && exit 3"
    assert output.splitlines()[-1] == "about to fail"
    assert "fine" not in output


@pytest.mark.docker
def test_failing_step_reports_step_and_log_tail(tmp_path: Path, base_layer: str,
                                                image_tags: list[str]) -> None:
    """A failing RUN raises DockerError naming the step and quoting its output."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_layer}\nRUN echo fine\nRUN echo boom-marker-7 && exit 3\n")
    tag = unique_tag("hud-test-fail")
    image_tags.append(tag)
    with pytest.raises(DockerError, match=r"(?s)failed at Step 3/3 : RUN echo boom-marker-7.*"
                                          r"boom-marker-7\n.*returned a non-zero code: 3"):
        hd.build(tmp_path, tag)


@pytest.mark.docker
def test_build_returns_the_image_id(tmp_path: Path, base_layer: str,
                                   image_tags: list[str]) -> None:
    """A successful build returns the id the tag now names, with the labels given."""
    (tmp_path / "Dockerfile").write_text(f"FROM {base_layer}\n")
    tag = unique_tag("hud-test-ok")
    image_tags.append(tag)
    image_id = hd.build(tmp_path, tag, labels={"org.hud.test": "yes"})
    assert image_id.startswith("sha256:")
    assert hd.image_labels(tag)["org.hud.test"] == "yes"


@pytest.mark.docker
def test_inspect_of_a_missing_image_is_none() -> None:
    """inspect_image answers None (not an error) for an unknown image."""
    assert hd.inspect_image("hud-test-no-such-image:never") is None


@pytest.mark.docker
def test_labels_of_a_missing_image_say_build_it() -> None:
    """image_labels of an unknown image raises with the fix."""
    with pytest.raises(DockerError, match=r"no image 'hud-test-none:x'.*build it first"):
        hd.image_labels("hud-test-none:x")
