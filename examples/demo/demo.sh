#!/usr/bin/env bash
# The capsa tour: a fresh temporary store, capsules, bumps, sequences, publishes, and then
# each later part of the tour (archive, stagings) from the numbered scripts beside this one.
# Usage: demo.sh PATH/TO/capsa
set -euo pipefail
CAPSA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/capsa-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export STORE="$WORK/show" CAPSA WORK
export CAPSA_STORE="$STORE"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ capsa %s\n' "$*"; "$CAPSA" "$@"; }
export -f step run

for part in "$HERE"/[0-9][0-9]-*.sh; do
  # shellcheck source=/dev/null
  source "$part"
done
step "Tour finished (the temporary store is removed)"
