"""No wheel left in an image: hud-base and env images with a requirements.txt install their
wheels in a throwaway build stage, so no layer holds them or names them."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hud.build import layers as hud_layers
from hud.build import wheelhouse
from hud.build.docker import build as docker_build
from hud.build.env_image import GENERATED_WITH_REQUIREMENTS, REQUIREMENTS, build_env
from hud.build.layers import PARENT_LABEL, build_layer
from tests.build.image_layers import image_layers, layer_count
from tests.docker_fixtures import (  # noqa: F401
    base_layer,
    docker_cli,
    image_tags,
    labels,
    unique_tag,
)

pytestmark = pytest.mark.docker

PROBE = "hud-probe"
#: what a layer's command would say if it carried the wheels (the folders the builds use)
WHEEL_WORDS = ("wheelhouse", "hud-wheel", "--find-links", ".whl")
PROBE_ENV = """\
import hud_probe
from hud import Environment

env = Environment(name="probe-env")


@env.template()
async def probe_version():
    answer = yield "Which hud_probe version is installed?"
    yield 1.0 if answer == hud_probe.VERSION else 0.0
"""


def probe_wheel(folder: Path, version: str, modules: dict[str, str]) -> Path:
    """Write a pure-python wheel of `hud-probe` VERSION holding `hud_probe/<name>.py`."""
    info = f"hud_probe-{version}.dist-info"
    files = {f"hud_probe/{name}.py": text for name, text in modules.items()}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: {version}\n"
    files[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: hud-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{name},sha256={digest.rstrip(b'=').decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    path = folder / f"hud_probe-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return path


@pytest.fixture(scope="module")
def probe_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with hud-probe 1.0 (with old.py) and 2.0 (with new.py)."""
    folder = tmp_path_factory.mktemp("probe-wheels")
    probe_wheel(folder, "1.0", {"__init__": 'VERSION = "1.0"\n', "old": ""})
    probe_wheel(folder, "2.0", {"__init__": 'VERSION = "2.0"\n', "new": ""})
    return folder


@pytest.fixture(scope="module")
def probe_env(tmp_path_factory: pytest.TempPathFactory, base_layer: str,
              probe_wheels: Path) -> Iterator[str]:
    """`hud build` of an env whose requirements.txt names hud-probe==2.0 (from a local
    find-links folder, no index); the image is removed afterwards."""
    folder = tmp_path_factory.mktemp("probe-env") / "probe"
    folder.mkdir()
    (folder / "env.py").write_text(PROBE_ENV)
    (folder / REQUIREMENTS).write_text(f"{PROBE}==2.0\n")
    tag = unique_tag("hud-test-probe")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PIP_NO_INDEX", "1")
            patch.setenv("PIP_FIND_LINKS", str(probe_wheels))
            build_env(folder, tag=tag)
        yield tag
    finally:
        docker_cli("rmi", "-f", tag, timeout=120)


def _history(image: str) -> list[str]:
    done = docker_cli("history", "--no-trunc", "--format", "{{.CreatedBy}}\t{{.Size}}", image,
                      check=True)
    return done.stdout.splitlines()


def _own_layers(image: str) -> list[tuple[str, int, list[str]]]:
    """(command, wheel bytes, wheel paths) of each layer above the image's root filesystem."""
    root = labels(image)[PARENT_LABEL]
    return [(layer.created_by[:120], layer.wheel_bytes, sorted(layer.wheels))
            for layer in image_layers(image)[layer_count(root):]]


def _python(image: str, code: str) -> str:
    done = docker_cli("run", "--rm", "--network", "none", "--entrypoint", "python", image,
                      "-c", code, check=True)
    return done.stdout.strip()


def test_base_layer_history_names_no_wheelhouse(base_layer: str) -> None:
    """No step in hud-base's history copies, installs from or removes a wheelhouse."""
    assert [line for line in _history(base_layer)
            if any(word in line for word in WHEEL_WORDS)] == []


def test_base_layer_layers_hold_no_wheel(base_layer: str) -> None:
    """Every layer hud-base adds to its root image holds zero bytes of wheels."""
    assert [row for row in _own_layers(base_layer) if row[1]] == []


def test_env_history_names_no_wheels(probe_env: str) -> None:
    """An env image built with a requirements.txt names no wheel folder in its history."""
    history = _history(probe_env)
    assert [line for line in history if any(word in line for word in WHEEL_WORDS)] == []
    assert any("COPY" in line for line in history)


def test_env_layers_hold_no_wheel(probe_env: str) -> None:
    """No layer of the env image, above its root image, holds a wheel."""
    assert [row for row in _own_layers(probe_env) if row[1]] == []


