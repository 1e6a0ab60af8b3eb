"""hud.build.layers / hud.build.rootfs: layer names, mirrors, the layers themselves, save/load/prune."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from hud import __version__
from hud.build.layers import chain, layer_tag, load, save, verify_archive
from hud.build.rootfs import mirror_candidates, rootfs_tag
from hud.cli.main import cli
from hud.errors import ConfigError
from tests.docker_fixtures import (  # noqa: F401
    base_layer,
    browser_layer,
    containers,
    desktop_layer,
    docker_cli,
    image_tags,
    labels,
    unique_tag,
)

LOCAL = "http://127.0.0.1:3142/debian"


def test_layer_tags_follow_the_hud_version() -> None:
    """Each layer is tagged with the installed hud version."""
    assert layer_tag("browser") == f"hud-browser:{__version__}"


def test_unknown_layer_is_refused() -> None:
    """A layer name hud does not have raises with the choices."""
    with pytest.raises(ConfigError, match="unknown layer 'gpu'; choose one of base, browser"):
        layer_tag("gpu")


def test_chain_lists_parents_first() -> None:
    """desktop needs browser, which needs base."""
    assert chain("desktop") == ["base", "browser", "desktop"]


def test_mirror_comes_from_deb822_sources(tmp_path: Path) -> None:
    """The main Debian URI of a .sources file is found; security and others are not."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(
        f"Types: deb\n# a comment\nURIs: {LOCAL}\nSuites: bookworm bookworm-updates\n"
        f"Components: main\n\nTypes: deb\nURIs: http://127.0.0.1:3142/debian-security\n"
        f"Suites: bookworm-security\nComponents: main\n")
    (tmp_path / "d" / "other.sources").write_text(
        "Types: deb\nURIs: http://127.0.0.1:9/node\nSuites: nodistro\nComponents: main\n")
    assert mirror_candidates(tmp_path / "d", tmp_path / "none.list") == [LOCAL]


def test_mirror_comes_from_one_line_sources_list(tmp_path: Path) -> None:
    """A classic `deb URI suite main` line is understood, options included."""
    listing = tmp_path / "sources.list"
    listing.write_text(f"# comment\ndeb [arch=amd64] {LOCAL} bookworm main contrib\n"
                       "deb-src http://127.0.0.1:3142/src bookworm main\n")
    assert mirror_candidates(tmp_path / "none.d", listing) == [LOCAL]


