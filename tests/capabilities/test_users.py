"""hud.capabilities.users: resolving the agent's identity, its clean environment, ending its processes."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

from hud.capabilities.users import kill_processes, release_session, resolve_user, spare_session
from hud.errors import ConfigError
from tests.sysusers import throwaway_user  # noqa: F401  (fixture)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _wait_running_as(pid: int, uid: int, timeout: float = 10.0) -> bool:
    """Until `pid` has switched to `uid` (setpriv has run), so a sweep by uid can see it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as handle:
            if any(line.split()[1:2] == [str(uid)] for line in handle if line.startswith("Uid:")):
                return True
        time.sleep(0.01)
    return False


def test_none_is_the_daemons_own_user() -> None:
    """user=None resolves to the current uid and needs no switch."""
    user = resolve_user(None)
    assert (user.uid, user.name, user.switch) == (os.geteuid(), pwd.getpwuid(os.geteuid()).pw_name, False)


def test_missing_user_is_a_config_error_naming_the_fix() -> None:
    """A user that does not exist is a ConfigError that says how to fix it."""
    with pytest.raises(ConfigError, match=r"user 'no-such-hud-user' does not exist.*user=None"):
        resolve_user("no-such-hud-user")


def test_environment_takes_nothing_from_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment is built from passwd only: no HUD_* or token leaks."""
    monkeypatch.setenv("HUD_TOKEN", "secret-token")
    env = resolve_user(None).environment()
    assert set(env) == {"HOME", "USER", "LOGNAME", "SHELL", "PATH", "LANG"}
    assert "secret-token" not in env.values()


def test_term_is_set_only_for_a_pty() -> None:
    """TERM appears when a terminal type is given, and extra variables apply last."""
    user = resolve_user(None)
    assert user.environment(term="xterm", extra={"LANG": "fr_FR.UTF-8"})["TERM"] == "xterm"
    assert user.environment(extra={"LANG": "fr_FR.UTF-8"})["LANG"] == "fr_FR.UTF-8"
    assert "TERM" not in user.environment()


def test_own_user_argv_is_unchanged() -> None:
    """Running as the daemon's own user adds no setpriv prefix."""
    assert resolve_user(None).argv(["id", "-u"]) == ["id", "-u"]


def test_argv_runs_as_the_other_user(throwaway_user: pwd.struct_passwd) -> None:
    """argv() of another user really runs with its uid, gid and groups."""
    user = resolve_user(throwaway_user.pw_name)
    assert user.switch and user.dedicated
    out = subprocess.run(user.argv(["sh", "-c", "id -u; id -g"]),
                         env=user.environment(), capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout.split() == [str(throwaway_user.pw_uid), str(throwaway_user.pw_gid)]


def test_another_users_processes_have_the_highest_oom_score(throwaway_user: pwd.struct_passwd) -> None:
    """A process run as another user, and its children, have oom_score_adj 1000."""
    user = resolve_user(throwaway_user.pw_name)
    out = subprocess.run(user.argv(["sh", "-c", "cat /proc/self/oom_score_adj; "
                                    "sh -c 'cat /proc/self/oom_score_adj'"]),
                         env=user.environment(), capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout.split() == ["1000", "1000"]


def _has_cap_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)  # CAP_SYS_RESOURCE is bit 24
    return False


def test_the_user_cannot_lower_its_oom_score(throwaway_user: pwd.struct_passwd) -> None:
    """Without CAP_SYS_RESOURCE the user cannot take its OOM score back down."""
    if not _has_cap_sys_resource():
        pytest.skip("the daemon lacks CAP_SYS_RESOURCE (Docker's default set): the score "
                    "is 1000 but its floor stays the daemon's own")
    user = resolve_user(throwaway_user.pw_name)
    out = subprocess.run(user.argv(["sh", "-c", "echo 0 > /proc/self/oom_score_adj; "
                                    "cat /proc/self/oom_score_adj"]),
                         env=user.environment(), capture_output=True, text=True, timeout=30, check=False)
    assert out.stdout.split() == ["1000"] and "Permission denied" in out.stderr


def test_kill_refuses_the_daemons_own_uid() -> None:
    """Sweeping the daemon's own uid is refused (it would kill the daemon)."""
    with pytest.raises(ValueError, match="refusing to kill every process of uid"):
        kill_processes(uid=os.getuid())


def test_kill_by_session_ends_the_session_and_its_children() -> None:
    """kill_processes(sessions=) kills a session leader and the background child it started."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE,
                            start_new_session=True, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert kill_processes(sessions=[proc.pid]) >= 2
    proc.wait(timeout=10)
    assert _wait_dead(child)


def test_kill_by_uid_catches_processes_that_left_the_session(throwaway_user: pwd.struct_passwd) -> None:
    """Sweeping a dedicated uid also ends a process that called setsid."""
    user = resolve_user(throwaway_user.pw_name)
    proc = subprocess.Popen(user.argv(["sh", "-c", "setsid sleep 300 & echo $!"]), env=user.environment(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    escaped = int(proc.stdout.readline())
    proc.wait(timeout=10)
    assert _alive(escaped)
    assert kill_processes(uid=user.uid) >= 1
    assert _wait_dead(escaped)


def test_kill_by_uid_spares_service_sessions(throwaway_user: pwd.struct_passwd) -> None:
    """A service session of the user exempted with spare_session survives the sweep."""
    user = resolve_user(throwaway_user.pw_name)
    service = subprocess.Popen(user.argv(["sleep", "300"]), env=user.environment(), start_new_session=True)
    agent = subprocess.Popen(user.argv(["sleep", "300"]), env=user.environment(), start_new_session=True)
    spare_session(service.pid)
    try:
        assert _wait_running_as(agent.pid, user.uid) and _wait_running_as(service.pid, user.uid)
        kill_processes(uid=user.uid)
        agent.wait(timeout=10)
        assert service.poll() is None
    finally:
        release_session(service.pid)
        service.kill()
        service.wait(timeout=10)


def test_hud_agent_user_overrides_the_default_agent(monkeypatch) -> None:
    """HUD_AGENT_USER="" makes the default `agent` login the daemon's own user (dev hosts)."""
    import os
    import pwd

    from hud.capabilities.users import resolve_user

    monkeypatch.setenv("HUD_AGENT_USER", "")
    assert resolve_user("agent").uid == os.geteuid()
    monkeypatch.setenv("HUD_AGENT_USER", pwd.getpwuid(0).pw_name)
    assert resolve_user("agent").uid == 0
