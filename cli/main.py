"""The `hud` entry point: the per-exec commands by hand, everything else through click.

`docker exec C hud task start X` runs once per rollout step, and importing click costs
more than the rest of the command (~20 ms in a hud image), so `main` first offers argv to
hud.cli.fast: `hud task start|grade|cancel|list`, `hud manifest`, `hud health` and
`hud serve` with plain arguments run there, without click, through the very code the
click commands run (hud.cli.calls, hud.cli.serving). Anything else, `--help`, an unknown
option and every usage error included, goes to the click group (hud.cli.group), which
answers exactly as it always did.

`cli`, `COMMANDS` and `LazyGroup` are importable from here as before; they load click on
first use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from hud import lazy

if TYPE_CHECKING:  # what a type checker sees; at run time `__getattr__` imports on first use
    from hud.cli.group import COMMANDS as COMMANDS
    from hud.cli.group import LazyGroup as LazyGroup
    from hud.cli.group import cli as cli

_EXPORTS: dict[str, str] = {
    "COMMANDS": "hud.cli.group",
    "LazyGroup": "hud.cli.group",
    "cli": "hud.cli.group",
}


def main() -> None:
    """Console-script entry point."""
    from hud.cli.fast import dispatch

    dispatch(sys.argv[1:])  # exits when it ran the command; returns when click must
    from hud.cli.group import cli

    cli(prog_name="hud")


__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS, globals())

if __name__ == "__main__":  # pragma: no cover
    main()
