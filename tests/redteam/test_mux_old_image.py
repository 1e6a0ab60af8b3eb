"""An image built with a hud from before `hud connect --mux`: the docker and attach
placements must say so and name the fix (rebuild), as ExecTransport means to.

The stand-in docker client answers `exec -i C hud connect ARGS` with a click command
shaped like the old `hud connect` (no --mux), so the error text is click's own, as an
old image prints it; `logs` and `inspect` describe a running container."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hud.errors import InfraError
from hud.eval.exec_transport import ExecTransport

OLD_DOCKER = f"""#!{sys.executable}
import sys
import click

args = sys.argv[1:]


@click.command()
@click.option("--tunnel", "tunnel_name")
@click.option("--wait", type=click.FloatRange(min=0), default=0.0)
@click.option("--socket", "socket_path")
@click.option("--url")
@click.option("--token-file")
def connect(tunnel_name, wait, socket_path, url, token_file):
    sys.exit(0)


if args[:2] == ["exec", "-i"] and args[3:5] == ["hud", "connect"]:
    connect.main(args[5:], prog_name="hud connect")
if args[:1] == ["logs"]:
    print("hud serve INFO serving letter-count")
    sys.exit(0)
if args[:1] == ["inspect"]:
    print("running exit=0 oom=false")
    sys.exit(0)
if args[:1] == ["wait"]:
    sys.exit(0)
print("fake docker: unexpected", args, file=sys.stderr)
sys.exit(125)
"""


@pytest.fixture
def old_docker(tmp_path: Path) -> str:
    path = tmp_path / "docker"
    path.write_text(OLD_DOCKER)
    path.chmod(0o755)
    return str(path)


async def test_an_image_without_mux_is_told_to_rebuild(old_docker: str) -> None:
    """A container whose hud lacks --mux: the error says its hud predates it, and to rebuild."""
    transport = ExecTransport("old-container", docker=old_docker)
    with pytest.raises(InfraError, match=r"predates `hud connect --mux`(.|\n)*hud build"):
        await transport.channel(5)
