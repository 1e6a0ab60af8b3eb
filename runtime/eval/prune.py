"""Remove containers that eval jobs left behind (a job killed with SIGKILL cannot clean up).

Every rollout container carries the `org.hud.job` label, so they are found by label and
nothing else is touched. Docker is run through `hud.build.docker` (`HUD_DOCKER` holds).
"""

from __future__ import annotations

from hud.build import docker as hd
from hud.eval.placement import JOB_LABEL


def prune_containers(job_id: str | None = None, docker: str | None = None) -> list[str]:
    """Remove (force) every rollout container, or those of one job; return their ids.

    Args:
        job_id: only the containers of this job [default: every job's].
        docker: the docker client [default: `$HUD_DOCKER`, else `docker` on PATH].

    Raises:
        DockerError: docker is unavailable or refused.
    """
    ids = hd.labelled(f"{JOB_LABEL}={job_id}" if job_id else JOB_LABEL, binary=docker)
    if ids:
        hd.check("rm", "-f", *ids, timeout=120, binary=docker,
                 what=f"removing {len(ids)} rollout container(s) (docker rm -f)")
    return ids
