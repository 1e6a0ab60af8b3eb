"""The fast path: the per-exec commands with plain arguments, run without importing click.

Importing click costs ~20 ms in a hud image, more than the rest of `docker exec C hud
task start X` does once Python is up, and `hud serve` pays it before the daemon can
answer. So `dispatch` reads argv first, and when it is one of

    hud task start NAME [--args JSON] [--arg K=V]... [--json]     + connection options
    hud task grade [NAME] (--answer TEXT | --answer-file PATH) [--session ID] [--json]
    hud task cancel [NAME] [--session ID]
    hud task list [--json]
    hud manifest
    hud health
    hud serve [MODULE] [--socket PATH] [--log-file PATH] [-v | --verbose]
    hud connect [--mux | --tunnel NAME] [--wait SECONDS]                 + connection options

(connection options: --socket PATH (or HUD_SOCKET), --url URL, --token-file PATH), with
values click would accept, it runs the command through the code the click command runs
(hud.cli.calls, hud.cli.serving) and exits. Anything else returns untouched, before any
side effect, and click handles it: --help, an option not listed (--image, --module,
--tcp, --token, ...), a missing or extra argument, --args that is not a JSON object, a
path click would refuse, shell completion, a console stream click would re-wrap.

Parsing follows click's rules for these commands: options and arguments in any order,
`--opt VALUE` or `--opt=VALUE`, a value taken as is even when it starts with `-`, the
last of a repeated option winning (--arg accumulates), `--` ending the options. Output,
exit codes and error messages are the click command's: a HudError is `error: ...` on
stderr and exit 1 (hud.cli.plain.report), Ctrl-C prints `Aborted!` and exits 1, a closed
stdout pipe exits 1 quietly.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hud.cli import plain

FLAG, VALUE, MANY = "flag", "value", "many"
#: option -> (destination, kind)
Options = dict[str, tuple[str, str]]

CONNECTION: Options = {"--socket": ("socket_path", VALUE), "--url": ("url", VALUE),
                       "--token-file": ("token_file", VALUE)}
#: command words -> (options, fewest arguments, most arguments)
COMMANDS: dict[tuple[str, ...], tuple[Options, int, int]] = {
    ("task", "start"): ({"--args": ("args_json", VALUE), "--arg": ("pairs", MANY),
                         "--json": ("as_json", FLAG), **CONNECTION}, 1, 1),
    ("task", "grade"): ({"--answer": ("answer", VALUE), "--answer-file": ("answer_file", VALUE),
                         "--session": ("session_id", VALUE), "--json": ("as_json", FLAG),
                         **CONNECTION}, 0, 1),
    ("task", "cancel"): ({"--session": ("session_id", VALUE), **CONNECTION}, 0, 1),
    ("task", "list"): ({"--json": ("as_json", FLAG), **CONNECTION}, 0, 0),
    ("manifest",): (dict(CONNECTION), 0, 0),
    ("health",): (dict(CONNECTION), 0, 0),
    ("connect",): ({"--tunnel": ("tunnel_name", VALUE), "--wait": ("wait", VALUE),
                    "--mux": ("mux", FLAG), **CONNECTION}, 0, 0),
    ("serve",): ({"--socket": ("socket_path", VALUE), "--log-file": ("log_file", VALUE),
                  "-v": ("verbose", FLAG), "--verbose": ("verbose", FLAG)}, 0, 1),
}


def parse(words: list[str], options: Options) -> tuple[dict[str, Any], list[str]] | None:
    """The options and arguments in `words` by click's rules, or None when a word is not
    one of `options` (or an option lacks its value, or a flag is given one)."""
    values: dict[str, Any] = {}
    args: list[str] = []
    rest = iter(words)
    for word in rest:
        if word == "--":
            args.extend(rest)
            break
        if word[:1] != "-" or word == "-":
            args.append(word)
            continue
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if name not in options:
            return None
        dest, kind = options[name]
        if kind == FLAG:
            if eq:
                return None
            values[dest] = True
            continue
        value = inline if eq else next(rest, None)
        if value is None:
            return None
        if kind == MANY:
            values.setdefault(dest, []).append(value)
        else:
            values[dest] = value
    return values, args


def path_ok(value: str, exists: bool = False) -> bool:
    """Whether click.Path(dir_okay=False, exists=exists) takes `value` as it is: missing
    (unless `exists`), or there, not a directory and readable."""
    try:
        mode = os.stat(value).st_mode
    except OSError:
        return not exists
    except ValueError:  # a NUL in the path: click's own error
        return False
    return not stat.S_ISDIR(mode) and os.access(value, os.R_OK)


def _connection(values: dict[str, Any]) -> dict[str, Any] | None:
    """socket_path, url and token as the click options produce them, or None when click
    would refuse one; prints the token file's warning, as click's callback does."""
    socket_path = values.get("socket_path")
    if socket_path is None:
        socket_path = os.environ.get("HUD_SOCKET") or None
    if socket_path is not None and not path_ok(socket_path):
        return None
    token = None
    token_file = values.get("token_file")
    if token_file is not None:
        if not path_ok(token_file):
            return None
        try:
            token, warning = plain.token_from_file(token_file)
        except plain.TokenFileError:
            return None
        if warning:
            plain.echo(warning, err=True)
    return {"socket_path": socket_path, "url": values.get("url"), "token": token}


def _serve(module: str | None, values: dict[str, Any]) -> Callable[[], None] | None:
    socket_path = values.get("socket_path") or os.environ.get("HUD_SOCKET") or None
    log_file = values.get("log_file")
    if any(path is not None and not path_ok(path) for path in (socket_path, log_file)):
        return None
    from hud.cli import serving

    verbose = values.get("verbose", False)
    return lambda: serving.run(module, socket_path, log_file=log_file, verbose=verbose)


def _connect(values: dict[str, Any]) -> Callable[[], None] | None:
    """`hud connect`: a --wait click's FloatRange(min=0) takes, --mux without --tunnel."""
    try:
        wait = float(values.get("wait", 0.0))
    except ValueError:
        return None
    if not wait >= 0 or (values.get("mux") and values.get("tunnel_name")):
        return None
    conn = _connection(values)
    if conn is None:
        return None
    from hud.cli.bridge import bridge

    return lambda: bridge(values.get("tunnel_name"), wait, bool(values.get("mux")), **conn)


