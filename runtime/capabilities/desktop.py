"""The `rfb` capability: a virtual X display with a window manager, served over VNC.

Why TigerVNC's Xvnc (measured on the desktop image): it is the X server and the VNC
server in one process, answers in ~0.4 s, and always serves fresh frames. Xvfb + x11vnc
is two processes, slower to start, and serves stale frames unless the client keeps an
incremental request outstanding.

    Xvnc :N -rfbport PORT -localhost -SecurityTypes None -geometry WxH   (as the agent)
     └─ openbox (or another window manager), GUI apps the template starts, all as the agent

The RFB port listens on loopback only and has no password: the host reaches it through
the runtime's tunnel, which is the access control. The display number and the port are
chosen once and kept across restarts, so the published binding stays valid.

Template helpers (setup and grading, in the daemon): `run_app`, `xdotool`, `wait_window`,
`screenshot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from hud.capabilities.programs import program
from hud.capabilities.service import Service, poll
from hud.capabilities.users import User, release_path, resolve_user, spare_path
from hud.capability import Capability
from hud.clients.rfb import RFBClient, RFBError
from hud.errors import ConfigError, InfraError
from hud.messages import Binding
from hud.proc import arun

log = logging.getLogger("hud.capabilities.desktop")

X11_DIR = Path("/tmp/.X11-unix")
FIRST_DISPLAY = 20
HEALTH_TIMEOUT = 3.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free_display() -> int:
    for number in range(FIRST_DISPLAY, FIRST_DISPLAY + 200):
        if not (X11_DIR / f"X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    raise InfraError(f"no free X display number in :{FIRST_DISPLAY}..:{FIRST_DISPLAY + 199} "
                     f"(sockets in {X11_DIR}); remove stale /tmp/.X*-lock files")


async def rfb_greets(port: int, timeout: float = HEALTH_TIMEOUT) -> bool:
    """Whether an RFB 3.8 server on 127.0.0.1:`port` completes a handshake within `timeout`."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (TimeoutError, OSError):
        return False
    try:
        client = await RFBClient.connect(reader, writer, timeout=timeout)
    except RFBError:
        return False
    await client.close()
    return True


#: the root window's properties that say how far a window manager has started (`wm_state`)
WM_PROPERTIES = ("_NET_SUPPORTING_WM_CHECK", "_NET_SUPPORTED", "_NET_CLIENT_LIST")
#: `wm_state`'s answers
WM_ABSENT, WM_ANNOUNCED, WM_MANAGING = "absent", "announced", "managing"
#: seconds a window manager that announced itself, and says it lists its clients, gets to
#: list them; then it counts as started anyway (dwm deletes `_NET_CLIENT_LIST` as it
#: starts and sets it only with its first client)
WM_LIST_GRACE = 3.0


def wm_state(xprop_root: str) -> str:
    """How far the window manager has started, from `xprop -root` of `WM_PROPERTIES`.

    An EWMH window manager announces itself (`_NET_SUPPORTING_WM_CHECK`) as it takes the
    screen, before it has loaded its theme and taken over the windows already there; a
    window mapped in that gap can be left unmapped for good (openbox 3.6, measured: a
    task's app started right after the daemon's start never showed its window, in
    about half the containers started two at a time). One that supports
    `_NET_CLIENT_LIST` has set it once it manages windows: `WM_MANAGING`; until then,
    `WM_ANNOUNCED`. One that does not support it manages once announced.
    """
    props: dict[str, str] = {}
    for line in xprop_root.splitlines():
        name, _, value = line.partition("(")
        if not value:  # "NAME:  not found."
            continue
        props[name.strip()] = value.partition(")")[2]
    if "window id" not in props.get("_NET_SUPPORTING_WM_CHECK", ""):
        return WM_ABSENT
    supported = {atom.strip() for atom in props.get("_NET_SUPPORTED", "").lstrip(" =").split(",")}
    if "_NET_CLIENT_LIST" not in supported or "_NET_CLIENT_LIST" in props:
        return WM_MANAGING
    return WM_ANNOUNCED


