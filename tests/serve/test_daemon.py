"""`hud serve` as a real subprocess over its real socket."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ENVS, wait_for_socket


def test_start_and_grade_from_separate_processes(start_daemon) -> None:
    """`hud task start` and `hud task grade` are separate processes; state stays in the daemon."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    started = daemon.hud("task", "start", "count_letter")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "How many 'r's are in 'strawberry'? Reply with just the number."
    graded = daemon.hud("task", "grade", "count_letter", "--answer", "3")
    assert (graded.returncode, graded.stdout.strip()) == (0, "1.0")


def test_socket_is_private(start_daemon) -> None:
    """The control socket is mode 0600: other users cannot connect."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    assert stat.S_IMODE(daemon.socket_path.stat().st_mode) == 0o600


def test_sigterm_runs_shutdown_hooks_in_reverse_and_removes_the_socket(short_dir: Path) -> None:
    """SIGTERM: tasks cancelled, shutdown hooks run last-registered first, socket removed."""
    env_file = short_dir / "hooks.py"
    marks = short_dir / "marks.txt"
    env_file.write_text(
        "from hud import Environment\n"
        "env = Environment(name='hooks')\n"
        f"MARKS = {str(marks)!r}\n"
        "def mark(text):\n"
        "    open(MARKS, 'a').write(text + '\\n')\n"
        "@env.initialize\n"
        "def init():\n    mark('init')\n"
        "@env.shutdown\n"
        "def first():\n    mark('first')\n"
        "@env.shutdown\n"
        "async def second():\n    mark('second')\n"
        "@env.template()\n"
        "async def t():\n"
        "    try:\n"
        "        answer = yield 'p'\n"
        "        yield 1.0\n"
        "    finally:\n"
        "        mark('task-cleanup')\n"
    )
    sock = short_dir / "h.sock"
    proc = subprocess.Popen([sys.executable, "-m", "hud.cli.main", "serve", str(env_file),
                             "--socket", str(sock), "--log-file", str(short_dir / "log")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_socket(sock, proc)
        env = {**os.environ, "HUD_SOCKET": str(sock)}
        subprocess.run([sys.executable, "-m", "hud.cli.main", "task", "start", "t"], env=env,
                       check=True, capture_output=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    assert marks.read_text().split() == ["init", "task-cleanup", "second", "first"]
    assert not sock.exists()


def test_broken_module_keeps_serving_its_error(start_daemon) -> None:
    """An env that fails to import: serve logs the traceback and `task list` shows it."""
    daemon = start_daemon(str(ENVS / "broken.py"))
    listed = daemon.hud("task", "list")
    assert listed.returncode == 1
    assert "environment failed to load: importing" in listed.stderr
    assert "definitely_missing_dependency" in listed.stderr and "Traceback" in listed.stderr
    log = daemon.log_path.read_text()
    assert "environment failed to load" in log and "Traceback" in log
    assert daemon.hud("health").returncode == 1


def test_initialize_hook_failure_is_reported(start_daemon, short_dir: Path) -> None:
    """A raising initialize hook is a load error with its traceback, not a dead daemon."""
    env_file = short_dir / "badinit.py"
    env_file.write_text(
        "from hud import Environment\nenv = Environment(name='x')\n"
        "@env.initialize\nasync def boom():\n    raise OSError('database not there')\n"
    )
    daemon = start_daemon(str(env_file))
    listed = daemon.hud("task", "list")
    assert listed.returncode == 1
    assert "initialize hook 'boom' raised OSError: database not there" in listed.stderr


def test_second_daemon_on_the_same_socket_is_refused(start_daemon) -> None:
    """A live socket is not stolen: the second serve exits 1 saying so."""
    daemon = start_daemon(str(ENVS / "letters.py"))
    second = daemon.hud("serve", str(ENVS / "letters.py"), "--socket", str(daemon.socket_path),
                        "--log-file", str(daemon.log_path) + "2")
    assert second.returncode == 1
    assert "already listening" in second.stderr


def test_the_daemon_holds_its_liveness_lock_until_sigterm(start_daemon) -> None:
    """While serving, the lock next to the socket is held and names the daemon; after
    SIGTERM it is gone with the socket."""
    from hud.liveness import holder, lock_path

    daemon = start_daemon(str(ENVS / "letters.py"))
    state = holder(daemon.socket_path)
    assert state is not None and state.held and state.pid == daemon.proc.pid
    assert stat.S_IMODE(os.stat(lock_path(daemon.socket_path)).st_mode) == 0o600
    assert daemon.stop() == 0
    assert not os.path.exists(lock_path(daemon.socket_path)) and not daemon.socket_path.exists()


def test_a_second_daemon_on_a_starting_ones_socket_is_refused(short_dir: Path) -> None:
    """A daemon still in its initialize hook (not listening yet) keeps its socket: a
    second serve exits 1 naming the first one's pid."""
    from hud.liveness import holder

    sock = short_dir / "s.sock"
    argv = [sys.executable, "-m", "hud.cli.main", "serve", str(ENVS / "hellos.py"), "--socket",
            str(sock), "--log-file", str(short_dir / "log")]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "HELLOS_HANG": "1"})
    try:
        deadline = time.monotonic() + 30
        while not ((state := holder(sock)) is not None and state.held):
            assert time.monotonic() < deadline and first.poll() is None, "no lock taken"
            time.sleep(0.01)
        second = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    finally:
        first.kill()
        first.wait(timeout=30)
    assert second.returncode == 1
    assert f"another hud serve (pid {first.pid}) is starting or serving on {sock}" \
        in second.stderr


