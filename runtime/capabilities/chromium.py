"""The `cdp` capability: Debian's Chromium, headless, as the agent, DevTools on loopback.

    chromium --headless --remote-debugging-port=PORT --user-data-dir=PROFILE ...  (as agent)

Chromium binds DevTools to 127.0.0.1 whatever `--remote-debugging-address` says, so the
host reaches it only through the runtime's tunnel (`cdp/1.3` binding). The port is picked
once and kept across restarts (a crash, a fresh profile per task), so the published binding
stays valid; the browser WebSocket path changes with every start, so clients read it from
`GET /json/version` (Playwright's `connect_over_cdp("http://...")` does that itself).

The sandbox (measured in the hud-browser image under Docker's default seccomp profile, as
`agent`): Chromium aborts with "No usable sandbox!" because it cannot create user
namespaces, and Debian's setuid helper (chromium-sandbox) would need privileges a
rollout container does not have. So Chromium runs as `agent` with `--no-sandbox`; the
container, the agent's uid and the dropped capabilities are the boundary. `sandbox=True`
keeps Chromium's sandbox for hosts that allow it.

Tabs are bounded: a watcher connection sees every new tab and closes the newest ones
beyond `max_tabs`, so an agent opening thousands of tabs cannot exhaust the container.

Template helpers (setup and grading, in the daemon): `open`, `evaluate`, `text`,
`screenshot`, and `session()` for anything else over `hud.clients.cdp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from hud.capabilities.service import Service, owned_dir, poll
from hud.capabilities.users import User, resolve_user
from hud.capability import Capability
from hud.clients.cdp import CDP
from hud.clients.devtools import http_get_json, ws_path
from hud.clients.page import Page
from hud.errors import ConfigError, HudError, InfraError
from hud.messages import Binding

log = logging.getLogger("hud.capabilities.chromium")

FLAGS = (
    "--disable-gpu", "--disable-dev-shm-usage",  # docker's /dev/shm is 64 MB
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-first-run",
    "--no-default-browser-check", "--password-store=basic", "--mute-audio",
)
#: extra args that keep Chromium off every network but loopback (tests; air-gapped images)
LOOPBACK_ONLY = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",)
HEALTH_TIMEOUT = 3.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BrowserCapability(Capability):
    """Chromium with DevTools on loopback, published as `cdp/1.3`."""

    protocol = "cdp/1.3"

    def __init__(self, name: str = "browser", *, user: str | None = "agent", width: int = 1280,
                 height: int = 800, max_tabs: int = 20, fresh_profile: bool = True,
                 display: str | None = None, sandbox: bool = False, args: Sequence[str] = (),
                 executable: str = "chromium", start_timeout: float = 30.0) -> None:
        """
        Args:
            name: binding name.
            user: who runs Chromium ("agent" in the images; None = the daemon's own user,
                for tests on a host; root needs sandbox=False).
            width: window (viewport) width.
            height: window height.
            max_tabs: tabs beyond this many are closed as soon as they open.
            fresh_profile: after each task, restart Chromium on an empty profile (else on
                the same profile: cookies and storage carry over).
            display: an X display (":20") to show the browser on; None = headless.
            sandbox: keep Chromium's sandbox (needs user namespaces; off in containers).
            args: extra Chromium flags (e.g. `LOOPBACK_ONLY`).
            executable: the Chromium binary.
            start_timeout: seconds to wait for DevTools to answer.

        Raises:
            ConfigError: a bound that makes no sense.
        """
        if max_tabs < 1 or width < 64 or height < 64:
            raise ConfigError(f"bad browser settings: max_tabs={max_tabs} (>= 1), "
                              f"window {width}x{height} (>= 64x64)")
        self.name = name
        self.user_name = user
        self.width, self.height = width, height
        self.max_tabs = max_tabs
        self.fresh_profile = fresh_profile
        self.display = display
        self.sandbox = sandbox
        self.args = list(args)
        self.executable = executable
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.closed_tabs = 0
        self._user: User | None = None
        self._dir: Path | None = None
        self._profile: Path | None = None
        self._chromium: Service | None = None
        self._watcher: CDP | None = None
        self._tabs: list[str] = []
        #: tab closings in flight (the loop keeps only weak references to tasks)
        self._closing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        #: how many times Chromium was started; helpers refuse to grade across a restart
        self.generation = 0
        self._task_generation: int | None = None

    def _argv(self, port: int, profile: Path) -> list[str]:
        argv = [self.executable, *FLAGS, f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}", f"--window-size={self.width},{self.height}"]
        if self.display is None:
            argv.append("--headless")
        if not self.sandbox:
            argv.append("--no-sandbox")
        return [*argv, *self.args, "about:blank"]

    async def start(self) -> Binding:
        """Start Chromium and return once DevTools answers `/json/version`.

        Raises:
            ConfigError: the user does not exist.
            InfraError: Chromium is missing, died, or DevTools did not answer in time.
        """
        async with self._lock:  # the watchdog and task_ended may both restart us
            return await self._start()

    async def _start(self) -> Binding:
        await self._kill()  # never two Chromiums: a leftover one would outlive us
        self.generation += 1
        user = self._user = self._user or resolve_user(self.user_name)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=f"hud-{self.name}-"))
            os.chmod(self._dir, 0o711)  # the agent reaches its profile, not the logs
        if self._profile is None:
            fresh = Path(tempfile.mkdtemp(prefix="profile-", dir=self._dir))
            self._profile = owned_dir(fresh, user)
        port = self.port = self.port or _free_port()
        env = {"DISPLAY": self.display} if self.display else {}
        # Chromium's temp files (its singleton socket) stay out of the agent's /tmp, which
        # the ssh workspace clears between tasks
        env["TMPDIR"] = str(owned_dir(self._dir / "tmp", user))
        self._chromium = await Service.spawn("chromium", self._argv(port, self._profile),
                                             user=user, env=env,
                                             log_path=self._dir / "chromium.log")
        try:
            version = await poll(lambda: self._version(port), timeout=self.start_timeout,
                                 service=self._chromium,
                                 what=f"Chromium DevTools answers on 127.0.0.1:{port}")
            await self._watch(port)
        except BaseException:
            await self._kill()
            raise
        log.info("browser %s: %s, DevTools at 127.0.0.1:%d", self.name, version.get("Browser"),
                 port)
        return Binding(name=self.name, protocol=self.protocol, url=f"tcp://127.0.0.1:{port}",
                       params={"version_path": "/json/version",
                               "ws_path": ws_path(version),
                               "browser": version.get("Browser", ""), "width": self.width,
                               "height": self.height, "max_tabs": self.max_tabs})

    async def _version(self, port: int, timeout: float = HEALTH_TIMEOUT) -> dict[str, Any] | None:
        try:
            streams = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
            version = await http_get_json(*streams, "/json/version", timeout)
        except (TimeoutError, OSError, InfraError):
            return None
        return version if isinstance(version, dict) else None

    async def _watch(self, port: int) -> None:
        """Keep a connection that closes the newest tabs beyond `max_tabs`."""
        watcher = self._watcher = await CDP.connect_port(port)
        self._tabs = [t["targetId"] for t in await watcher.pages()]

        def created(event: dict[str, Any]) -> None:
            info = event["params"]["targetInfo"]
            if info.get("type") != "page" or info["targetId"] in self._tabs:
                return
            self._tabs.append(info["targetId"])
            while len(self._tabs) > self.max_tabs:
                extra = self._tabs.pop()
                self.closed_tabs += 1
                closing = asyncio.ensure_future(self._close_tab(watcher, extra))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)

        def destroyed(event: dict[str, Any]) -> None:
            with contextlib.suppress(ValueError):
                self._tabs.remove(event["params"]["targetId"])

        watcher.on("Target.targetCreated", created)
        watcher.on("Target.targetDestroyed", destroyed)
        await watcher.send("Target.setDiscoverTargets", {"discover": True})

    async def _close_tab(self, watcher: CDP, target_id: str) -> None:
        log.warning("browser %s: more than %d tabs; closing the newest", self.name, self.max_tabs)
        with contextlib.suppress(HudError):
            await watcher.send("Target.closeTarget", {"targetId": target_id}, timeout=10)

    async def _kill(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
            self._watcher = None
        if self._chromium is not None:
            await self._chromium.stop()
            self._chromium = None

    async def stop(self) -> None:
        """Kill Chromium and everything it started (idempotent)."""
        async with self._lock:
            await self._kill()

    async def close(self) -> None:
        """`stop`, and remove the profile and logs."""
        await self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = self._profile = None

    async def task_ended(self) -> None:
        """Restart Chromium (the agent's tabs go); on a new profile with `fresh_profile`."""
        async with self._lock:
            self._task_generation = None
            if self._chromium is None:
                return  # stopped (shutting down): stay stopped
            await self._kill()
            if self.fresh_profile and self._profile is not None:
                shutil.rmtree(self._profile, ignore_errors=True)
                self._profile = None
            await self._start()

    async def healthy(self) -> bool:
        """Chromium runs and DevTools answers within a few seconds (True while restarting)."""
        if self._lock.locked():
            return True
        if self._chromium is None or not self._chromium.alive or self.port is None:
            return False
        return await self._version(self.port) is not None

    # -- template helpers ----------------------------------------------------------------

    async def _ensure_running(self) -> None:
        """Restart Chromium if it died since the watchdog last looked (e.g. a sweep of the
        agent's processes at the end of a task), so setup code never meets a dead browser.

        Raises:
            InfraError: the browser was never started, or cannot be restarted.
        """
        async with self._lock:
            alive = self._chromium is not None and self._chromium.alive
            # a dying Chromium can look alive for a moment: ask DevTools too
            if alive and self.port is not None and await self._version(self.port):
                return
            if self.port is None:
                raise InfraError(f"browser {self.name!r} is not started; the daemon starts it")
            log.warning("browser %s: Chromium is not running; restarting it", self.name)
            await self._start()

    @contextlib.asynccontextmanager
    async def session(self, timeout: float = 10.0) -> AsyncIterator[CDP]:
        """A CDP connection to the browser endpoint, closed on exit.

        Raises:
            InfraError: the browser is not started or does not answer.
        """
        if self.port is None:
            raise InfraError(f"browser {self.name!r} is not started; the daemon starts it")
        if self._task_generation not in (None, self.generation):
            raise InfraError(f"Chromium ({self.name!r}) died and was restarted during this "
                             f"task, so the page state the task set up is gone; this rollout "
                             f"is an infrastructure failure, not a result")
        cdp = await CDP.connect_port(self.port, timeout)
        try:
            yield cdp
        finally:
            await cdp.close()

    @contextlib.asynccontextmanager
    async def page(self, url_prefix: str | None = None) -> AsyncIterator[Page]:
        """The first tab (whose URL starts with `url_prefix`), for the duration of a block.

        Raises:
            CDPError: no tab's URL starts with `url_prefix`.
            InfraError: the browser does not answer.
        """
        async with self.session() as cdp:
            yield await cdp.page(url_prefix)

    async def open(self, url: str, timeout: float = 30.0) -> None:
        """Load `url` in the first tab and wait for its load event (setup: restarts a
        Chromium that died since the last task).

        Raises:
            CDPError: the navigation failed. CDPTimeout: it did not load within `timeout`.
        """
        await self._ensure_running()
        if self._task_generation is None:
            self._task_generation = self.generation  # what this task's state lives in
        async with self.page() as page:
            await page.navigate(url, timeout)

    async def evaluate(self, expression: str, url_prefix: str | None = None,
                       timeout: float = 30.0) -> Any:
        """Evaluate JavaScript in the first tab (matching `url_prefix`); its JSON value.

        Raises:
            CDPError: the script threw, or no tab matches.
        """
        async with self.page(url_prefix) as page:
            return await page.evaluate(expression, timeout)

    async def text(self, selector: str = "body", url_prefix: str | None = None) -> str:
        """The rendered text of `selector` in the first tab (matching `url_prefix`).

        Raises:
            CDPError: no element matches, or no tab matches.
        """
        async with self.page(url_prefix) as page:
            return await page.text(selector)

    async def screenshot(self, url_prefix: str | None = None) -> bytes:
        """A PNG of the first tab (matching `url_prefix`).

        Raises:
            CDPError: no tab matches. CDPTimeout: no frame in time.
        """
        async with self.page(url_prefix) as page:
            return await page.screenshot()

