"""Wall-clock bounds on API requests, kept by hud, so a hung provider cannot hold a rollout.

The SDKs' `timeout` is httpx's: a limit on each network read, so a server that sends a
byte now and then (a body trickled out, a stream of keep-alive pings from a stuck
upstream behind a proxy) holds a request forever. hud bounds every HTTP request itself,
with asyncio timeouts, inside the SDK's own retry loop (its HTTP client is ours):

- non-streaming: the whole request (connection, response, body) within `timeout`;
- streaming: the response headers within `timeout`; then content-bearing events at most
  `timeout` apart (pings, keep-alives and status events do not count: see each harness's
  stream reader), and the whole request within `STREAM_CAP_FACTOR` x `timeout` (30 min
  by default) of being sent.

A request cut by hud's clock is a timed-out try, as the SDK's own timeouts are: the SDK
retries it (a non-streamed request, a stream's headers) and hud retries a stream cut after
it started (`hud.agents.streaming.retrying`), all in ONE budget: a model turn sends at most
1 + `max_retries` HTTP requests, whatever failed. Between two of them: the SDKs' backoff
(at most 8 s; Gemini's at most 60 s), hud's (at most 8 s), or the provider's
`retry-after`, which hud caps at `MAX_RETRY_WAIT` (the Anthropic SDK honours any value).
So one model turn that does not succeed ends within

    non-streaming  (1 + max_retries) x timeout     + max_retries x 60 s   (17 min by default)
    streaming      (1 + max_retries) x 6 x timeout + max_retries x 60 s   (92 min by default)

the streaming figure being for a provider that keeps sending content for 30 minutes each
time; one that sends nothing (or only pings) fails within the non-streaming figure.

The SDK's own timeout is set a little above hud's (`sdk_timeout`), as a backstop only, so
whichever limit a request hits it ends as `RequestTimeout`, naming the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from hud.errors import HudError

if TYPE_CHECKING:
    import httpx2

T = TypeVar("T")
#: a streamed request may run this many request timeouts in all (30 min at the default 300 s)
STREAM_CAP_FACTOR = 6
#: seconds a provider's retry-after may make a retry wait, at most
MAX_RETRY_WAIT = 60.0


class RequestTimeout(HudError):
    """An API request went past hud's time limit on it (raised to the caller when every
    try did: the message names the limit and the requests sent)."""


class Clock:
    """hud's time limits on one conversation's API requests, and the count of requests
    sent (every try, the SDK's retries included: the budget `retrying` shares with it)."""

    def __init__(self, timeout: float, retries: int, where: str) -> None:
        self.timeout = timeout
        self.retries = retries
        #: what the requests go to, for messages ("the Anthropic API", a base URL)
        self.where = where
        self.cap = STREAM_CAP_FACTOR * timeout
        self.sent = 0
        #: the event loop's time when the last request was sent
        self.sent_at = 0.0
        #: the streamed body being read, told when its request is (re)sent
        self._pace: Pace | None = None

    @property
    def sdk_timeout(self) -> float:
        """The SDK's own (per read) timeout: later than hud's limits, a backstop only."""
        return self.timeout + max(1.0, self.timeout / 10)

    def http_client(self, base: type[httpx2.AsyncClient] | None = None) -> httpx2.AsyncClient:
        """An HTTP client for the SDK (an instance of `base`, its own default class, so
        its connection defaults stay) whose every request keeps this clock's limits."""
        import httpx2

        clock = self

        class Bounded(base or httpx2.AsyncClient):  # type: ignore[misc]
            async def send(self, request: httpx2.Request, *, stream: bool = False,
                           **options: Any) -> httpx2.Response:
                return await clock.send(super().send, request, stream=stream, **options)

        return Bounded()

    async def send(self, send: Callable[..., Awaitable[httpx2.Response]],
                   request: httpx2.Request, *, stream: bool, **options: Any) -> httpx2.Response:
        """One try: the whole response (or, streamed, its headers) within `timeout`.

        Raises:
            httpx2.ReadTimeout: past the limit; the SDK counts it as a timed-out try.
        """
        import httpx2

        self.sent += 1
        self.sent_at = asyncio.get_running_loop().time()
        if self._pace is not None:  # a stream read lazily: its clock waits for the headers
            self._pace.hold()
        try:
            async with asyncio.timeout(self.timeout) as scope:
                response = await send(request, stream=stream, **options)
        except TimeoutError:
            if not scope.expired():
                raise
            what = "response headers" if stream else "whole response"
            raise httpx2.ReadTimeout(f"no {what} within the request timeout, "
                                     f"{self.timeout:g} s", request=request) from None
        _cap_retry_after(response.headers)
        if self._pace is not None:
            self._pace.restart(self.sent_at + self.cap)
        return response

    @contextlib.asynccontextmanager
    async def pacing(self, sent: bool = True) -> AsyncIterator[Pace]:
        """Read a streamed body: call `progress()` on each content-bearing event; no
        content for `timeout`, or the request past `cap` since it was sent, ends the body.
        `sent=False`: the SDK sends the request when the body is first read (Gemini's);
        the limits start when its headers come.

        Raises:
            RequestTimeout: either limit was reached.
        """
        loop = asyncio.get_running_loop()
        pace = Pace(loop, self.timeout, self.sent_at + self.cap)
        self._pace = pace
        try:
            async with asyncio.timeout_at(pace.next() if sent else None) as scope:
                pace.scope = scope
                yield pace
        except TimeoutError:
            if not scope.expired():
                raise
            if pace.capped:
                raise RequestTimeout(
                    f"the stream was still going {self.cap:g} s after the request was sent "
                    f"(the limit on a streamed request, {STREAM_CAP_FACTOR} x the request "
                    f"timeout)") from None
            raise RequestTimeout(f"the stream sent no content for {self.timeout:g} s, the "
                                 f"request timeout (keep-alive pings do not count)") from None
        finally:
            self._pace = None

    async def plain(self, call: Callable[[], Awaitable[T]]) -> T:
        """Make a non-streaming request (the SDK retries it) and name a timeout.

        Raises:
            RequestTimeout: every try timed out (the last one's reason in the message).
            Exception: any other failure, as the SDK raised it.
        """
        start = self.sent
        try:
            return await call()
        except Exception as exc:
            expired = self.expired(exc, start)
            if expired is None:
                raise
            raise expired from exc

    def expired(self, exc: BaseException, start: int) -> RequestTimeout | None:
        """The error to raise when `exc` (the failure of a model turn whose requests
        started at count `start`) is a timeout; None when it is not."""
        reason = _timeout_reason(exc)
        if reason is None:
            return None
        tries = self.sent - start
        return RequestTimeout(
            f"the request to {self.where} timed out: {reason}; {tries} "
            f"request{'s' if tries != 1 else ''} sent (max_retries={self.retries}). The "
            f"provider is hung or slower than the limit: raise the request timeout "
            f"(--request-timeout, timeout=) if its answers are only slow")


class Pace:
    """The deadline of a streamed body, moved on by each content-bearing event."""

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: float, deadline: float) -> None:
        self.loop = loop
        self.idle = idle
        self.deadline = deadline
        self.scope: asyncio.Timeout | None = None
        #: the current expiry is the whole-request cap, not the wait for content
        self.capped = False

    def next(self) -> float:
        """The loop time by which the next content must come."""
        when = self.loop.time() + self.idle
        self.capped = when >= self.deadline
        return min(when, self.deadline)

    def progress(self) -> None:
        """Content came: wait `idle` seconds again (never past the cap)."""
        if self.scope is not None:
            self.scope.reschedule(self.next())

    def hold(self) -> None:
        """The request is being (re)sent: the SDK's try, with its own limit, runs."""
        if self.scope is not None:
            self.scope.reschedule(None)

    def restart(self, deadline: float) -> None:
        """The request's headers came: its content is due within `idle`, all by `deadline`."""
        self.deadline = deadline
        self.progress()


