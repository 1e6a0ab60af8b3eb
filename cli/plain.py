"""The CLI's click-free plumbing: printing, errors, reading a token file.

The per-exec commands (`hud task start`, `hud serve`, ...) run without click when their
arguments are plain (hud.cli.fast), and as click commands otherwise; both print through
`echo` and end in `fail`/`report`, so they say the same thing either way.

`echo` is `click.echo` whenever click is loaded (inside a click command nothing changes);
without click it takes click's steps for text on the console streams the fast path
accepts (`streams_ok`): `None` prints an empty line, other objects print as `str()`, a
newline is added, ANSI escape sequences are removed when the stream is not a terminal,
and the stream is flushed.
"""

from __future__ import annotations

import codecs
import os
import stat
import sys
from typing import IO, Any, NoReturn

from hud.errors import HudError, RemoteError

#: click's pattern for an ANSI escape sequence (click._compat._ansi_re)
ANSI_PATTERN = r"\033\[[0-?]*[ -/]*[@-~]"


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except Exception:  # noqa: BLE001 - click's own test: any failure means "not a tty"
        return False


def streams_ok() -> bool:
    """True when stdout and stderr are text streams `echo` writes as click would: present
    and not ASCII (click re-wraps an ASCII stream as UTF-8; the fast path leaves those
    to it)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if stream is None or not isinstance(encoding, str):
            return False
        try:
            if codecs.lookup(encoding).name == "ascii":
                return False
        except LookupError:
            return False
    return True


def echo(message: object = None, err: bool = False) -> None:
    """Print `message` and a newline on stdout (stderr with `err`), as `click.echo`."""
    if "click" in sys.modules or isinstance(message, (bytes, bytearray)):
        import click

        click.echo(message, err=err)
        return
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    out = "" if message is None else message if isinstance(message, str) else str(message)
    out += "\n"
    if "\033" in out and not _isatty(stream):
        import re

        out = re.sub(ANSI_PATTERN, "", out)
    stream.write(out)
    stream.flush()


#: beyond C0 controls, what a terminal acts on or hides or reorders text with: DEL, C1
#: controls (\x9b is a CSI), the Arabic letter mark, zero-width characters, bidi marks,
#: embeddings, overrides and isolates, invisible operators, the BOM (one list for
#: `printable` and `json_text`)
_HIDDEN_CODES = (*range(0x7f, 0xa0), 0x61c, *range(0x200b, 0x2010), *range(0x202a, 0x202f),
                 *range(0x2060, 0x206a), 0xfeff)
_UNSAFE = {code: f"\\u{code:04x}" for code in (*range(0x20), *_HIDDEN_CODES)}


def printable(text: str) -> str:
    """Untrusted text (a provider's error, a task slug from a job file) for one terminal
    line: every control, bidi and zero-width character shown as `\\uXXXX`."""
    return text.translate(_UNSAFE)


#: JSON text already escapes C0: the rest of the list becomes its JSON \\u escape
_JSON_HIDDEN = {code: f"\\u{code:04x}" for code in _HIDDEN_CODES}


def json_text(text: str) -> str:
    """JSON text (`json.dumps(..., ensure_ascii=False)`) with no character left raw that a
    terminal acts on: each becomes its `\\uXXXX` escape, which is the same JSON value."""
    return text.translate(_JSON_HIDDEN)


def fail(message: str, detail: str | None = None) -> NoReturn:
    """Print `error: MESSAGE` (and `detail`, e.g. a traceback) on stderr and exit 1."""
    echo(f"error: {message}", err=True)
    if detail:
        echo(detail.rstrip(), err=True)
    sys.exit(1)


def report(exc: HudError) -> NoReturn:
    """Report a HudError that ended a command: one `error: ...` line, then the traceback
    the daemon sent (RemoteError) or the error carries (EnvLoadError, TaskError); exit 1.

    `hud`'s group (hud.cli.group) and the fast path (hud.cli.fast) call this for every
    command, so none repeats it.
    """
    if isinstance(exc, RemoteError):
        detail = exc.data.get("traceback") if isinstance(exc.data, dict) else None
        fail(str(exc), detail or None)
    fail(str(exc), getattr(exc, "traceback", None) or None)


class TokenFileError(ValueError):
    """A --token-file that cannot be used; the message says why (click shows it as a bad
    parameter)."""


def token_from_file(path: str) -> tuple[str, str | None]:
    """The token in the file at `path` without surrounding whitespace, and a warning to
    print when other users can read the file (else None).

    Raises:
        TokenFileError: the file cannot be read or is empty.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            token = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read {path}: {exc}") from None
    if not token:
        raise TokenFileError(f"{path} is empty; write the token in it")
    warning = None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warning = (f"warning: token file {path} is readable by other users (mode "
                   f"{stat.S_IMODE(mode):04o}); `chmod 600 {path}`")
    return token, warning
