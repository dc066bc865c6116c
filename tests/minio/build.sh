#!/usr/bin/env bash
# Build (once per machine) the real MinIO server from the Go module proxy, cached at
#   ${CAPSA_CACHE:-$HOME/.cache/capsa}/minio/<version>/minio
# A no-op when the binary is there; a lock serialises concurrent builders. Prints the path.
#
#   tests/minio/build.sh
set -euo pipefail

MINIO_VERSION="${CAPSA_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
root="${CAPSA_CACHE:-$HOME/.cache/capsa}/minio"
dir="$root/$MINIO_VERSION"
bin="$dir/minio"

log() { printf '[minio/build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../go-toolchain.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../go-toolchain.sh"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$root"
exec 9>"$root/.build.lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  log "another build is running; waiting for its lock"
  flock 9
fi
if [ ! -x "$bin" ]; then
  ensure_go
  log "building github.com/minio/minio@$MINIO_VERSION from the Go module proxy (several minutes the first time)"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" GOFLAGS=-mod=mod go install "github.com/minio/minio@$MINIO_VERSION" >&2
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi
echo "$bin"
