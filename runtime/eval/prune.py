"""Remove containers that eval jobs left behind (a job killed with SIGKILL cannot clean up).

Every rollout container (warm pool ones too) carries the `org.hud.job` label, so they are
found by label and nothing else is touched. Docker is run through `hud.build.docker`
(`HUD_DOCKER` holds).

`sweep_job` is the same for one job, from inside it: an interrupted job (Ctrl-C, an
error) calls it after closing its leases, for a container whose `docker run` was cut off
before its id came back (no lease holds it; only its label finds it).
"""

from __future__ import annotations

import logging

from hud.build import docker as hd
from hud.eval.placement import JOB_LABEL

log = logging.getLogger("hud.eval")


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


async def sweep_job(job_id: str, docker: str | None = None) -> list[str]:
    """Remove what is left with this job's label once its leases are closed; return the ids.

    Raises:
        DockerError: docker is unavailable or refused.
    """
    ids = await hd.alabelled(f"{JOB_LABEL}={job_id}", binary=docker)
    if ids:
        log.warning("job %s: removing %d container(s) its interrupted rollouts left: %s",
                    job_id, len(ids), " ".join(ids))
        await hd.acheck("rm", "-f", *ids, timeout=120, binary=docker,
                        what=f"removing {len(ids)} rollout container(s) of job {job_id}")
    return ids
