"""Scale-out on Ray: rollouts across a cluster's nodes, each running its own containers.

    from hud.eval.ray import AgentSpec, RayPlacement
    job = await taskset.run(AgentSpec("claude-sonnet-4-5"), group=16,
                            runtime="ray://10.0.0.5:6379", retries=2)

`runtime="ray"` joins the cluster `RAY_ADDRESS` names. Ray itself is an optional extra
(`pip install 'hud-python[ray]'`), imported only when a job runs on it: importing this
package (or `hud`, `hud.eval`) never imports Ray. See hud.eval.ray.placement for where
things run, hud.eval.ray.agents for how agents travel, hud.eval.ray.cluster for
joining a cluster and advertising slots.
"""

from __future__ import annotations

from hud.eval.ray.agents import AgentSpec, Secret
from hud.eval.ray.cluster import SLOT_RESOURCE, is_ray_runtime
from hud.eval.ray.placement import RayPlacement

__all__ = ["SLOT_RESOURCE", "AgentSpec", "RayPlacement", "Secret", "is_ray_runtime"]
