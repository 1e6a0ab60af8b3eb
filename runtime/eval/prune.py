"""Remove containers that eval jobs left behind (a job killed with SIGKILL cannot clean up).

Every rollout container carries the `org.hud.job` label, so they are found by label and
nothing else is touched.
"""

from __future__ import annotations

from hud.errors import DockerError
from hud.eval.placement import JOB_LABEL
from hud.proc import run


def prune_containers(job_id: str | None = None, docker: str = "docker") -> list[str]:
    """Remove (force) every rollout container, or those of one job; return their ids.

    Raises:
        DockerError: docker is unavailable or refused.
    """
    label = f"{JOB_LABEL}={job_id}" if job_id else JOB_LABEL
    listed = run([docker, "ps", "-aq", "--filter", f"label={label}"], timeout=60)
    if not listed.ok:
        raise DockerError(f"cannot list containers: {listed.tail(3)}; is the Docker engine running?")
    ids = listed.stdout.split()
    if ids:
        removed = run([docker, "rm", "-f", *ids], timeout=120)
        if not removed.ok:
            raise DockerError(f"docker rm failed: {removed.tail(3)}")
    return ids
