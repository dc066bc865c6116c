#!/usr/bin/env bash
# shellcheck disable=SC2317  # (trap handlers only look unreachable)
# Run CMD with a test control plane: up.sh, export KUBECONFIG (and the rest of
# $CAPSA_K8S_DIR/env), run CMD, and always down.sh afterwards (on exit, Ctrl-C or SIGTERM).
# Exits with CMD's exit code (or up.sh's if the control plane does not come up).
#   tests/k8s/with-control-plane.sh cargo test -p capsa --features kubernetes
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

cleanup_done=0
cleanup() {
    [ "$cleanup_done" = 1 ] && return
    cleanup_done=1
    "$HERE/down.sh" || echo "[k8s/with-control-plane] WARNING: down.sh failed" >&2
}
child=""
on_signal() {
    local sig=$1
    echo "[k8s/with-control-plane] got SIG$sig; stopping" >&2
    # CMD runs as an async child, which starts with SIGINT ignored: forward INT as TERM.
    local fwd=$sig
    [ "$sig" = INT ] && fwd=TERM
    [ -n "$child" ] && kill -"$fwd" "$child" 2>/dev/null
    [ -n "$child" ] && wait "$child" 2>/dev/null
    cleanup
    trap - "$sig"
    case $sig in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

"$HERE/up.sh" || exit $?

# shellcheck disable=SC1091
. "${CAPSA_K8S_DIR:-/tmp/capsa-k8s}/env"

# Run CMD as a child we can wait on, so a signal reaches this script's trap promptly.
# (<&0: keep CMD's stdin; an async command would otherwise get /dev/null.)
"$@" <&0 &
child=$!
wait "$child"
rc=$?
child=""
exit "$rc"
