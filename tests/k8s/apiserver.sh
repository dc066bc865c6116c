#!/usr/bin/env bash
# Stop or start the API server alone, on the same port, etcd and credentials (the kubeconfig
# stays valid): for tests of "API server down in the middle of a command".
#   tests/k8s/apiserver.sh stop    # SIGTERM (SIGKILL fallback)
#   tests/k8s/apiserver.sh kill    # SIGKILL at once
#   tests/k8s/apiserver.sh start   # start again and wait for /readyz
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
LOG_TAG=apiserver

[ -e "$CAPSA_K8S_DIR/$MARKER" ] || die "no control plane in $CAPSA_K8S_DIR (run up.sh first)"
case "${1:-}" in
    stop) stop_proc kube-apiserver 15 ;;
    kill) stop_proc kube-apiserver 0 ;;
    start)
        if alive kube-apiserver; then
            log "already running"
        else
            start_apiserver
            wait_readyz "${CAPSA_K8S_TIMEOUT:-180}"
            log "kube-apiserver ready again"
        fi
        ;;
    *) die "usage: $0 stop|kill|start" ;;
esac
