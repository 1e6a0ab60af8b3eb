"""The lines `ShellSession` types into its bash, and the end marker bash prints back.

`hud.agents.tools.session` drives one interactive bash on a terminal by typing into it;
this module writes what it types: the setup line, one line per command, a sync line, the
prompt hook that prints the end-of-command marker, and the script that kills a closed
shell's session.

Design decisions:
- **Builtins only, whatever the model did.** A command is delivered and its end reported
  by bash's own builtins: no program from $PATH (after `export PATH=/nonexistent` a
  command still runs with its own status), and no name the model can take over. A
  function or an alias may take any command name, even `builtin` or `{`, so the harness's
  lines quote every command name (`\\eval`: never an alias), use no reserved word, and
  put bash in POSIX mode (an assignment: `POSIXLY_CORRECT=y`) around their own commands:
  there special builtins (`eval`, `set`, `unset`, `exec`) are found before functions. The
  one regular builtin used, `builtin printf`, is safe because the hook removes a function
  named `builtin` at every prompt (a model that defines one has broken every script
  that calls a builtin anyway).
- **A command is one typed command line**: `printf -v __hud_c '%s\\n%b' '<restore>'
  '<the command>'; eval "$__hud_c"`. The command is single-quoted with ASCII control
  characters, DEL, `!`, `'` and `\\` written as `%b` escapes (`\\n`, `\\xHH`) and the rest
  as it is, so nothing typed means anything to the terminal (^C, ^D, erase) or to
  history expansion, and bash reads it as one plain word, fast (2 MB in a fraction of a
  second; in `$'...'` each quote would cost bash a re-quoting). The word is cut into
  pieces joined by backslash-newline between the quotes (a line continuation, which
  bash removes), so each typed line stays under the terminal's 4095-byte limit however
  long the command. A syntax error is eval's error (status 2), never a half-read
  command waiting for more input; stdin is /dev/null and stderr joins stdout.
- **Between commands bash's own stderr is /dev/null** (each command gets its stdout as
  stderr). With `set -x` or `set -v` on, the model sees its commands traced, not the
  harness's lines or the hook: the command line turns both off before its `\\eval`, and
  eval's first line (`<restore>`) sets POSIX mode, xtrace and verbose back as the model
  had them, with xtrace off until then so the restore is not traced itself. The job
  notices bash prints at its prompt ("[1]+ Done") are not shown (those it prints while
  a command runs are); `jobs` lists them.
- **The hook** (a read-only PROMPT_COMMAND, which bash runs each time it is back at its
  prompt, i.e. once per command line) prints `\\n\\n`, puts the terminal back in the
  session's mode (`stty sane -echo -onlcr`, by the absolute path found at setup: a
  command may have run `reset`, `stty echo` or a full-screen program), then prints the
  marker `__hud_<nonce>_<seq> <status> <ran>` on a terminal fd saved at setup (so `exec
  >/dev/null` cannot hide it; on stdout if a lowered `ulimit -n` forbids that
  redirection). Those newlines go out before the repair: as `\\r\\n` they tell the reader
  that the command ran with onlcr on, so the `\\r\\n`s of its output are the terminal's.
  `<ran>` is 0 when the command line ran but its eval could not (its redirections failed:
  stdout closed, no file descriptor left), empty for the setup and sync lines.
- **The nonce tells the marker from output that looks like one by chance**: it is random
  per shell and never appears whole in what is typed or traced. It is no secret from the
  commands: they run inside the bash that prints the marker, so one that sets out to
  forge a marker (reading $PROMPT_COMMAND) can end its own call early, with a status of
  its choosing; the rest of its output then goes to the next call.
- **Closing a shell kills its whole session** (`kill_session`, over a separate channel):
  with job control on, a background job has its own process group, which hanging up the
  shell's group would miss.
"""

from __future__ import annotations

import re
import shlex

PREFIX = "__hud"
#: bytes of quoted command per typed line: a terminal's canonical line holds 4095, and
#: bash's time to read a command grows with its number of lines times its length
LINE = 4000

#: what is typed as a `%b` escape: ASCII control characters, DEL, ! ' and \
_UNSAFE = re.compile(r"[\x00-\x1f\x7f!'\\]")


def _save(var: str, option: str) -> str:
    """Assignments that set `var` to "-" if the `set -o` option is on, "+" if it is off."""
    return (f"{var}=:$SHELLOPTS:; {var}=${{{var}/*:{option}:*/-}}; {var}=${{{var}/#:*/+}}; ")


#: the model's POSIX mode, xtrace and verbose, saved before the harness's lines change them
_SAVE = _save("__hud_p", "posix") + _save("__hud_x", "xtrace") + _save("__hud_v", "verbose")
#: eval's first line: the command line got this far, its copy of the command is dropped,
#: and the model's options are back
_RESTORE = '__hud_ran=1 __hud_c=; \\set "$__hud_p"o posix "$__hud_x"x "$__hud_v"v'