def _timeout_reason(exc: BaseException) -> str | None:
    """What timed out, when `exc` or an error it was raised from is a timeout: hud's own
    (its message), or the SDK's (its class, when it has no message)."""
    timeouts: tuple[type[BaseException], ...] = (RequestTimeout, *http_errors("TimeoutException"))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, timeouts):
            return str(current) or f"{type(current).__name__} (the SDK's own timeout)"
        current = current.__cause__
    return None


def http_errors(name: str = "TransportError") -> tuple[type[BaseException], ...]:
    """An error class of the SDKs' HTTP library, by name: "TransportError" (a read that
    timed out, a connection that broke) or "TimeoutException" (httpx2 under the current
    SDKs; httpx's too when it is installed)."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def _cap_retry_after(headers: httpx2.Headers) -> None:
    """Cap a response's retry-after (seconds or an HTTP date) and retry-after-ms at
    MAX_RETRY_WAIT, so no SDK waits longer than that before a retry."""
    if "retry-after-ms" in headers and _number(headers["retry-after-ms"]) > MAX_RETRY_WAIT * 1000:
        headers["retry-after-ms"] = f"{MAX_RETRY_WAIT * 1000:g}"
    value = headers.get("retry-after")
    if value is None:
        return
    wait = _number(value)
    if wait != wait:  # NaN: not a number of seconds, maybe a date
        date = email.utils.parsedate_tz(value)
        wait = email.utils.mktime_tz(date) - time.time() if date is not None else 0.0
    if wait > MAX_RETRY_WAIT:
        headers["retry-after"] = f"{MAX_RETRY_WAIT:g}"


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")
