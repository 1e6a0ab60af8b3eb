"""The stall guard: template code that blocks the event loop fails only its own call.

Template code runs on the daemon's event loop (capabilities' helpers — browser, desktop,
robot episodes — are asyncio objects bound to that loop, so it cannot run elsewhere). A
template that calls `time.sleep(600)`, spins in `while True: pass` or does blocking I/O
would freeze every client. So the runner drives a template's coroutine one *step* at a
time (`guarded`): a step is the synchronous run of template code between two awaits that
really suspend. Each step is registered here while it runs.

A watchdog thread looks at the running step. Past its limit it sends a signal to the
loop's thread (`signal.pthread_kill`); the Python-level handler installed for that
signal raises `StallInterrupt` in the template's frame, which ends the step (a blocking
`time.sleep`, `select`, lock or `waitpid` returns EINTR and the handler runs; a busy
loop runs the handler at its next bytecode). The handler never raises inside the guard's
own code, and does nothing when no step is past its limit, so a late signal is harmless.
Any step that ran past its limit fails its call with `Stalled`, whether it was
interrupted or finished late, and the runner turns that into a TaskError.

Limits of the guard, by design:
- Interrupting needs the loop in the main thread (as in `hud serve`, and `asyncio.run`
  in general): only the main thread runs Python signal handlers. Elsewhere a long step
  is detected when it returns, not interrupted.
- C code that holds the GIL without checking for signals (one huge regex, `sum()` of a
  giant range) cannot be interrupted; it is failed when it returns.
- Template code that swallows the interrupt (`except BaseException: pass`) is
  interrupted again every `REFIRE` seconds, and its call fails when the step ends.
- Tasks that template code spawns itself (`asyncio.create_task`) are not guarded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Awaitable, Generator
from types import FrameType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: seconds between interrupts of a step that swallowed the previous one
REFIRE = 0.5
_POLL = 0.1
# a real-time signal nothing else in the daemon uses; never the default action (exit)
_SIGNAL = signal.SIGRTMAX - 1


class StallInterrupt(BaseException):
    """Raised inside template code that ran past its stall limit (a BaseException, so
    `except Exception` in the template does not swallow it)."""


class Stalled(Exception):
    """A step of template code ran synchronously for longer than its limit."""

    def __init__(self, limit: float, seconds: float) -> None:
        super().__init__(f"blocked the event loop for {seconds:.1f}s (limit {limit:g}s)")
        self.limit = limit
        self.seconds = seconds


class _Step:
    __slots__ = ("fired", "limit", "seconds", "started")

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = time.monotonic()
        self.fired = False
        self.seconds = 0.0

    @property
    def over(self) -> bool:
        return self.fired or self.seconds > self.limit


_current: _Step | None = None  # the step running on the main thread's loop, if any
_watchdog_started = False
_handler_installed = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Raise StallInterrupt in the blocked template code, and nowhere else."""
    step = _current
    if step is None or not step.fired:
        return
    if frame is not None and frame.f_code in _GUARD_CODE:
        return  # between steps, in the guard itself: the watchdog fires again shortly
    raise StallInterrupt(f"blocked the event loop for more than {step.limit:g}s")


def _watch(main_ident: int) -> None:
    """The watchdog thread: interrupt the main thread's step once it is past its limit."""
    while True:
        step = _current
        if step is None:
            time.sleep(_POLL)
            continue
        late = time.monotonic() - (step.started + step.limit)
        if late < 0:
            time.sleep(min(-late, _POLL))
            continue
        if step is _current and _handler_installed:
            step.fired = True
            with contextlib.suppress(OSError, ValueError):  # the main thread is gone
                signal.pthread_kill(main_ident, _SIGNAL)
        time.sleep(REFIRE)


def _install() -> None:
    """Install the signal handler and start the watchdog (main thread, first step only)."""
    global _watchdog_started, _handler_installed
    if _watchdog_started:
        return
    _watchdog_started = True
    try:
        if signal.getsignal(_SIGNAL) in (signal.SIG_DFL, None):
            signal.signal(_SIGNAL, _on_signal)
            _handler_installed = True
    except (ValueError, OSError):  # not the main thread of the main interpreter
        _handler_installed = False
    main = threading.main_thread().ident
    assert main is not None
    threading.Thread(target=_watch, args=(main,), name="hud-stall-watchdog", daemon=True).start()


def _reset_after_fork() -> None:
    global _watchdog_started, _current
    _watchdog_started = False  # the thread did not survive the fork; start it anew
    _current = None


os.register_at_fork(after_in_child=_reset_after_fork)


def _begin(limit: float) -> _Step:
    """Start a step; registered for the watchdog on the main thread, else only measured."""
    global _current
    step = _Step(limit)
    if threading.current_thread() is threading.main_thread():
        _install()
        _current = step
    return step


def _end(step: _Step) -> None:
    global _current
    step.seconds = time.monotonic() - step.started
    if _current is step:
        _current = None


def _drive(awaitable: Awaitable[T], limit: float) -> Generator[Any, Any, T]:
    """Run `awaitable` step by step, each step under the guard (see the module doc)."""
    coro = awaitable.__await__()
    send_value: Any = None
    throw: BaseException | None = None
    over: _Step | None = None
    while True:
        step = _begin(limit)
        try:
            if throw is None:
                yielded = coro.send(send_value)
            else:
                yielded = coro.throw(throw)
        except StopIteration as stop:
            _end(step)
            over = step if step.over else over
            if over is not None:
                raise Stalled(limit, over.seconds) from None
            result: T = stop.value  # what the awaitable returned
            return result
        except StallInterrupt:
            _end(step)
            raise Stalled(limit, step.seconds) from None
        except BaseException:
            _end(step)
            over = step if step.over else over
            if over is not None:
                raise Stalled(limit, over.seconds) from None
            raise
        _end(step)
        if step.over:
            over = step  # ran long but went on (it swallowed the interrupt): fail at the end
        try:
            send_value, throw = (yield yielded), None
        except BaseException as exc:  # noqa: BLE001 - cancellation, timeouts: pass them down
            send_value, throw = None, exc


class _Guarded(Generic[T]):
    __slots__ = ("_awaitable", "_limit")

    def __init__(self, awaitable: Awaitable[T], limit: float) -> None:
        self._awaitable = awaitable
        self._limit = limit

    def __await__(self) -> Generator[Any, Any, T]:
        return _drive(self._awaitable, self._limit)


def guarded(awaitable: Awaitable[T], limit: float) -> Awaitable[T]:
    """`awaitable`, run so that no synchronous step of it may last longer than `limit`.

    Raises:
        Stalled: a step ran longer than `limit` seconds (interrupted, or finished late).
    """
    return _Guarded(awaitable, limit)


# the guard's own frames: the handler never raises there (the step is not template code)
_GUARD_CODE = frozenset({_drive.__code__, _begin.__code__, _end.__code__, _install.__code__})