def test_no_mirror_means_pass_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without any Debian source the error says to pass --mirror."""
    import hud.build.rootfs as hb

    monkeypatch.setattr(hb, "_SOURCES_D", tmp_path / "none.d")
    monkeypatch.setattr(hb, "_SOURCES_LIST", tmp_path / "none.list")
    with pytest.raises(ConfigError, match=r"no Debian mirror found.*--mirror URL"):
        hb.default_mirror()


def _archive(path: Path) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", b"[]"), ("blob", b"x" * 200_000)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_truncated_archive_is_refused(tmp_path: Path) -> None:
    """A tarball cut short is reported as truncated, with the fix, before docker sees it."""
    path = tmp_path / "images.tar"
    _archive(path)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(ConfigError, match=r"images.tar is truncated .*copy it again"):
        verify_archive(path)


def test_non_image_archive_is_refused(tmp_path: Path) -> None:
    """A file that is not a tarball is refused with the fix."""
    path = tmp_path / "notes.tar"
    path.write_text("hello, not a tar file at all" * 40)
    with pytest.raises(ConfigError, match=r"notes\.tar is not an image archive"):
        verify_archive(path)


def test_cli_load_of_truncated_file_exits_1(tmp_path: Path) -> None:
    """`hud images load` of a truncated file prints the error and exits 1."""
    path = tmp_path / "images.tar"
    _archive(path)
    path.write_bytes(path.read_bytes()[:1000])
    result = CliRunner().invoke(cli, ["images", "load", str(path)])
    assert result.exit_code == 1
    assert "is truncated" in result.output


@pytest.mark.docker
@pytest.mark.parametrize("layer", ["base_layer", "browser_layer", "desktop_layer"])
def test_layer_layout(layer: str, request: pytest.FixtureRequest) -> None:
    """In every layer (children rerun the base's checks): hud on PATH, agent is uid 1000
    without sudo, /workspace is agent's, the env dir is root-only."""
    image = request.getfixturevalue(layer)
    done = docker_cli("run", "--rm", image, "bash", "-c",
                      "hud --version; id -u agent; stat -c '%U %a' /workspace /opt/hud/env; "
                      "echo HUD_ENV=$HUD_ENV; command -v sudo || echo no-sudo; "
                      "test -x /usr/lib/openssh/sftp-server && echo sftp; command -v setpriv tini",
                      check=True)
    lines = done.stdout.split("\n")
    assert lines[0] == f"hud, version {__version__}"
    assert lines[1:6] == ["1000", "agent 755", "root 700", "HUD_ENV=/opt/hud/env", "no-sudo"]
    assert "sftp" in lines and "/usr/bin/setpriv" in lines


@pytest.mark.docker
@pytest.mark.parametrize("layer", ["base_layer", "browser_layer", "desktop_layer"])
def test_agent_cannot_read_the_env_dir(layer: str, request: pytest.FixtureRequest) -> None:
    """In every layer, uid 1000 cannot list /opt/hud/env."""
    image = request.getfixturevalue(layer)
    done = docker_cli("run", "--rm", "-u", "agent", image, "ls", "/opt/hud/env")
    assert done.returncode != 0 and "Permission denied" in done.stderr


@pytest.mark.docker
def test_entrypoint_runs_hooks_in_order(base_layer: str, tmp_path: Path) -> None:
    """Scripts in /etc/hud/entrypoint.d run in name order before the command."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("20-second", "10-first"):
        (hooks / name).write_text(f"#!/bin/sh\necho {name} >> /tmp/order\n")
        (hooks / name).chmod(0o755)
    done = docker_cli("run", "--rm", "-v", f"{hooks}:/etc/hud/entrypoint.d:ro", base_layer,
                      "cat", "/tmp/order", check=True)
    assert done.stdout.split() == ["10-first", "20-second"]


@pytest.mark.docker
def test_failing_hook_stops_the_container(base_layer: str, tmp_path: Path) -> None:
    """A hook that fails keeps the command from running."""
    (tmp_path / "10-fail").write_text("#!/bin/sh\nexit 7\n")
    (tmp_path / "10-fail").chmod(0o755)
    done = docker_cli("run", "--rm", "-v", f"{tmp_path}:/etc/hud/entrypoint.d:ro", base_layer,
                      "echo", "should-not-run")
    assert done.returncode == 7 and "should-not-run" not in done.stdout


@pytest.mark.docker
@pytest.mark.parametrize("layer", ["base_layer", "browser_layer", "desktop_layer"])
def test_layer_defaults(layer: str, request: pytest.FixtureRequest) -> None:
    """root by default, tini → entrypoint → `hud serve`, a HEALTHCHECK asking the daemon."""
    image = request.getfixturevalue(layer)
    done = docker_cli("image", "inspect", "--format", "{{json .Config}}", image, check=True)
    config = json.loads(done.stdout)
    assert config["User"] in ("", "root")
    assert config["Entrypoint"] == ["tini", "--", "/opt/hud/bin/entrypoint"]
    assert config["Cmd"] == ["hud", "serve"]
    assert config["Healthcheck"]["Test"] == ["CMD", "hud", "health"]


@pytest.mark.docker
def test_layers_carry_version_and_source_labels(base_layer: str) -> None:
    """The base layer is labelled with its layer name, hud version and source fingerprint."""
    found = labels(base_layer)
    assert found["org.hud.layer"] == "base"
    assert found["org.hud.version"] == __version__
    assert re.fullmatch(r"[0-9a-f]{16}", found["org.hud.source"])


@pytest.mark.docker
def test_layer_from_other_hud_source_is_stale(base_layer: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer built from a different hud source is not current (so it gets rebuilt)."""
    import hud.build.layers as hi

    source = labels(base_layer)["org.hud.source"]
    monkeypatch.setattr(hi, "fingerprint", lambda: source)
    assert hi.is_current("base")
    monkeypatch.setattr(hi, "fingerprint", lambda: "0" * 16)
    assert not hi.is_current("base")


def test_missing_root_image_is_bootstrapped_with_a_notice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With no Debian image in the engine and no pulling allowed, hud bootstraps one and
    says so in one line."""
    import hud.build.layers as hi

    monkeypatch.setattr(hi, "inspect_image", lambda ref: None)
    monkeypatch.setattr(hi, "bootstrap", lambda: "hud-rootfs:bookworm")
    notices: list[str] = []
    assert hi.resolve_base_image(pull=False, notify=notices.append) == "hud-rootfs:bookworm"
    assert len(notices) == 1
    assert notices[0].startswith("debian:bookworm-slim is not available locally: bootstrapping")


def test_local_debian_image_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    """A debian:bookworm-slim already in the engine is used as is (no bootstrap, no pull)."""
    import hud.build.layers as hi

    monkeypatch.setattr(hi, "inspect_image",
                        lambda ref: {"Id": "x"} if ref == "debian:bookworm-slim" else None)
    monkeypatch.setattr(hi, "bootstrap", lambda: pytest.fail("bootstrapped"))
    assert hi.resolve_base_image(pull=False) == "debian:bookworm-slim"


@pytest.mark.docker
def test_bootstrapped_rootfs_is_offline_ready(containers) -> None:
    """The debootstrapped root has the base layer's packages and the host's mirror."""
    from hud.build.docker import inspect_image
    from hud.build.rootfs import bootstrap, default_mirror

    tag = rootfs_tag()
    if inspect_image(tag) is None:
        bootstrap()
    done = docker_cli("run", "--rm", tag, "bash", "-c",
                      "python3 -c 'import venv, ensurepip' && command -v tini setpriv && "
                      "cat /etc/apt/sources.list", check=True)
    assert "/usr/bin/tini" in done.stdout
    assert default_mirror() in done.stdout


@pytest.mark.docker
def test_browser_layer_runs_chromium(browser_layer: str) -> None:
    """`chromium --version` works in the browser layer."""
    done = docker_cli("run", "--rm", browser_layer, "chromium", "--version", check=True)
    assert done.stdout.startswith("Chromium ")


@pytest.mark.docker
def test_desktop_layer_serves_rfb(desktop_layer: str) -> None:
    """Xvnc starts in the desktop layer and answers with an RFB 3.8 greeting."""
    probe = (
        "import socket, time\n"
        "deadline = time.monotonic() + 20\n"
        "while True:\n"
        "    try:\n"
        "        s = socket.create_connection(('127.0.0.1', 5901), timeout=2); break\n"
        "    except OSError:\n"
        "        if time.monotonic() > deadline: raise\n"
        "        time.sleep(0.05)\n"
        "print(s.recv(12).decode().strip())\n"
    )
    script = ("python3 -c 'import tkinter' && Xvnc :1 -SecurityTypes None -rfbport 5901 -geometry 1024x768 "
              ">/tmp/xvnc.log 2>&1 & python3 -c \"$PROBE\"; "
              "DISPLAY=:1 xdpyinfo | grep -m1 dimensions")
    done = docker_cli("run", "--rm", "-e", f"PROBE={probe}", "-u", "agent", desktop_layer,
                      "bash", "-c", script, check=True)
    assert done.stdout.splitlines()[0] == "RFB 003.008"
    assert "1024x768" in done.stdout


@pytest.mark.docker
def test_save_then_load_round_trips(tmp_path: Path, image_tags: list[str]) -> None:
    """An image saved to a tarball and removed comes back with `load`."""
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        data = b"tiny\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    tag = unique_tag("hud-test-tiny") + ":1"
    image_tags.append(tag)
    docker_cli("import", str(rootfs), tag, check=True)
    archive = tmp_path / "saved.tar"
    assert save(archive, [tag]) == [tag]
    docker_cli("rmi", tag, check=True)
    assert load(archive) == [tag]
    docker_cli("image", "inspect", tag, check=True)


@pytest.mark.docker
def test_prune_removes_other_versions_only(base_layer: str) -> None:
    """`hud images prune` untags hud layers of other versions and keeps the current one."""
    old = "hud-base:0.0.0-test"
    docker_cli("tag", base_layer, old, check=True)
    try:
        result = CliRunner().invoke(cli, ["images", "prune"])
        assert result.exit_code == 0, result.output
        assert old in result.output.split()
        assert docker_cli("image", "inspect", old).returncode != 0
        docker_cli("image", "inspect", base_layer, check=True)
    finally:
        docker_cli("rmi", old)


@pytest.mark.docker
def test_list_shows_layers_and_rootfs(base_layer: str) -> None:
    """`hud images list --json` includes the base layer."""
    result = CliRunner().invoke(cli, ["images", "list", "--json"])
    rows = json.loads(result.stdout)
    assert any(r["image"] == base_layer and r["kind"] == "layer" for r in rows)


def test_rootfs_tag_names_the_suite() -> None:
    """A bootstrapped root is tagged hud-rootfs:<suite>."""
    assert rootfs_tag("trixie") == "hud-rootfs:trixie"


@pytest.mark.docker
def test_base_layer_builds_on_a_plain_debian_root(image_tags: list[str]) -> None:
    """On a root without python3/tini (like debian:bookworm-slim) the base layer installs
    them with apt and still works."""
    from hud.build.docker import inspect_image
    from hud.build.layers import build_layer
    from hud.build.rootfs import bootstrap

    plain = "hud-test-plain:bookworm"
    if inspect_image(plain) is None:
        bootstrap(tag=plain, include=())
    check = docker_cli("run", "--rm", plain, "sh", "-c", "command -v python3 tini || echo none")
    assert check.stdout.strip() == "none"
    tag = unique_tag("hud-test-base-plain")
    image_tags.append(tag)
    build_layer("base", base_image=plain, tag=tag)
    done = docker_cli("run", "--rm", tag, "bash", "-c", "hud --version && command -v tini",
                      check=True)
    assert done.stdout.split("\n")[:2] == [f"hud, version {__version__}", "/usr/bin/tini"]
