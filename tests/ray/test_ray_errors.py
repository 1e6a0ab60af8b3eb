"""The Ray placement's clear errors, and Ray staying out of `import hud` (no cluster needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hud.errors import ConfigError
from hud.eval import Taskset
from hud.eval.ray.cluster import address_of, connect, is_ray_runtime, require_ray
from hud.eval.ray.placement import RayPlacement
from tests.envs.letters import count_letter


def test_importing_hud_and_the_ray_package_does_not_import_ray() -> None:
    """`import hud.eval`, `hud.eval.ray` and the taskset leave Ray unimported."""
    code = ("import sys, hud, hud.eval, hud.eval.ray, hud.eval.taskset; "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_without_ray_installed_the_error_names_the_extra() -> None:
    """With Ray missing, the placement says to install hud-python[ray]."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from hud.eval.ray.cluster import require_ray\n"
            "try:\n    require_ray()\nexcept Exception as exc:\n    print(exc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert "pip install 'hud-python[ray]'" in done.stdout


def test_runtime_ray_without_a_cluster_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """runtime='ray' with no RAY_ADDRESS and no joined cluster names both fixes."""
    require_ray()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ConfigError, match=r"RAY_ADDRESS is not set.*ray://HOST:PORT"):
        connect(address_of("ray"))


def test_a_ray_address_without_a_port_is_refused() -> None:
    """ray://HOST without :PORT is a ConfigError that shows the form."""
    with pytest.raises(ConfigError, match=r"bad Ray address 'ray://head'; use ray://HOST:PORT"):
        address_of("ray://head")


def test_runtime_strings_that_name_ray() -> None:
    """"ray" and "ray://..." name the Ray placement; a container called rayden does not."""
    assert [is_ray_runtime(r) for r in ("ray", "ray://h:1", "rayden", "docker:ray", None)] == \
        [True, True, False, False, False]


def test_taskset_resolves_ray_runtimes_to_the_ray_placement() -> None:
    """Taskset.placement('ray://HOST:PORT') is a RayPlacement on the tasks' env image."""
    placement = Taskset([count_letter(word="kiwi")]).placement("ray://10.1.2.3:6379")
    assert isinstance(placement, RayPlacement)
    assert (placement.image, placement.address) == ("letter-count", "10.1.2.3:6379")


def test_spread_takes_spread_or_pack_only() -> None:
    """An unknown spread option is refused with the two that exist."""
    with pytest.raises(ConfigError, match="spread must be 'spread' or 'pack', got 'wide'"):
        RayPlacement("img", "ray://h:1", spread="wide")  # type: ignore[arg-type]


async def test_warm_pools_are_refused_on_ray() -> None:
    """warm=N with the Ray placement is a ConfigError before anything starts."""
    with pytest.raises(ConfigError, match=r"warm=2: ray .* has no pool; use warm=0"):
        await Taskset([count_letter(word="kiwi")]).run(lambda run: None, warm=2,
                                                       runtime="ray://h:1")
