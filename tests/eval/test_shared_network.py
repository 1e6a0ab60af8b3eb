"""Rollout networks: `host` and `container:X` (a namespace shared with the agent) need an opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hud.cli.main import cli
from hud.errors import ConfigError
from hud.eval import DockerPlacement
from hud.eval.placement import check_network
from tests.build.fakedocker import FakeDocker
from tests.conftest import ENVS

SHARED = ["host", "container:another-rollout"]


@pytest.mark.parametrize("network", SHARED)
def test_a_shared_network_is_refused_saying_what_it_shares(network: str) -> None:
    """host or container:X without the opt-in: a ConfigError naming it and the opt-in."""
    with pytest.raises(ConfigError, match=rf"network '{network}' gives the agent the .*"
                                          r"network namespace.*--allow-shared-network"):
        check_network(network)


@pytest.mark.parametrize("network", ["none", "bridge", "my-net"])
def test_a_network_of_its_own_needs_no_opt_in(network: str) -> None:
    """none, bridge and a user-defined network pass the check as they are."""
    check_network(network)


@pytest.mark.parametrize("network", SHARED)
def test_the_opt_in_allows_a_shared_network(network: str) -> None:
    """With allow_shared (--allow-shared-network) the check lets it through."""
    check_network(network, allow_shared=True)


async def test_the_placement_refuses_before_any_docker_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DockerPlacement(network="host").open() is refused before a container is made."""
    fake = FakeDocker(tmp_path / "bin")
    fake.use(monkeypatch)
    placement = DockerPlacement("fake-env:1", network="host")
    with pytest.raises(ConfigError, match="gives the agent the host's network namespace"):
        await placement.open("job1", "r1")
    assert "run" not in fake.commands()


@pytest.mark.parametrize("network", SHARED)
def test_hud_eval_refuses_a_shared_network_as_a_usage_error(network: str) -> None:
    """`hud eval SOURCE AGENT --network host` exits 2 naming --network and the opt-in."""
    done = CliRunner().invoke(cli, ["eval", str(ENVS / "letters.py"), "nop",
                                    "--network", network])
    assert done.exit_code == 2, done.output
    assert "--network" in done.output and "--allow-shared-network" in done.output
