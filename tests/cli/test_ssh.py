"""`hud ssh` with a hostile manifest: refused with the field named, nothing run or written.

The manifest is the untrusted input under test, so it is fed through a stand-in `docker`
client (HUD_DOCKER) that prints it for `docker exec C hud manifest` and logs every call;
the real OpenSSH client then runs the ProxyCommand hud builds. The real-container run of
`hud ssh` is in tests/capabilities/test_capabilities_docker.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.manifestkit import HOST_PUBKEY, valid_manifest, with_field

STUB = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["HUD_TEST_CALLS"], "a") as log:
    log.write(json.dumps(sys.argv) + "\\n")
if sys.argv[1:2] == ["exec"] and sys.argv[-2:] == ["hud", "manifest"]:
    sys.stdout.write(open(os.environ["HUD_TEST_MANIFEST"]).read())
"""


class Host:
    """A scratch host: a stand-in docker client, a cache dir, a working dir to watch."""

    def __init__(self, root: Path, docker_dir: str = "bin") -> None:
        self.root = root
        self.work = root / "work"
        self.work.mkdir()
        self.cache = root / "cache"
        folder = root / docker_dir
        folder.mkdir()
        self.docker = folder / "docker"
        self.docker.write_text(STUB)
        self.docker.chmod(0o755)
        self.calls_file = root / "calls.jsonl"
        self.manifest_file = root / "manifest.json"

    def hud_ssh(self, manifest: Any, *args: str) -> subprocess.CompletedProcess[str]:
        self.manifest_file.write_text(json.dumps(manifest))
        env = {**os.environ, "HUD_DOCKER": str(self.docker), "XDG_CACHE_HOME": str(self.cache),
               "HUD_TEST_CALLS": str(self.calls_file), "HUD_TEST_MANIFEST": str(self.manifest_file),
               "SHELL": "/bin/sh"}
        return subprocess.run([sys.executable, "-m", "hud.cli.main", "ssh", *args], cwd=self.work,
                              env=env, capture_output=True, text=True, timeout=60)

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def planted(self) -> list[Path]:
        """Files a hostile value would have created (`touch FILE`/`PWNED`) anywhere here."""
        return [p for p in self.root.rglob("*") if p.name in ("FILE", "PWNED")]


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


HOSTILE = [
    ("bindings.0.name", "shell$(touch FILE)", r"bindings\[0\]\.name"),
    ("bindings.0.name", "`touch FILE`", r"bindings\[0\]\.name"),
    ("bindings.0.name", "a b", r"bindings\[0\]\.name"),
    ("bindings.0.name", "x;touch FILE", r"bindings\[0\]\.name"),
    ("bindings.0.name", "%h", r"bindings\[0\]\.name"),
    ("bindings.0.params.host_pubkey", HOST_PUBKEY + "\n* ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE",
     r"bindings\[0\]\.params\.host_pubkey"),
    ("bindings.0.params.user", "-oProxyCommand=touch FILE", r"bindings\[0\]\.params\.user"),
]


@pytest.mark.parametrize("print_only", [True, False], ids=["print", "run"])
@pytest.mark.parametrize(("field", "value", "named"), HOSTILE, ids=[h[1][:24] for h in HOSTILE])
def test_hostile_manifest_is_refused_and_runs_nothing(host: Host, field: str, value: str,
                                                      named: str, print_only: bool) -> None:
    """A hostile field: exit 1 naming it; ssh never started, no key or known_hosts written."""
    done = host.hud_ssh(with_field(field, value), "c1", *(["--print"] if print_only else ["true"]))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: container 'c1' sent an invalid manifest" in done.stderr
    assert re.search(named, done.stderr), done.stderr
    assert done.stdout == ""
    assert host.planted() == [] and not host.cache.exists()
    assert [c[1:] for c in host.calls()] == [["exec", "--", "c1", "hud", "manifest"]]


@pytest.mark.parametrize("container", ["c1;touch FILE", "-oProxyCommand=touch FILE", "%h", "a b"])
def test_hostile_container_argument_is_refused_before_docker(host: Host, container: str) -> None:
    """A container argument that is not a docker name: exit 1, docker never called."""
    done = host.hud_ssh(valid_manifest(), "--print", "--", container)
    assert done.returncode == 1 and "is not a container name or id" in done.stderr
    assert host.calls() == [] and host.planted() == [] and not host.cache.exists()


def test_valid_manifest_prints_a_quoted_command_and_writes_pinned_keys(host: Host) -> None:
    """--print: one quoted ProxyCommand; a 0600 key; known_hosts is one pinned line."""
    done = host.hud_ssh(valid_manifest(), "c1", "--print")
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout)
    proxy = argv[argv.index("-o", argv.index("IdentitiesOnly=yes")) + 1]
    assert proxy == f"ProxyCommand={host.docker} exec -i c1 hud connect --tunnel shell"
    assert argv[-2:] == ["--", "agent@c1"]
    key_dir = host.cache / "hud" / "ssh" / "c1"
    assert stat.S_IMODE((key_dir / "id_ed25519").stat().st_mode) == 0o600
    assert (key_dir / "known_hosts").read_text() == f"c1 {HOST_PUBKEY}\n"


def test_unknown_capability_name_lists_the_bindings(host: Host) -> None:
    """--name of a capability the container lacks: exit 1, its bindings listed."""
    done = host.hud_ssh(valid_manifest(), "c1", "--name", "nope", "--print")
    assert done.returncode == 1
    assert "offers no ssh capability named 'nope'; bindings: shell (ssh/2), tools" in done.stderr


def test_openssh_runs_the_proxy_command_verbatim(tmp_path: Path) -> None:
    """Real OpenSSH: a docker path with shell syntax and `%` reaches docker as one word."""
    if shutil.which("ssh") is None:
        pytest.fail("openssh-client is not installed (scripts/setup installs it)")
    host = Host(tmp_path, docker_dir="d $(touch PWNED) `touch FILE` %h;x")
    done = host.hud_ssh(valid_manifest(), "c1", "true")
    assert done.returncode == 255  # the stand-in docker closes the tunnel at once
    connect = [c for c in host.calls() if "connect" in c]
    assert connect and connect[0] == [str(host.docker), "exec", "-i", "c1", "hud", "connect",
                                      "--tunnel", "shell"]
    assert host.planted() == []
