#!/usr/bin/env bash
# Start a test control plane: etcd + kube-apiserver on free loopback ports.
#
# State goes to ${CAPSA_K8S_DIR:-/tmp/capsa-k8s}:
#   kubeconfig            kubeconfig trusting the server's self-signed cert, with the admin token
#   env                   shell exports: KUBECONFIG, CAPSA_K8S_SERVER, CAPSA_K8S_TOKEN, CAPSA_K8S_CA
#   etcd.pid, kube-apiserver.pid, etcd.log, kube-apiserver.log, pki/, etcd/ (data)
#   kube-apiserver.args   the API server's arguments (apiserver.sh stop|start restarts it alone)
#
# A previous run left behind (pid files in the state dir) is stopped first.
# Environment: CAPSA_K8S_DIR, CAPSA_CACHE, CAPSA_K8S_TIMEOUT (seconds to wait for /readyz, 180).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
LOG_TAG=up

TIMEOUT="${CAPSA_K8S_TIMEOUT:-180}"
D="$CAPSA_K8S_DIR"

for tool in curl openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done

# Binaries (instant when cached).
"$HERE/build.sh" all

# Leftovers of a previous run.
if [ -e "$D" ]; then
    log "stopping leftovers of a previous run in $D"
    "$HERE/down.sh"
fi
[ -e "$D" ] && die "$D still exists and is not ours (no $MARKER); remove it or set CAPSA_K8S_DIR"
mkdir -p "$D/pki"
touch "$D/$MARKER"
chmod 700 "$D"

# On failure, stop what was started; the state dir (logs) stays for a look, and the next
# up.sh or down.sh removes it.
on_exit() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        stop_proc kube-apiserver 5
        stop_proc etcd 5
        log "failed; logs kept in $D (down.sh removes them)"
    fi
}
trap on_exit EXIT

# Three free loopback ports: etcd client, etcd peer, API server.
read -r ETCD_PORT PEER_PORT API_PORT < <(free_ports 3)
log "ports: etcd $ETCD_PORT (peer $PEER_PORT), kube-apiserver $API_PORT"

# Credentials.
TOKEN="$(openssl rand -hex 24)"
printf '%s,admin,admin,"system:masters"\n' "$TOKEN" > "$D/tokens.csv"
openssl genrsa -out "$D/sa.key" 2048 2>/dev/null
openssl rsa -in "$D/sa.key" -pubout -out "$D/sa.pub" 2>/dev/null
chmod 600 "$D/tokens.csv" "$D/sa.key"

# etcd (envtest's flags).
start_bg etcd "$D/etcd.log" "$CAPSA_K8S_ETCD" \
    --name=capsa-test \
    --data-dir="$D/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-cluster="capsa-test=http://127.0.0.1:$PEER_PORT" \
    --unsafe-no-fsync=true \
    --log-level=warn
echo "$ETCD_PORT" > "$D/etcd.port"

start=$(date +%s)
until curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; do
    alive etcd || fail_with_log etcd "etcd exited during startup"
    [ $(( $(date +%s) - start )) -lt "$TIMEOUT" ] || fail_with_log etcd "etcd not healthy after ${TIMEOUT}s"
    sleep 0.2
done
log "etcd healthy after $(( $(date +%s) - start ))s"

# kube-apiserver (envtest's defaults + static token, lightened as kwokctl does).
cat > "$D/kube-apiserver.args" <<EOF
--etcd-servers=http://127.0.0.1:$ETCD_PORT
--bind-address=127.0.0.1
--advertise-address=127.0.0.1
--secure-port=$API_PORT
--cert-dir=$D/pki
--service-cluster-ip-range=10.0.0.0/24
--allow-privileged=true
--disable-admission-plugins=ServiceAccount
--authorization-mode=RBAC
--service-account-issuer=https://127.0.0.1:$API_PORT/
--service-account-key-file=$D/sa.pub
--service-account-signing-key-file=$D/sa.key
--token-auth-file=$D/tokens.csv
--endpoint-reconciler-type=none
--enable-priority-and-fairness=false
--profiling=false
EOF
echo "$API_PORT" > "$D/kube-apiserver.port"
start_apiserver

start=$(date +%s)
wait_readyz "$TIMEOUT"
log "kube-apiserver ready after $(( $(date +%s) - start ))s"

# kubeconfig: trust the self-signed certificate the server wrote (cert + its CA), embedded.
CA="$D/pki/apiserver.crt"
CA_DATA="$(base64 -w0 < "$CA")"
cat > "$D/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: capsa-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $CA_DATA
users:
- name: admin
  user:
    token: $TOKEN
contexts:
- name: capsa-test
  context:
    cluster: capsa-test
    user: admin
    namespace: default
current-context: capsa-test
EOF
chmod 600 "$D/kubeconfig"

cat > "$D/env" <<EOF
export KUBECONFIG='$D/kubeconfig'
export CAPSA_K8S_DIR='$D'
export CAPSA_K8S_SERVER='https://127.0.0.1:$API_PORT'
export CAPSA_K8S_TOKEN='$TOKEN'
export CAPSA_K8S_CA='$CA'
EOF

# Check the kubeconfig's trust is right: a verified request with the token.
curl -fsS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$API_PORT/version" > "$D/version.json" \
    || fail_with_log kube-apiserver "verified request to /version failed"
log "control plane up: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gitVersion"])' "$D/version.json") at https://127.0.0.1:$API_PORT"
log "KUBECONFIG=$D/kubeconfig   (or: . $D/env)"
