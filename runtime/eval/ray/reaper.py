"""Remove a Ray slot's containers when the slot's process ends, however it ends.

    python -m hud.eval.ray.reaper org.hud.slot=SLOT_ID STORE_DIR

Started by each slot actor (hud.eval.ray.slot) in a session of its own, detached from the
actor's process (it forks and the parent exits), with its stdin a pipe only the actor
holds: when the actor exits, is killed, or its node is stopped, the pipe closes, and
this removes every container that carries the slot's label, so a lost
node leaves no rollout container running; then it removes the slot's temporary trace
store. Anything left after a crash of the machine itself still carries the job label,
which `hud prune` removes.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from hud.build import docker as hd
from hud.errors import HudError

#: seconds between sweeps; the reaper stops after `CLEAN_SWEEPS` empty ones in a row (a
#: `docker run` the actor had in flight when it died may create its container after the
#: first listing) or after `MAX_SWEEPS` in all
SETTLE = 1.0
CLEAN_SWEEPS = 2
MAX_SWEEPS = 10


def main(label: str, store: str) -> int:
    """Wait for stdin to close, then remove the containers labelled `label` and `store`."""
    while sys.stdin.buffer.read(1 << 16):
        pass  # nothing is ever written: read returns b"" when the actor is gone
    shutil.rmtree(store, ignore_errors=True)
    clean = 0
    try:
        for _ in range(MAX_SWEEPS):
            ids = hd.labelled(label)
            if ids:
                clean = 0
                hd.check("rm", "-f", *ids, timeout=120, what=f"removing {len(ids)} container(s)")
            else:
                clean += 1
                if clean >= CLEAN_SWEEPS:
                    break
            time.sleep(SETTLE)
    except HudError as exc:
        print(f"hud reaper: {label}: {exc}; `hud prune` removes them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # fork, and the parent exits: Ray ends a worker's child processes with the worker, and
    # this must outlive it (reparented, it is no worker's child)
    if os.fork():
        os._exit(0)
    sys.exit(main(sys.argv[1], sys.argv[2]))
