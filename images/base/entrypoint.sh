#!/bin/sh
# hud entrypoint: run each executable hook in /etc/hud/entrypoint.d (in name order; later
# layers add theirs, e.g. 20-display), then exec the command (default: `hud serve`).
# A hook that fails stops the container: a half-set-up environment must not serve tasks.
set -eu
for hook in /etc/hud/entrypoint.d/*; do
  [ -e "$hook" ] || continue
  case "$hook" in
    *.sh) if [ -x "$hook" ]; then "$hook"; else . "$hook"; fi ;;
    *) [ -x "$hook" ] && "$hook" ;;
  esac
done
exec "$@"
