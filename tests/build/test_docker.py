"""hud.build.docker: the engine check, build failures, inspect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hud.build.docker as hd
import pytest
from hud.errors import DockerError

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
    with pytest.raises(DockerError, match=r"engine is not reachable.*start the engine"):
        hd.ensure_engine()


def test_failed_step_is_found_in_a_classic_log() -> None:
    """The last `Step N/M` line and the output after it are what a failure reports."""
    step, output = hd._failed_step(CLASSIC_LOG)
    assert step == "Step 3/3 : RUN echo about to fail && exit 3"
    assert output.splitlines()[-1] == "about to fail"
    assert "fine" not in output


@pytest.mark.docker
def test_failing_step_reports_step_and_log_tail(tmp_path: Path, base_layer: str,  # noqa: F811
                                                image_tags: list[str]) -> None:  # noqa: F811
    """A failing RUN raises DockerError naming the step and quoting its output."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_layer}\nRUN echo fine\nRUN echo boom-marker-7 && exit 3\n")
    tag = unique_tag("hud-test-fail")
    image_tags.append(tag)
    with pytest.raises(DockerError, match=r"(?s)failed at Step 3/3 : RUN echo boom-marker-7.*"
                                          r"boom-marker-7\n.*returned a non-zero code: 3"):
        hd.build(tmp_path, tag)


@pytest.mark.docker
def test_build_returns_the_image_id(tmp_path: Path, base_layer: str,  # noqa: F811
                                   image_tags: list[str]) -> None:  # noqa: F811
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
    with pytest.raises(DockerError, match="no image 'hud-test-none:x'.*build it first"):
        hd.image_labels("hud-test-none:x")
