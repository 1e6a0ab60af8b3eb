#!/bin/bash
# hud's staged pip install (/opt/hud/bin/pip-staged in every hud layer): multi-stage
# builds that leave no wheel in any image layer (the classic builder has no RUN --mount).
#
#   pip-staged install STAGE PIP-ARGS...
#       In a throwaway build stage (the one that holds the wheels): `pip install PIP-ARGS`
#       into /opt/hud/venv, then copy every entry the install added or changed to STAGE
#       under its own absolute path, and list the paths it removed (an upgrade or a
#       downgrade of a package the venv already had) in STAGE/opt/hud/.pip-removed.
#   pip-staged prune
#       In the final stage, after `COPY --from=THAT-STAGE STAGE/ /`: delete the paths
#       listed in /opt/hud/.pip-removed, then the list.
#
# The final stage copies STAGE only: the installed files, never the wheels they came from,
# and never a second copy of the packages the venv already had.
set -euo pipefail

venv=/opt/hud/venv
removed_list=/opt/hud/.pip-removed

usage() {
  echo "usage: pip-staged install STAGE PIP-ARGS... | pip-staged prune" >&2
  exit 2
}

# One line per entry of the venv: path, type, mode, mtime, size, tab-separated (file
# names may hold spaces, e.g. setuptools' "script (dev).tmpl"; none a tab or a newline).
listing() {
  find "$venv" -printf '%p\t%y\t%m\t%T@\t%s\n' | LC_ALL=C sort
}

install_staged() {
  local stage=$1 before after
  shift
  [ "$#" -gt 0 ] || usage
  before=$(mktemp)
  after=$(mktemp)
  listing >"$before"
  "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check "$@"
  listing >"$after"
  mkdir -p "$stage"
  # New or rewritten entries: lines only in the after listing (a new path, mode, mtime or
  # size), each archived on its own (a directory without its old contents).
  LC_ALL=C comm -13 "$before" "$after" | cut -f1 | sed 's|^/||' \
    | tar -C / --no-recursion --verbatim-files-from -T - -cf - | tar -C "$stage" -xpf -
  # Removed files: paths in the before listing that are gone after.
  local gone
  gone=$(LC_ALL=C comm -23 <(cut -f1 "$before") <(cut -f1 "$after"))
  if [ -n "$gone" ]; then
    mkdir -p "$stage${removed_list%/*}"
    printf '%s\n' "$gone" >"$stage$removed_list"
  fi
  rm -f "$before" "$after"
}

prune() {
  if [ -f "$removed_list" ]; then
    xargs -r -d '\n' rm -rf -- <"$removed_list"
    rm -f "$removed_list"
  fi
}

case "${1:-}" in
  install) [ "$#" -ge 2 ] || usage; shift; install_staged "$@" ;;
  prune) prune ;;
  *) usage ;;
esac
