#!/usr/bin/env bash
# Stop the test control plane started by up.sh (SIGTERM, wait, SIGKILL fallback) and remove
# its state dir ${CAPSA_K8S_DIR:-/tmp/capsa-k8s}. Safe to run when nothing is running.
# CAPSA_K8S_KEEP=1 keeps the state dir (logs) for a post-mortem.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
LOG_TAG=down

D="$CAPSA_K8S_DIR"
if [ ! -e "$D" ]; then
    log "nothing to stop ($D does not exist)"
    exit 0
fi
if [ ! -e "$D/$MARKER" ]; then
    die "$D is not a capsa control-plane state dir (no $MARKER); not touching it"
fi

# The API server first (it needs etcd to shut down cleanly), then etcd.
stop_proc kube-apiserver 15
stop_proc etcd 10

if [ "${CAPSA_K8S_KEEP:-0}" = 1 ]; then
    log "stopped; state kept in $D (CAPSA_K8S_KEEP=1)"
else
    rm -rf "$D"
    log "stopped; removed $D"
fi