class WmWait:
    """Whether the window manager is ready for windows, from successive `xprop -root`
    readings: once it manages (`wm_state`), or `grace` seconds after it announced itself
    without listing its clients (`lingered` then says so)."""

    def __init__(self, grace: float = WM_LIST_GRACE) -> None:
        self.grace = grace
        self.announced_at: float | None = None
        self.lingered = False

    def ready(self, xprop_root: str, now: float) -> bool:
        state = wm_state(xprop_root)
        if state == WM_MANAGING:
            return True
        if state == WM_ABSENT:
            return False
        if self.announced_at is None:
            self.announced_at = now
        self.lingered = now - self.announced_at >= self.grace
        return self.lingered


class DesktopCapability(Capability):
    """A virtual desktop (Xvnc + window manager) published as `rfb/3.8`."""

    protocol = "rfb/3.8"

    def __init__(self, name: str = "desktop", *, user: str | None = "agent", width: int = 1280,
                 height: int = 800, depth: int = 24,
                 window_manager: Sequence[str] | None = ("openbox",),
                 reset_per_task: bool = True, start_timeout: float = 20.0,
                 number: int | None = None) -> None:
        """
        Args:
            name: binding name.
            user: who owns the display and its apps ("agent" in the images; None = the
                daemon's own user, for tests on a host).
            width: screen width in pixels.
            height: screen height in pixels.
            depth: colour depth (16 or 24).
            window_manager: argv of the window manager, or None for a bare X server.
            reset_per_task: restart the display after each task (the agent's windows go).
            start_timeout: seconds to wait for the display and the window manager.
            number: the X display number (e.g. 1 for ":1", to match an image's DISPLAY);
                None picks the first free one from :20.

        Raises:
            ConfigError: a geometry or depth X cannot serve, or a negative display number.
        """
        if not (64 <= width <= 8192 and 64 <= height <= 8192) or depth not in (16, 24):
            raise ConfigError(f"bad desktop geometry {width}x{height} depth {depth}; use "
                              f"64..8192 pixels per side and depth 16 or 24")
        if number is not None and number < 0:
            raise ConfigError(f"bad X display number {number}; use 0 or more (1 means ':1')")
        self.name = name
        self.user_name = user
        self.width, self.height, self.depth = width, height, depth
        self.window_manager = list(window_manager) if window_manager else None
        self.reset_per_task = reset_per_task
        self.start_timeout = start_timeout
        self.number: int | None = number
        self.port: int | None = None
        self._user: User | None = None
        self._xvnc: Service | None = None
        self._wm: Service | None = None
        self._apps: list[Service] = []
        self._dir: Path | None = None
        self._lock = asyncio.Lock()
        #: how many times Xvnc was started; helpers refuse to grade across a restart
        self.generation = 0
        self._task_generation: int | None = None
        self._ran = False  # whether an Xvnc of ours has used the display (its files are ours)

    @property
    def display(self) -> str:
        """The X display name, e.g. ":20" (set by `start`).

        Raises:
            InfraError: the desktop has not been started.
        """
        if self.number is None:
            raise InfraError(f"desktop {self.name!r} is not started; the daemon starts it")
        return f":{self.number}"

    @property
    def user(self) -> User:
        """Who owns the display and its apps (resolved at `start`).

        Raises:
            InfraError: the desktop has not been started.
        """
        if self._user is None:
            raise InfraError(f"desktop {self.name!r} is not started; the daemon starts it")
        return self._user

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {"DISPLAY": self.display, **(extra or {})}

    async def start(self) -> Binding:
        """Start Xvnc and the window manager; return once both answer.

        Raises:
            ConfigError: the user does not exist.
            InfraError: Xvnc or the window manager is missing, died, or was not ready in time.
        """
        async with self._lock:  # the watchdog and task_ended may both restart us
            return await self._start()

    async def _start(self) -> Binding:
        await self._stop()  # never two displays: a leftover one would outlive us
        user = self._user = self._user or resolve_user(self.user_name)
        self._dir = self._dir or Path(tempfile.mkdtemp(prefix=f"hud-{self.name}-"))
        if not X11_DIR.is_dir():
            X11_DIR.mkdir(mode=0o1777, exist_ok=True)
            os.chmod(X11_DIR, 0o1777)  # mkdir's mode is masked by the umask
        self.number = self.number if self.number is not None else _free_display()
        self.port = self.port or _free_port()
        argv = ["Xvnc", self.display, "-rfbport", str(self.port), "-localhost",
                "-SecurityTypes", "None", "-geometry", f"{self.width}x{self.height}",
                "-depth", str(self.depth), "-nolisten", "tcp", "-AlwaysShared",
                # every tunnel and health check comes from 127.0.0.1: the blacklist would
                # lock all of them out after 5 dropped handshakes (measured)
                "-UseBlacklist=0", "-desktop", self.name]
        self._xvnc = await Service.spawn("Xvnc", argv, user=user, log_path=self._dir / "xvnc.log")
        self._ran = True
        for path in self._x_files():  # the reset of the agent's /tmp between tasks keeps them
            spare_path(path)
        self.generation += 1
        x_socket = X11_DIR / f"X{self.number}"
        port = self.port

        async def ready() -> bool:
            return x_socket.exists() and await rfb_greets(port)

        try:
            await poll(ready, timeout=self.start_timeout, service=self._xvnc,
                       what=f"Xvnc serves display {self.display} and RFB on 127.0.0.1:{port}")
            if self.window_manager:
                self._wm = await Service.spawn("the window manager", self.window_manager,
                                               user=user, log_path=self._dir / "wm.log",
                                               env=self._env())
                wait = WmWait()
                await poll(lambda: self._wm_ready(wait), timeout=self.start_timeout,
                           service=self._wm,
                           what=f"{self.window_manager[0]} manages {self.display}")
                if wait.lingered:
                    log.warning("%s announced itself on %s but had not listed its clients "
                                "(_NET_CLIENT_LIST) %gs later; counting it as started (a "
                                "window mapped before it manages windows may not be shown)",
                                self.window_manager[0], self.display, wait.grace)
        except BaseException:
            await self._kill()
            raise
        log.info("desktop %s on %s, RFB at 127.0.0.1:%d", self.name, self.display, port)
        return Binding(name=self.name, protocol=self.protocol, url=f"tcp://127.0.0.1:{port}",
                       params={"width": self.width, "height": self.height,
                               "display": self.display})

    async def _wm_ready(self, wait: WmWait) -> bool:
        done = await arun([program("xprop"), "-root", *WM_PROPERTIES], timeout=5,
                          env={"DISPLAY": self.display, "PATH": os.environ.get("PATH", "")})
        return done.ok and wait.ready(done.stdout, asyncio.get_running_loop().time())

    async def _kill(self) -> None:
        for service in [*self._apps, self._wm, self._xvnc]:
            if service is not None:
                await service.stop()
        self._apps, self._wm, self._xvnc = [], None, None

    async def stop(self) -> None:
        """Kill the apps, the window manager and Xvnc (idempotent)."""
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        await self._kill()
        if self.number is not None and self._ran:  # a killed Xvnc leaves its lock and socket
            for stale in self._x_files():
                release_path(stale)
                with contextlib.suppress(OSError):
                    stale.unlink()

    def _x_files(self) -> tuple[Path, Path]:
        """The display's lock file and socket: Xvnc (as the agent) keeps them in /tmp."""
        return Path(f"/tmp/.X{self.number}-lock"), X11_DIR / f"X{self.number}"

    async def close(self) -> None:
        """`stop`, and remove the log directory."""
        await self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    async def task_ended(self) -> None:
        """Kill the apps started for the task; with `reset_per_task`, restart the display."""
        async with self._lock:
            self._task_generation = None
            if self._xvnc is None:
                return  # stopped (shutting down): stay stopped
            if self.reset_per_task:
                await self._stop()
                await self._start()
                return
            for app in self._apps:
                await app.stop()
            self._apps = []

    async def healthy(self) -> bool:
        """Xvnc and the window manager run, and the RFB port greets (True while restarting)."""
        if self._lock.locked():
            return True
        if self._xvnc is None or not self._xvnc.alive or self.port is None:
            return False
        if self._wm is not None and not self._wm.alive:
            return False
        return await rfb_greets(self.port)

    # -- template helpers ----------------------------------------------------------------

    def _check_generation(self) -> None:
        if self._task_generation not in (None, self.generation):
            raise InfraError(f"the display ({self.name!r}) died and was restarted during this "
                             f"task, so the windows the task set up are gone; this rollout is "
                             f"an infrastructure failure, not a result")

    async def _ensure_running(self) -> None:
        """Restart the display if it died since the watchdog last looked (e.g. a sweep of
        the agent's processes at the end of a task), so setup code never meets a dead one.

        Raises:
            InfraError: the desktop was never started, or cannot be restarted.
        """
        async with self._lock:
            wm_ok = (self._wm is not None and self._wm.alive) or not self.window_manager
            alive = self._xvnc is not None and self._xvnc.alive and wm_ok
            # a dying Xvnc can look alive for a moment: ask for its greeting too
            if alive and self.port is not None and await rfb_greets(self.port):
                return
            if self.port is None:
                raise InfraError(f"desktop {self.name!r} is not started; the daemon starts it")
            log.warning("desktop %s: the display is not running; restarting it", self.name)
            await self._start()

    async def run_app(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                      cwd: str | None = None) -> Service:
        """Start a GUI program on the display as the agent; it is killed when the task ends
        (setup: restarts a display that died since the last task).

        Raises:
            InfraError: the desktop is not started, or the program is not installed.
        """
        await self._ensure_running()
        if self._task_generation is None:
            self._task_generation = self.generation  # what this task's windows live in
        assert self._user is not None and self._dir is not None
        app = await Service.spawn(argv[0], argv, user=self._user, env=self._env(env), cwd=cwd,
                                  log_path=self._dir / f"app-{len(self._apps)}.log")
        self._apps.append(app)
        return app

    async def xdotool(self, *args: str, timeout: float = 15.0) -> str:
        """Run `xdotool ARGS...` on the display as the agent; return its stdout.

        Raises:
            InfraError: xdotool failed or ran past `timeout`.
        """
        self._check_generation()
        user = self.user
        done = await arun(user.argv([program("xdotool"), *args]), timeout=timeout,
                          env=user.environment(extra=self._env()))
        if not done.ok:
            raise InfraError(f"xdotool {' '.join(args)} failed (exit {done.code}): {done.tail()}")
        return done.stdout.strip()

    async def wait_window(self, name: str, timeout: float = 15.0) -> str:
        """Wait for a visible window whose title matches regex `name`; return its id.

        Raises:
            InfraError: no such window appeared within `timeout`.
        """
        try:
            found = await self.xdotool("search", "--sync", "--onlyvisible", "--name", name,
                                       timeout=timeout)
        except InfraError as exc:
            raise InfraError(f"no window titled {name!r} appeared on {self.display} within "
                             f"{timeout:g}s{await self._unshown(name)} ({exc})") from exc
        return found.splitlines()[0]

    async def _unshown(self, name: str) -> str:
        """For `wait_window`'s error: whether a window so titled exists but is not shown."""
        try:
            hidden = await self.xdotool("search", "--name", name, timeout=HEALTH_TIMEOUT)
        except InfraError:
            return ""  # none at all: the app did not get as far as its window
        ids = hidden.split()  # the agent's display: as many as it made, so only a few shown
        listed = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return (f"; windows so titled exist but are not shown ({listed}): "
                f"the app did not map them, or the window manager did not "
                f"(see {self.window_manager[0] if self.window_manager else 'Xvnc'}'s log "
                f"in {self._dir})")

    async def connect(self, timeout: float = 10.0) -> RFBClient:
        """An RFB client on the local port (for helpers; agents use the tunnel).

        Raises:
            RFBError: the display does not answer.
        """
        if self.port is None:
            raise RFBError(f"desktop {self.name!r} is not started; the daemon starts it")
        self._check_generation()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22), timeout)
        except (TimeoutError, OSError) as exc:
            raise RFBError(f"desktop {self.name!r} does not answer on 127.0.0.1:{self.port} "
                           f"({type(exc).__name__}); the display is not ready or died") from exc
        return await RFBClient.connect(reader, writer, timeout=timeout)

    async def screenshot(self, timeout: float = 10.0) -> bytes:
        """The screen as PNG bytes.

        Raises:
            RFBError: the display does not answer within `timeout`.
        """
        client = await self.connect(timeout)
        try:
            return await client.screenshot(timeout)
        finally:
            await client.close()