def _command(words: tuple[str, ...], values: dict[str, Any],
             args: list[str]) -> Callable[[], None] | None:
    """The command to run, its arguments bound, or None for click. Checks everything
    click would check first; the token file's warning is the only output before."""
    name = args[0] if args else None
    if words == ("serve",):
        return _serve(name, values)
    if words == ("connect",):
        return _connect(values)
    from hud.cli import calls

    task_args: dict[str, Any] = {}
    answer, answer_file = values.get("answer"), values.get("answer_file")
    if words == ("task", "start"):
        try:
            task_args = calls.parse_args(values.get("args_json"), values.get("pairs", []))
        except calls.BadArgs:
            return None
    elif words == ("task", "grade") and ((answer is None) == (answer_file is None) or (
            answer_file is not None and not path_ok(answer_file, exists=True))):
        return None
    conn = _connection(values)
    if conn is None:
        return None
    as_json = values.get("as_json", False)
    session_id = values.get("session_id")
    commands: dict[tuple[str, ...], Callable[[], None]] = {
        ("task", "start"): lambda: calls.start(args[0], task_args, as_json, **conn),
        ("task", "grade"): lambda: calls.grade(name, answer, answer_file, session_id,
                                               as_json, **conn),
        ("task", "cancel"): lambda: calls.cancel(name, session_id, **conn),
        ("task", "list"): lambda: calls.list_tasks(as_json, **conn),
        ("manifest",): lambda: calls.manifest(**conn),
        ("health",): lambda: calls.health(**conn),
    }
    return commands[words]


class _QuietFlush:
    """A stream whose flush ignores a closed pipe (what click does after EPIPE, so the
    interpreter's final flush does not print a second error)."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.wrapped.flush()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)


def _run(command: Callable[[], None]) -> NoReturn:
    """Run `command` as click's standalone mode and the `hud` group would, then exit."""
    from hud.errors import HudError

    try:
        command()
    except HudError as exc:
        plain.report(exc)
    except (EOFError, KeyboardInterrupt):
        plain.echo(None, err=True)
        plain.echo("Aborted!", err=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.stdout = _QuietFlush(sys.stdout)
        sys.stderr = _QuietFlush(sys.stderr)
        sys.exit(1)
    sys.exit(0)


def dispatch(argv: list[str]) -> None:
    """Run `hud ARGV` here and exit when it is a fast-path command (see the module
    docstring); return, having done nothing, when click must handle it."""
    for size in (1, 2):
        spec = COMMANDS.get(tuple(argv[:size]))
        if spec is not None:
            break
    else:
        return
    if "_HUD_COMPLETE" in os.environ or not plain.streams_ok():
        return
    options, fewest, most = spec
    parsed = parse(argv[size:], options)
    if parsed is None or not fewest <= len(parsed[1]) <= most:
        return
    command = _command(tuple(argv[:size]), *parsed)
    if command is not None:
        _run(command)
