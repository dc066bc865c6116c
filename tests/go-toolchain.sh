# Sourced by the scripts that build Go programs for the tests (tests/k8s/build.sh,
# tests/minio/build.sh): `ensure_go` puts a Go >= 1.24 on PATH. The caller defines log and die.
# ---------------------------------------------------------------------------------------------
# Go toolchain: the wrapper module says `go 1.24.0`. Use the machine's Go if new enough.
# Otherwise (Debian bookworm's golang-go is 1.19, too old and without GOTOOLCHAIN support):
# fetch the official Go toolchain, which the Go module proxy serves as the ordinary module
# golang.org/toolchain, with whatever go command there is, and cache it beside the binaries.
# CAPSA_FETCH_GO=1 (or CAPSA_K8S_FETCH_GO=1) forces that path (to test it).
# ---------------------------------------------------------------------------------------------
GO_MIN_MINOR="${GO_MIN_MINOR:-24}"
GO_FETCH_VERSION="${GO_FETCH_VERSION:-go1.24.13}"
go_minor() { go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9][0-9]*\).*/\1/p'; }

fetch_go_toolchain() {
    local root="${CAPSA_CACHE:-$HOME/.cache/capsa}/go/$GO_FETCH_VERSION"
    if [ ! -x "$root/bin/go" ]; then
        local arch
        case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
        local mod="golang.org/toolchain@v0.0.1-$GO_FETCH_VERSION.linux-$arch"
        log "fetching Go toolchain $mod from the module proxy"
        local work dir
        work="$(mktemp -d)"
        dir=$(cd "$work" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "$mod" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
            || { rm -rf "$work"; die "could not download $mod"; }
        rm -rf "$work" "$root.tmp"
        mkdir -p "$(dirname "$root")"
        cp -r "$dir" "$root.tmp"
        chmod -R u+w "$root.tmp"
        # Module zips carry no file modes: make the go command and its tools executable.
        find "$root.tmp/bin" "$root.tmp/pkg/tool" -type f -exec chmod +x {} +
        rm -rf "$root"
        mv "$root.tmp" "$root"
    fi
    export PATH="$root/bin:$PATH"
    export GOTOOLCHAIN=local
    unset GOROOT
    log "using $(go env GOVERSION) ($root/bin/go)"
}

ensure_go() {
    if ! command -v go >/dev/null 2>&1; then
        log "no Go on PATH; installing Debian's golang-go (to bootstrap a newer one if needed)"
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go >&2
        command -v go >/dev/null 2>&1 || die "could not install Go"
    fi
    local minor
    minor="$(go_minor)"
    [ -n "$minor" ] || minor=$(go version | sed -n 's/.*go1\.\([0-9][0-9]*\).*/\1/p')
    if [ "${CAPSA_FETCH_GO:-${CAPSA_K8S_FETCH_GO:-0}}" != 1 ] && [ -n "$minor" ] && [ "$minor" -ge "$GO_MIN_MINOR" ]; then
        export GOTOOLCHAIN=local
        log "using $(go env GOVERSION) ($(command -v go))"
    else
        log "$(go version) is older than go1.$GO_MIN_MINOR (or CAPSA_FETCH_GO=1)"
        fetch_go_toolchain
    fi
}


# go_install_cached DIR BIN PACKAGE@VERSION: `go install` the package once per machine into
# DIR (a lock on DIR's parent serialises concurrent builders; a half-built DIR never shows),
# then print DIR/BIN. A no-op when DIR/BIN is there.
go_install_cached() {
    local dir=$1 bin=$2 pkg=$3
    if [ -x "$dir/$bin" ]; then
        echo "$dir/$bin"
        return 0
    fi
    mkdir -p "$(dirname "$dir")"
    exec 9>"$(dirname "$dir")/.build.lock"
    if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
        log "another build is running; waiting for its lock"
        flock 9
    fi
    if [ ! -x "$dir/$bin" ]; then
        ensure_go
        log "building $pkg from the Go module proxy (several minutes the first time)"
        rm -rf "$dir.tmp"
        mkdir -p "$dir.tmp"
        GOBIN="$dir.tmp" GOFLAGS=-mod=mod go install "$pkg" >&2
        [ -x "$dir.tmp/$bin" ] || die "go install $pkg made no $bin"
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
    fi
    echo "$dir/$bin"
}
