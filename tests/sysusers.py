"""A throwaway login account for privilege tests, removed (with its processes) afterwards.

Only usable as root on a host where `useradd` exists; otherwise the tests that need it
skip and say why. Real isolation tests run as `agent` inside the hud images.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from hud.capabilities.users import kill_processes


@pytest.fixture
def throwaway_user() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("privilege tests need root and useradd (they run in the hud images too)")
    name = f"hudt{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name],
                   check=True, capture_output=True, timeout=30)
    entry = pwd.getpwnam(name)
    try:
        yield entry
    finally:
        kill_processes(uid=entry.pw_uid)
        subprocess.run(["userdel", "--remove", "--force", name], check=False, capture_output=True, timeout=30)
