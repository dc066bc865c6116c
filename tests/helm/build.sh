#!/usr/bin/env bash
# Build (once per machine) the real `helm` from the Go module proxy (helm.sh/helm/v4), cached at
#   ${CAPSA_CACHE:-$HOME/.cache/capsa}/helm/<version>/helm
# A no-op when the binary is there; a lock serialises concurrent builders. Prints the path.
# The Kubernetes backend renders a chart directory with it (`helm template`).
#
#   tests/helm/build.sh
set -euo pipefail

HELM_VERSION="${CAPSA_HELM_VERSION:-v4.3.2}"
root="${CAPSA_CACHE:-$HOME/.cache/capsa}/helm"
dir="$root/$HELM_VERSION"

log() { printf '[helm/build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# helm v4's go.mod asks for Go 1.25 or newer.
GO_MIN_MINOR=25
GO_FETCH_VERSION=go1.25.9
# shellcheck source=../go-toolchain.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../go-toolchain.sh"

bin=$(go_install_cached "$dir" helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
"$bin" version >/dev/null || die "the built helm does not run"
echo "$bin"
