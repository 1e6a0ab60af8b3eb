"""Reaching a Ray cluster from the driver: the optional import, the address, the slots.

Ray is an optional extra (`pip install 'hud-python[ray]'`) and is imported here, on
first use, never when `hud` or `hud.eval` is imported. hud never starts a cluster of its
own: `runtime="ray"` joins the one `RAY_ADDRESS` names (or the one this process already
joined with `ray.init`), `runtime="ray://HOST:PORT"` the one at that GCS address (the
`--port` of `ray start --head`, 6379 unless told). hud joins as a Ray driver, not
through Ray Client, so the driver must reach the cluster's private network.

A node takes rollouts when its operator advertises slots for them, one per rollout it
runs at once (each slot is one long-lived actor next to the node's Docker engine):

    ray start ... --resources='{"hud_slots": 8}'

Token auth: the driver needs the cluster's token in its environment (`RAY_AUTH_MODE=token`,
`RAY_AUTH_TOKEN=...`), as every node does; a wrong or missing one is refused by Ray.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from hud.errors import ConfigError, InfraError

#: the custom resource a node advertises: rollouts it runs at once
SLOT_RESOURCE = "hud_slots"
SCHEME = "ray://"
FIX_INSTALL = "pip install 'hud-python[ray]'"


def is_ray_runtime(runtime: object) -> bool:
    """Whether `runtime=` names the Ray placement ("ray" or "ray://HOST:PORT")."""
    return isinstance(runtime, str) and (runtime == "ray" or runtime.startswith(SCHEME))


def require_ray() -> ModuleType:
    """The `ray` module.

    Raises:
        ConfigError: Ray is not installed (the extra to install is named).
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"the Ray placement needs Ray, which is not installed ({exc}); "
                          f"{FIX_INSTALL}") from None
    return ray


def address_of(runtime: str) -> str | None:
    """The GCS address `runtime` names; None for "ray" (RAY_ADDRESS or a joined cluster).

    Raises:
        ConfigError: a ray:// runtime without HOST:PORT.
    """
    if runtime == "ray":
        return os.environ.get("RAY_ADDRESS") or None
    address = runtime.removeprefix(SCHEME)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"bad Ray address {runtime!r}; use ray://HOST:PORT (the head's GCS "
                          f"port, `ray start --head --port`)")
    return address


def connect(address: str | None) -> ModuleType:
    """Join the cluster at `address` (None: the one this process joined already).

    Raises:
        ConfigError: Ray is not installed, or no cluster is named.
        InfraError: the cluster cannot be reached or refused the driver (its token).
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address is None:
        raise ConfigError("runtime='ray' found no Ray cluster: RAY_ADDRESS is not set and this "
                          "process has not joined one; set RAY_ADDRESS=HOST:PORT or pass "
                          "runtime='ray://HOST:PORT' (hud never starts a cluster itself)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no call home (offline hosts)
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING",
                 namespace="hud")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        token = ("" if os.environ.get("RAY_AUTH_TOKEN") else
                 "; if the cluster uses token auth, set RAY_AUTH_MODE=token and "
                 "RAY_AUTH_TOKEN to its token")
        raise InfraError(f"cannot join the Ray cluster at {address}: "
                         f"{type(exc).__name__}: {exc}{token}") from None
    return ray


@dataclass(frozen=True)
class SlotNode:
    """A live node that takes rollouts: its Ray id, address and slot count."""

    node_id: str
    address: str
    slots: int


def slot_nodes(ray: Any) -> list[SlotNode]:
    """The live nodes that advertise `hud_slots`, most slots first.

    Raises:
        ConfigError: no live node advertises any (the fix is named).
    """
    nodes = []
    for node in ray.nodes():
        slots = int((node.get("Resources") or {}).get(SLOT_RESOURCE, 0))
        if node.get("Alive") and slots > 0:
            nodes.append(SlotNode(node["NodeID"], str(node.get("NodeManagerAddress")), slots))
    if not nodes:
        raise ConfigError(f"no node of this Ray cluster takes rollouts: start each with "
                          f"`ray start ... --resources='{{\"{SLOT_RESOURCE}\": N}}'` (N "
                          f"rollouts at once on that node's Docker engine)")
    return sorted(nodes, key=lambda n: -n.slots)


def alive_nodes(ray: Any) -> set[str]:
    """Ids of the nodes Ray sees alive now."""
    return {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
