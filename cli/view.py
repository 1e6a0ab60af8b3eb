"""`hud view`: browse the trace store in a local web viewer, or export it as static pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hud.errors import ConfigError

if TYPE_CHECKING:
    from hud.view.store import Store

DEFAULT_PORT = 7788


@click.command("view")
@click.argument("directory", metavar="[DIR]", required=False,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", default=DEFAULT_PORT, show_default=True,
              type=click.IntRange(0, 65535), help="Port to serve on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but the loopback lets whoever reaches "
                   "the port read every trace in DIR.")
@click.option("--export", "export_to", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Write the pages as static files to this folder (they open from "
                   "file://, e.g. on an air-gapped machine) instead of serving.")
def view(directory: Path | None, port: int, host: str, export_to: Path | None) -> None:
    """Browse jobs, runs (with screenshots) and comparisons in a local web viewer.

    DIR is the runs folder [default: $HUD_RUNS_DIR, else .hud/runs]. The URL is printed
    on stdout; Ctrl-C stops the viewer. Pages of a running job update as runs land."""
    from hud.eval.traces import store_root
    from hud.view.render import MISSING_JINJA

    try:
        import jinja2  # noqa: F401 - the `view` extra: say how to install it, up front
    except ImportError:
        raise ConfigError(MISSING_JINJA) from None
    from hud.view.store import Store

    root = directory or store_root()
    if not root.is_dir():
        raise ConfigError(f"no runs folder {root}: `hud eval` writes its jobs there; "
                          f"pass the folder as DIR")
    store = Store(root)
    if export_to is not None:
        from hud.view.export import export

        done = export(store, export_to)
        click.echo(f"exported {done.pages} pages and {done.screenshots} screenshots of "
                   f"{store.root} to {done.folder}; open {done.folder / 'index.html'}")
        return
    _serve(store, host, port)


def _serve(store: Store, host: str, port: int) -> None:
    from hud.view import beacon
    from hud.view.app import bind, is_loopback, run_server, url_of

    try:
        sock = bind(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                          f"--port 0 picks a free port") from None
    url = url_of(sock, host)

    def ready() -> None:
        if not is_loopback(host):
            click.echo(f"warning: listening on {host}: whoever reaches port "
                       f"{sock.getsockname()[1]} can read every trace in {store.root}",
                       err=True)
        beacon.announce(store.root, url)
        click.echo(f"hud view: {url}  (serving {store.root}; Ctrl-C stops)")

    try:
        run_server(store, sock, host, ready)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a viewer is meant to stop: exit 0, no "Aborted!"
    finally:
        beacon.withdraw(store.root)
        sock.close()