def test_stale_socket_file_is_replaced(short_dir: Path, start_daemon) -> None:
    """A socket file left by a killed daemon does not block a new one."""
    stale = short_dir / "d0.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()
    daemon = start_daemon(str(ENVS / "letters.py"))
    assert daemon.hud("task", "list").returncode == 0


def test_no_daemon_is_a_clear_error(short_dir: Path) -> None:
    """With nothing listening, `hud task start` says so and how to start one (exit 1)."""
    env = {**os.environ, "HUD_SOCKET": str(short_dir / "none.sock"), "HUD_LOG": str(short_dir / "no.log")}
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "task", "start", "x"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "no hud daemon answers on" in done.stderr and "hud serve" in done.stderr


def test_unhealthy_daemon_error_quotes_its_log(short_dir: Path) -> None:
    """When the daemon is down, the client shows the last lines of its log."""
    log = short_dir / "serve.log"
    log.write_text("2026 hud serve ERROR something terrible happened\n")
    env = {**os.environ, "HUD_SOCKET": str(short_dir / "none.sock"), "HUD_LOG": str(log)}
    done = subprocess.run([sys.executable, "-m", "hud.cli.main", "task", "list"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "something terrible happened" in done.stderr


async def test_watchdog_restarts_a_capability_that_stopped_answering(short_dir: Path, monkeypatch) -> None:
    """healthy() False: the daemon stops and restarts it, and the manifest shows the new binding."""
    import asyncio

    from hud import Environment
    from hud.capability import Capability
    from hud.messages import Binding
    from hud.serve import daemon as daemon_module

    class Flaky(Capability):
        name, protocol = "flaky", "echo/1"

        def __init__(self) -> None:
            self.starts = 0
            self.stops = 0

        async def start(self) -> Binding:
            self.starts += 1
            return Binding(name=self.name, protocol=self.protocol,
                           url=f"tcp://127.0.0.1:{1000 + self.starts}")

        async def stop(self) -> None:
            self.stops += 1

        async def healthy(self) -> bool:
            return self.starts > 1  # the first instance "dies"

    monkeypatch.setattr(daemon_module, "WATCH_INTERVAL", 0.02)
    env = Environment(name="watchdog-test")
    flaky = env.add_capability(Flaky())
    daemon = daemon_module.Daemon(daemon_module.DaemonConfig(socket_path=short_dir / "w.sock", env=env))
    server = await daemon.start()
    try:
        for _ in range(500):
            if flaky.starts == 2:
                break
            await asyncio.sleep(0.01)
        assert (flaky.starts, flaky.stops) == (2, 1)
        assert server.manifest().bindings[0].url == "tcp://127.0.0.1:1002"
    finally:
        await daemon.close()


def test_socket_in_a_shared_dir_leaves_its_mode_alone(short_dir: Path) -> None:
    """A socket put in an existing shared dir (like /tmp) never makes that dir root-only."""
    from hud.serve.daemon import _claim_socket_path

    short_dir.chmod(0o1777)
    _claim_socket_path(short_dir / "control.sock")
    assert stat.S_IMODE(short_dir.stat().st_mode) == 0o1777
    fresh = short_dir / "made-here"
    _claim_socket_path(fresh / "control.sock")
    if os.geteuid() == 0:  # a dir the daemon made itself is root-only
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