def command_line(seq: int, command: str) -> str:
    """The typed line that runs `command` (NUL characters dropped: bash cannot hold them;
    a lone surrogate typed as `?`)."""
    text = command.replace("\0", "").encode(errors="replace").decode()
    quoted = "\\\n".join(f"'{piece}'" for piece in _pieces(_UNSAFE.sub(_escape, text)))
    return (f"__hud_seq={seq}; __hud_ran=0; {_SAVE}POSIXLY_CORRECT=y; \\set +xv; "
            f"\\builtin printf -v __hud_c '%s\\n%b' '{_RESTORE}' \\\n{quoted}; "
            f'\\eval "$__hud_c" </dev/null 2>&1\n')


def sync_line(seq: int) -> str:
    """A typed line that does nothing but end with the marker of `seq`."""
    return f"__hud_seq={seq}\n"


def setup_line(seq: int, nonce: str, cwd: str) -> str:
    """The first typed line: quiet terminal, job control, the hook, `cd cwd`; it prints
    `__hud_pid <bash's pid>` (its session id), then ends with the marker of `seq`."""
    return ("stty sane -echo -onlcr; set -m +H +o history; PS1= PS2= PS0=; unset HISTFILE; "
            "export TERM=dumb PAGER=cat GIT_PAGER=cat; exec {__hud_tty}>&1 2>/dev/null; "
            f"__hud_stty=$(type -P stty); PROMPT_COMMAND={shlex.quote(hook(nonce))}; "
            f"readonly __hud_tty __hud_stty PROMPT_COMMAND; __hud_seq={seq}; "
            f"printf '{PREFIX}_pid %s\\n' $$; cd -- {shlex.quote(cwd)} 2>&1\n")


def hook(nonce: str) -> str:
    """The PROMPT_COMMAND: repair the terminal, print the marker, restore POSIX mode.

    The prefix and the nonce are separate words, so the marker never appears whole in
    what is typed (the setup line is echoed before `stty -echo` takes effect).
    """
    to_tty = '>&"$__hud_tty" || \\builtin printf'
    return (f"__hud_rc=$?; {_save('__hud_p', 'posix')}POSIXLY_CORRECT=y; "
            f"\\unset -f builtin; \\builtin printf '\\n\\n' {to_tty} '\\n\\n'; "
            '( \\exec "$__hud_stty" sane -echo -onlcr ) <&"$__hud_tty" || \\:; '
            f"\\builtin printf -v __hud_m '%s_%s_%s %s %s\\n' {PREFIX} {nonce} "
            '"${__hud_seq-}" "$__hud_rc" "${__hud_ran-}"; '
            f'\\builtin printf %s "$__hud_m" {to_tty} %s "$__hud_m"; '
            '__hud_ran=; \\set "$__hud_p"o posix +o emacs +o vi')


def marker(nonce: str) -> re.Pattern[str]:
    """The marker as the reader sees it: group 1 is `\\r\\n\\r` if the terminal had onlcr
    on, then seq, status and ran. The leading newlines are optional (a background job's
    output may come between them and the rest); the first ends a last line of output
    that has no newline, so the second tells onlcr apart from output ending in `\\r`."""
    return re.compile(rf"(?:(\r\n\r|\n)\n)?{PREFIX}_{nonce}_(\d*) (\d+) ([01]?)\r?\n")


def kill_session(sid: int) -> str:
    """A POSIX sh script that kills every process of session `sid` (zombies aside) until
    none is left, reading /proc: nothing but the shell's builtins."""
    return (f"s={sid}; n=0; while [ $n -lt 20 ]; do k=; "
            'for f in /proc/[0-9]*/stat; do l=; { read -r l <"$f"; } 2>/dev/null; '
            # after "pid (comm) " come: state ppid pgrp session
            'set -- ${l##*) }; [ "$4" = "$s" ] && [ "$1" != Z ] && '
            '{ p=${f%/stat}; k="$k ${p#/proc/}"; }; done; '
            '[ -n "$k" ] || exit 0; kill -9 $k 2>/dev/null; n=$((n+1)); done; exit 1')


def _escape(match: re.Match[str]) -> str:
    return "\\n" if match[0] == "\n" else f"\\x{ord(match[0]):02x}"


def _pieces(quoted: str) -> list[str]:
    """`quoted` cut into pieces of at most `LINE` bytes (UTF-8), never inside an escape
    (every backslash starts one: `\\n` or `\\xHH`)."""
    pieces, start = [], 0
    while start < len(quoted):
        end = min(start + LINE, len(quoted))
        while (size := len(quoted[start:end].encode())) > LINE:  # characters beyond ASCII
            end = start + (end - start) * LINE // size
        cut = quoted.rfind("\\", max(start, end - 3), end)
        if cut >= 0 and cut + (2 if quoted[cut + 1] == "n" else 4) > end:
            end = cut
        pieces.append(quoted[start:end])
        start = end
    return pieces