@pytest.mark.parametrize("image", ["base_layer", "probe_env"])
def test_only_debians_own_wheels_are_on_disk(image: str, request: pytest.FixtureRequest) -> None:
    """`find / -name '*.whl'` finds only the wheels Debian's python3-venv ships (dpkg's)."""
    ref = request.getfixturevalue(image)
    script = ('find / -xdev -name "*.whl" | while read -r f; do '
              'dpkg -S "$f" >/dev/null 2>&1 || echo "$f"; done')
    done = docker_cli("run", "--rm", "--network", "none", "--entrypoint", "bash", ref, "-c",
                      script, check=True)
    assert done.stdout.split() == []


def test_requirement_imports_in_the_env_image(probe_env: str) -> None:
    """The requirement is importable by the runtime's interpreter, at the version asked."""
    assert _python(probe_env, "import hud_probe, sys; print(hud_probe.VERSION, sys.prefix)") \
        == "2.0 /opt/hud/venv"


def test_requirement_upgrading_a_layer_package_leaves_one_version(
        tmp_path: Path, base_layer: str, probe_wheels: Path,
        image_tags: list[str]) -> None:
    """Built on a layer that has hud-probe 1.0, requirements asking for 2.0 leave 2.0 only:
    1.0's files and dist-info are pruned, and so is pip-staged's list of them."""
    older = tmp_path / "older"
    older.mkdir()
    (older / "probe.whl").write_bytes((probe_wheels / "hud_probe-1.0-py3-none-any.whl")
                                      .read_bytes())
    (older / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY probe.whl /tmp/hud_probe-1.0-py3-none-any.whl\n"
        "RUN /opt/hud/venv/bin/pip install -q --no-index /tmp/hud_probe-1.0-py3-none-any.whl\n")
    with_older = unique_tag("hud-test-probe-old")
    image_tags.append(with_older)
    docker_build(older, with_older, build_args={"BASE_IMAGE": base_layer})
    context = tmp_path / "context"
    (context / "wheels").mkdir(parents=True)
    (context / "env").mkdir()
    (context / "env" / "env.py").write_text(PROBE_ENV)
    newer = probe_wheels / "hud_probe-2.0-py3-none-any.whl"
    (context / "wheels" / newer.name).write_bytes(newer.read_bytes())
    (context / "wheels" / REQUIREMENTS).write_text(f"{PROBE}==2.0\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(GENERATED_WITH_REQUIREMENTS.format(
        version="test", env_dir="/opt/hud/env", requirements=REQUIREMENTS))
    upgraded = unique_tag("hud-test-probe-new")
    image_tags.append(upgraded)
    docker_build(context, upgraded, dockerfile=dockerfile, build_args={"BASE_IMAGE": with_older})
    state = _python(upgraded, (
        "import glob, json, os, hud_probe\n"
        "site = os.path.dirname(os.path.dirname(hud_probe.__file__))\n"
        "print(json.dumps([hud_probe.VERSION, sorted(os.listdir(os.path.dirname("
        "hud_probe.__file__))), sorted(os.path.basename(p) for p in glob.glob(site + "
        "'/hud_probe-*')), os.path.exists('/opt/hud/.pip-removed')]))"))
    version, modules, dist_infos, listed = json.loads(state)
    assert (version, dist_infos, listed) == ("2.0", ["hud_probe-2.0.dist-info"], False)
    assert "old.py" not in modules and "new.py" in modules


def test_hud_edit_reuses_the_dependency_layer(base_layer: str, image_tags: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A different hud wheel rebuilds only the top layer of hud-base: the venv of hud's
    dependencies (~80 MB) below it is the same layer, from Docker's cache."""
    real = wheelhouse.make_wheelhouse

    def edited(dest: Path, hud_dest: Path | None = None) -> list[str]:
        names = real(dest, hud_dest=hud_dest)
        wheel = next((hud_dest or dest).glob("hud_python-*.whl"))
        with zipfile.ZipFile(wheel, "a") as zf:
            zf.writestr("hud/_edited_by_test.py", "EDITED = True\n")
        return names

    monkeypatch.setattr(hud_layers, "make_wheelhouse", edited)
    tag = unique_tag("hud-test-edited-base")
    image_tags.append(tag)
    build_layer("base", tag=tag)

    def rootfs(ref: str) -> list[str]:
        done = docker_cli("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref,
                          check=True)
        return [str(layer) for layer in json.loads(done.stdout)]

    before, after = rootfs(base_layer), rootfs(tag)
    assert len(after) == len(before)
    assert after[:-1] == before[:-1]
    assert after[-1] != before[-1]
    assert _python(tag, "import hud._edited_by_test as e; print(e.EDITED)") == "True"
