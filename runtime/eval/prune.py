"""Remove containers that eval jobs left behind (a job killed with SIGKILL cannot clean up).

Every rollout container (warm pool ones too) carries the `org.hud.job` label, so they are
found by label and nothing else is touched, and the `org.hud.owner` label
(hud.eval.owner), so `hud prune` leaves the containers of jobs that still run. Docker
is run through `hud.build.docker` (`HUD_DOCKER` holds).

`sweep_job` is the same for one job, from inside it: an interrupted job (Ctrl-C, an
error) calls it after closing its leases, for a container whose `docker run` was cut off
before its id came back (no lease holds it; only its label finds it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hud.build import docker as hd
from hud.eval.owner import OWNER_LABEL, owner_alive
from hud.eval.placement import JOB_LABEL

log = logging.getLogger("hud.eval")


@dataclass
class Pruned:
    """What `prune_containers` did: the ids it removed, and (id, why) of those it kept."""

    removed: list[str]
    kept: list[tuple[str, str]]


def prune_containers(job_id: str | None = None, docker: str | None = None) -> Pruned:
    """Remove (force) the rollout containers no live job owns, or every one of a job.

    Without `job_id`, a container whose owner (hud.eval.owner) still runs on this host is
    kept, and so is one owned by a process on another host (its liveness cannot be
    checked here); one with no owner label (an older hud's) is removed. With `job_id`,
    that job's containers are removed whoever owns them: naming the job is the say-so.

    Args:
        job_id: only the containers of this job [default: every job's].
        docker: the docker client [default: `$HUD_DOCKER`, else `docker` on PATH].

    Raises:
        DockerError: docker is unavailable or refused.
    """
    if job_id:
        ids = hd.labelled(f"{JOB_LABEL}={job_id}", binary=docker)
        kept: list[tuple[str, str]] = []
    else:
        ids, kept = [], []
        listing = hd.check("ps", "-a", "--filter", f"label={JOB_LABEL}", "--format",
                           f'{{{{.ID}}}} {{{{.Label "{JOB_LABEL}"}}}} '
                           f'{{{{.Label "{OWNER_LABEL}"}}}}', binary=docker,
                           what=f"listing the containers labelled {JOB_LABEL}").stdout
        for line in listing.splitlines():
            container, job, owner = [*line.split(" ", 2), "", ""][:3]
            alive = owner_alive(owner.strip()) if owner.strip() else False
            if alive is None:
                kept.append((container, f"job {job}: owned by {owner.strip()}, on another "
                                        f"host (`hud prune --job {job}` removes it)"))
            elif alive:
                kept.append((container, f"job {job}: still running (pid "
                                        f"{owner.split('/')[1]})"))
            else:
                ids.append(container)
    if ids:
        hd.check("rm", "-f", *ids, timeout=120, binary=docker,
                 what=f"removing {len(ids)} rollout container(s) (docker rm -f)")
    return Pruned(ids, kept)


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
