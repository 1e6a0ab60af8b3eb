"""`hud view`'s web app: Starlette routes over the runs folder, served by uvicorn.

    /                                   jobs
    /job/JOB                            one job: tasks, runs, settings
    /job/JOB/run/TRACE?page=N           one run: header, timeline, a page of its events
    /job/JOB/run/TRACE/raw/N            event N as JSON text (what a fold left out)
    /job/JOB/shot/NAME.png              a screenshot (a PNG file in the job's folder)
    /compare?job=A&job=B                jobs side by side; /leaderboard
    /api/stamp?job=JOB&trace=TRACE      changes when the page would (live pages poll it)

Safety (trace text is attacker-controlled; see `hud.view.store` for paths):
- every id is validated and every path checked to stay in the folder: a bad one is 404;
- only GET; a Content-Security-Policy allows scripts, styles and images from this origin
  only (no inline script runs, even if some text escaped the templates), plus
  nosniff, no framing and no referrer;
- bound to 127.0.0.1 by default, and then only a Host header naming the loopback
  (127.0.0.1, localhost, [::1]) is answered, so a web page that rebinds its DNS name
  to 127.0.0.1 cannot read traces.
  Another `--host` exposes every trace in the folder to whoever reaches the port; and
  even on the loopback there is no token: every local account can read the traces.
- page and event numbers in a URL are 1 to 9 ASCII digits, else a 404.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from ipaddress import ip_address
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hud.view import pages
from hud.view.jsontext import dump
from hud.view.render import STATIC, STATIC_FILES, Renderer, ServedLinks
from hud.view.store import NotFound, Store

CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
           "referrer-policy": "no-referrer", "x-frame-options": "DENY",
           "cross-origin-resource-policy": "same-origin", "cache-control": "no-cache"}
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".svg": "image/svg+xml"}


class SecurityHeaders:
    """Adds `HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: a raw event is sent indented up to this many characters, else as its trace line
RAW_PRETTY = 20_000_000
#: what a page or event number in a URL may be: ASCII digits, not too many
NUMBER = re.compile(r"[0-9]{1,9}")


def number_of(text: str, what: str) -> int:
    """A page or event number from a URL.

    Raises:
        NotFound: `text` is not 1 to 9 ASCII digits.
    """
    if NUMBER.fullmatch(text) is None:
        raise NotFound(f"not a{'n' if what[0] in 'aeiou' else ''} {what} number: {text[:40]!r}")
    return int(text)


def create_app(store: Store, host: str = "127.0.0.1") -> Starlette:
    """The viewer's ASGI app over `store`, answering Host headers that fit `host`."""
    renderer = Renderer(ServedLinks())

    def html(page: pages.Page, status: int = 200) -> HTMLResponse:
        template, context = page
        return HTMLResponse(renderer.page(template, **context), status_code=status)

    def job_id(request: Request) -> str:
        return str(request.path_params["job_id"])

    def jobs(request: Request) -> Response:
        return html(pages.jobs_page(store))

    def job(request: Request) -> Response:
        return html(pages.job_page(store, job_id(request)))

    def run(request: Request) -> Response:
        page = number_of(request.query_params.get("page", "1"), "page")
        return html(pages.run_page(store, job_id(request), request.path_params["trace_id"],
                                   page))

    def raw(request: Request) -> Response:
        path = store.trace_path(job_id(request), request.path_params["trace_id"])
        number = number_of(request.path_params["number"], "event")
        event = store.events(path, [number]).get(number)
        if event is None:
            raise NotFound(f"no event {number} in {path.name}")
        pretty = dump(event, RAW_PRETTY)
        if pretty.chars <= RAW_PRETTY:
            return PlainTextResponse(pretty.text)
        # indenting would multiply it (a value nested deep): the line as the trace has it
        return PlainTextResponse(store.line(path, number))

    def shot(request: Request) -> Response:
        data = store.screenshot(job_id(request), request.path_params["name"])
        return Response(data, media_type="image/png",
                        headers={"cache-control": "max-age=3600, immutable"})

    def compare(request: Request) -> Response:
        return html(pages.compare_page(store, request.query_params.getlist("job")))

    def leaderboard(request: Request) -> Response:
        return html(pages.leaderboard_page(store))

    def stamp(request: Request) -> Response:
        job = request.query_params.get("job")
        trace = request.query_params.get("trace")
        return JSONResponse({"stamp": store.stamp(job, trace)},
                            headers={"cache-control": "no-store"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise NotFound(f"no static file {name!r}")
        suffix = name[name.rindex("."):]
        return Response((STATIC / name).read_bytes(), media_type=TYPES[suffix])

    def not_found(request: Request, exc: Exception) -> Response:
        message = str(exc) if isinstance(exc, NotFound) else "no such page"
        return html(("error.html", {"code": 404, "title": "Not found", "message": message,
                                    "live": False, "stamp": ()}), 404)

    def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 404:
            return not_found(request, exc)
        return PlainTextResponse(str(getattr(exc, "detail", "error")), status_code=code)

    # a Host header names an IPv6 address in brackets ([::1]:7788); Starlette keeps them
    allowed = ["127.0.0.1", "localhost", "::1", "[::1]", host, f"[{host.strip('[]')}]"] \
        if is_loopback(host) else ["*"]
    routes = [
        Route("/", jobs), Route("/leaderboard", leaderboard), Route("/compare", compare),
        Route("/job/{job_id}", job), Route("/job/{job_id}/run/{trace_id}", run),
        Route("/job/{job_id}/run/{trace_id}/raw/{number}", raw),
        Route("/job/{job_id}/shot/{name}", shot), Route("/api/stamp", stamp),
        Route("/static/{name}", static),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Response]] = {
        NotFound: not_found, HTTPException: http_error}
    return Starlette(routes=routes, exception_handlers=handlers,
                     middleware=[Middleware(SecurityHeaders),
                                 Middleware(TrustedHostMiddleware, allowed_hosts=allowed)])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one).

    Raises:
        OSError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    """The URL to open for a socket bound to `host` (the loopback for a wildcard)."""
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else (
        f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/"


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def run_server(store: Store, sock: socket.socket, host: str, ready: Callable[[], None]) -> None:
    """Serve the viewer on `sock` until SIGINT or SIGTERM; `ready()` is called first
    (to print the URL). Either signal ends in SystemExit or KeyboardInterrupt, so the
    caller's `finally` runs whenever it comes, even before uvicorn has started."""
    import asyncio
    import signal

    import uvicorn

    # uvicorn stops on the signal, then raises it again once shut down: as SystemExit
    # rather than the default death, so the caller cleans up (`hud.view.beacon`)
    signal.signal(signal.SIGTERM, _exit)
    ready()
    config = uvicorn.Config(create_app(store, host), log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=2)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
