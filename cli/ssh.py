"""`hud ssh CONTAINER [COMMAND...]`: a real OpenSSH session into a container's workspace.

It reads the container's `ssh/2` binding (its client key and pinned host key), writes
them to a private directory under ~/.cache/hud/ssh/, and runs OpenSSH with the exec
tunnel as ProxyCommand:

    ssh -i KEY -o UserKnownHostsFile=KNOWN -o StrictHostKeyChecking=yes \\
        -o ProxyCommand='docker exec -i CONTAINER hud connect --tunnel shell' agent@CONTAINER

`--print` shows that command line instead of running it (for scp, rsync, IDEs).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import click

from hud.cli.options import fail, reports_errors


def _binding(container: str, name: str | None) -> dict:
    from hud.proc import run

    done = run(["docker", "exec", container, "hud", "manifest"], timeout=60)
    if not done.ok:
        fail(f"cannot read the manifest of container {container!r}: {done.tail(5)}")
    bindings = json.loads(done.stdout).get("bindings", [])
    ssh = [b for b in bindings if b["protocol"].startswith("ssh/") and (name in (None, b["name"]))]
    if not ssh:
        known = ", ".join(f"{b['name']} ({b['protocol']})" for b in bindings) or "none"
        fail(f"container {container!r} offers no ssh capability{f' named {name!r}' if name else ''}; "
             f"bindings: {known} (add `env.workspace()` to the environment)")
    return ssh[0]


def ssh_argv(container: str, binding: dict, key_dir: Path) -> list[str]:
    """The OpenSSH command line for `binding` of `container` (writes the key files)."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = key_dir / "id_ed25519"
    key.write_text(binding["params"]["client_key"])
    key.chmod(0o600)
    known = key_dir / "known_hosts"
    known.write_text(f"{container} {binding['params']['host_pubkey']}\n")
    proxy = f"docker exec -i {shlex.quote(container)} hud connect --tunnel {binding['name']}"
    return ["ssh", "-i", str(key), "-o", f"UserKnownHostsFile={known}", "-o",
            "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o",
            f"ProxyCommand={proxy}", f"{binding['params'].get('user', 'agent')}@{container}"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("container")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--name", default=None, help="The ssh capability's name [default: the only one].")
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command line, run nothing.")
@reports_errors
def ssh(container: str, command: tuple[str, ...], name: str | None, print_only: bool) -> None:
    """Open an ssh session (or run COMMAND) in CONTAINER's workspace, as the agent."""
    binding = _binding(container, name)
    key_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hud" / "ssh" / container
    argv = ssh_argv(container, binding, key_dir) + list(command)
    if print_only:
        click.echo(shlex.join(argv))
        return
    if shutil.which("ssh") is None:
        fail("OpenSSH's client is not installed: apt-get install openssh-client")
    os.execvp("ssh", argv)
