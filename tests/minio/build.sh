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

log() { printf '[minio/build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../go-toolchain.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../go-toolchain.sh"

go_install_cached "$dir" minio "github.com/minio/minio@$MINIO_VERSION"
