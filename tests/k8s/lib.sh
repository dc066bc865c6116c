# Helpers shared by up.sh, down.sh and apiserver.sh. Needs env.sh sourced first.
# shellcheck shell=bash disable=SC2034

# A state dir is only ever removed when it holds this marker (guards `rm -rf` against a
# mistaken CAPSA_K8S_DIR).
MARKER=.capsa-k8s-state
LOG_TAG=${LOG_TAG:-k8s}

log() { printf '[k8s/%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[k8s/%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

# free_ports N: prints N distinct free TCP ports on 127.0.0.1, space separated.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# start_bg NAME LOGFILE CMD...: start CMD in the background, write $CAPSA_K8S_DIR/NAME.pid.
# It stays in the caller's process group, so a CI runner killing the group kills it too.
start_bg() {
    local name=$1 logfile=$2
    shift 2
    "$@" < /dev/null >> "$logfile" 2>&1 &
    echo $! > "$CAPSA_K8S_DIR/$name.pid"
}

# pid_of NAME: the pid recorded for NAME if that process is still ours (alive and running the
# expected binary, so a recycled pid is never signalled); empty otherwise.
pid_of() {
    local name=$1 f="$CAPSA_K8S_DIR/$1.pid" pid exe
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    case "$exe" in
        */"$name" | */"$name"" (deleted)") echo "$pid" ;;
        *) [ -z "$exe" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "/$name " && echo "$pid" ;;
    esac
    return 0
}

alive() { [ -n "$(pid_of "$1")" ]; }

# stop_proc NAME [GRACE_SECONDS]: SIGTERM, wait, SIGKILL fallback; removes the pid file.
stop_proc() {
    local name=$1 grace=${2:-15} pid i
    pid=$(pid_of "$name")
    if [ -n "$pid" ]; then
        log "stopping $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name did not stop within ${grace}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$CAPSA_K8S_DIR/$name.pid"
}

# fail_with_log NAME MESSAGE: print the tail of NAME's log and exit 1.
fail_with_log() {
    local name=$1
    shift
    printf '[k8s/%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2
    printf '[k8s/%s] ---- last lines of %s ----\n' "$LOG_TAG" "$CAPSA_K8S_DIR/$name.log" >&2
    tail -n 40 "$CAPSA_K8S_DIR/$name.log" >&2 2>/dev/null || true
    printf '[k8s/%s] ----\n' "$LOG_TAG" >&2
    exit 1
}

start_apiserver() {
    local args=()
    mapfile -t args < "$CAPSA_K8S_DIR/kube-apiserver.args"
    start_bg kube-apiserver "$CAPSA_K8S_DIR/kube-apiserver.log" "$CAPSA_K8S_APISERVER" "${args[@]}"
}

# wait_readyz TIMEOUT: wait until the API server's /readyz answers "ok".
wait_readyz() {
    local timeout=$1 start port token out
    port=$(cat "$CAPSA_K8S_DIR/kube-apiserver.port")
    token=$(cut -d, -f1 "$CAPSA_K8S_DIR/tokens.csv")
    start=$(date +%s)
    while true; do
        # -k only until the server has written its self-signed certificate; then verified.
        if [ -s "$CAPSA_K8S_DIR/pki/apiserver.crt" ]; then
            out=$(curl -sS --max-time 5 --cacert "$CAPSA_K8S_DIR/pki/apiserver.crt" \
                -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz" 2>/dev/null || true)
        else
            out=""
        fi
        [ "$out" = ok ] && return 0
        alive kube-apiserver || fail_with_log kube-apiserver "kube-apiserver exited during startup"
        if [ $(( $(date +%s) - start )) -ge "$timeout" ]; then
            curl -sS --max-time 5 -k -H "Authorization: Bearer $token" \
                "https://127.0.0.1:$port/readyz?verbose" >&2 2>/dev/null || true
            fail_with_log kube-apiserver "kube-apiserver not ready after ${timeout}s"
        fi
        sleep 0.3
    done
}
