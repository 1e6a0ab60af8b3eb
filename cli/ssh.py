"""`hud ssh CONTAINER [COMMAND...]`: a real OpenSSH session into a container's workspace.

It reads the container's `ssh/2` binding (its client key and pinned host key), writes
them to a private directory under ~/.cache/hud/ssh/, and runs OpenSSH with the exec
tunnel as ProxyCommand:

    ssh -i KEY -o UserKnownHostsFile=KNOWN -o StrictHostKeyChecking=yes \\
        -o ProxyCommand='docker exec -i CONTAINER hud connect --tunnel shell' -- agent@CONTAINER

`--print` shows that command line instead of running it (for scp, rsync, IDEs). Docker
runs through `hud.build.docker`: `HUD_DOCKER` names the client, in ProxyCommand too.

The manifest comes from an image someone else may have built: it is parsed by
`hud.clients.untrusted`'s strict models before any value is used, so a capability name, user or
key that could reach the shell running ProxyCommand, OpenSSH's `%` tokens, or a second
line of known_hosts is refused (and nothing is written). On top of that every value in
ProxyCommand is shell-quoted and every `%` in a value OpenSSH expands is doubled.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import click

from hud.cli.options import fail

# docker's container names and ids; the name also becomes a directory and an ssh host alias
CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# a path OpenSSH takes as one config value: no whitespace (UserKnownHostsFile splits on it),
# no quotes, backslashes or control characters
SSH_PATH = re.compile(r"[^\s\"'\\\x00-\x1f\x7f]+")


def check_container(container: str) -> str:
    """`container` if it is a docker container name or id.

    Raises:
        ConfigError: it is not (the allowed characters are named).
    """
    from hud.errors import ConfigError

    if not CONTAINER.fullmatch(container):
        raise ConfigError(f"{container!r} is not a container name or id: use letters, digits, "
                          f"'_', '.' and '-', starting with a letter or digit")
    return container


def read_manifest(container: str, docker: str | None = None) -> Any:
    """The decoded JSON `hud manifest` prints in `container` (not yet validated).

    Raises:
        DockerError: the docker client is missing, or `docker exec` failed.
        InfraError: the command printed no JSON.
    """
    from hud.build.docker import check
    from hud.clients.untrusted import loads
    from hud.errors import InfraError

    done = check("exec", "--", check_container(container), "hud", "manifest", binary=docker,
                 what=f"reading the manifest of container {container!r} (docker exec)")
    try:
        return loads(done.stdout)
    except ValueError as exc:  # not JSON, or nested absurdly deep
        raise InfraError(f"container {container!r} printed no JSON manifest ({exc}): "
                         f"{done.stdout[:200]!r}") from exc


def ssh_binding(manifest: Any, container: str, name: str | None) -> dict[str, Any]:
    """The `ssh/*` binding (`name`, or the first) of `container`'s manifest, validated.

    Raises:
        ProtocolError: the manifest is invalid (the field and value are named).
        ConfigError: it offers no such ssh capability (its bindings are listed).
    """
    from hud.clients.untrusted import parse_manifest
    from hud.errors import ConfigError

    bindings = parse_manifest(manifest, f"container {container!r}")["bindings"]
    ssh = [b for b in bindings if b["protocol"].startswith("ssh/") and name in (None, b["name"])]
    if not ssh:
        known = ", ".join(f"{b['name']} ({b['protocol']})" for b in bindings) or "none"
        raise ConfigError(f"container {container!r} offers no ssh capability"
                          f"{f' named {name!r}' if name else ''}; bindings: {known} (add "
                          f"`env.workspace()` to the environment)")
    return dict(ssh[0])


def _token_safe(value: str) -> str:
    """`value` for an OpenSSH option that expands `%` tokens: every `%` doubled."""
    return value.replace("%", "%%")


def ssh_argv(container: str, binding: dict[str, Any], key_dir: Path,
             docker: str | None = None) -> list[str]:
    """The OpenSSH command line for `binding` of `container` (writes the key files).

    Every value is checked before anything is written: the container name, the binding
    (name, user, keys, through `hud.clients.untrusted`) and the key directory's path.

    Raises:
        ConfigError: the container name or the key directory's path cannot be used.
        ProtocolError: the binding is invalid.
        DockerError: no docker client is installed.
    """
    from hud.build.docker import command_line
    from hud.clients.untrusted import ssh_params
    from hud.errors import ConfigError
    from hud.messages import Binding

    check_container(container)
    name = Binding.model_validate(binding).name
    params = ssh_params(binding)
    if not SSH_PATH.fullmatch(str(key_dir)):
        raise ConfigError(f"the key directory {str(key_dir)!r} has whitespace, quotes or "
                          f"control characters OpenSSH cannot take; set XDG_CACHE_HOME to a "
                          f"plain path")
    proxy = command_line("exec", "-i", container, "hud", "connect", "--tunnel", name,
                         binary=docker)
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = key_dir / "id_ed25519"
    key.write_text(params.client_key)
    key.chmod(0o600)
    known = key_dir / "known_hosts"
    known.write_text(f"{container} {params.known_hosts_key()}\n")
    return ["ssh", "-i", _token_safe(str(key)),
            "-o", f"UserKnownHostsFile={_token_safe(str(known))}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"ProxyCommand={_token_safe(proxy)}", "--", f"{params.user}@{container}"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("container")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--name", default=None, help="The ssh capability's name [default: the only one].")
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command line, run nothing.")
def ssh(container: str, command: tuple[str, ...], name: str | None, print_only: bool) -> None:
    """Open an ssh session (or run COMMAND) in CONTAINER's workspace, as the agent."""
    from hud.build.docker import docker_bin

    check_container(container)
    docker = docker_bin()  # resolved once: the manifest and ProxyCommand use one client
    binding = ssh_binding(read_manifest(container, docker), container, name)
    key_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hud" / "ssh" / container
    argv = ssh_argv(container, binding, key_dir, docker) + list(command)
    if print_only:
        click.echo(shlex.join(argv))
        return
    if shutil.which("ssh") is None:
        fail("OpenSSH's client is not installed: apt-get install openssh-client")
    os.execvp("ssh", argv)
