#!/bin/sh
# hud entrypoint: run each executable hook in /etc/hud/entrypoint.d (in name order; later
# layers add theirs, e.g. 20-display), then exec the command (default: `hud serve`).
# A hook that fails stops the container: a half-set-up environment must not serve tasks.
# Hooks read /dev/null and write to stderr: under `docker run -i` with HUD_CONNECT=stdio,
# stdin and stdout are the host's connection to the daemon (hud.serve.attached), which a
# hook must neither read from nor write into.
set -eu
for hook in /etc/hud/entrypoint.d/*; do
  [ -e "$hook" ] || continue
  case "$hook" in
    *.sh) if [ -x "$hook" ]; then "$hook" </dev/null >&2; else . "$hook" </dev/null >&2; fi ;;
    *) if [ -x "$hook" ]; then "$hook" </dev/null >&2; fi ;;
  esac
done
exec "$@"
