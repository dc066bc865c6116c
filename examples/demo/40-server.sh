# The server tour, sourced by the main demo script with $CAPSA, $STORE and $WORK set:
# `capsa serve` on a free loopback port with a token made for it, the API through curl, an
# event arriving on the live stream, and a stop by SIGTERM.

server_step() {
    echo
    echo "== server: $*"
}

SERVE_PID="" CURL_PID=""
trap 'kill $SERVE_PID $CURL_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

server_step "a token for the tour (printed once; only its argon2 hash is kept)"
echo '$ capsa serve token add tour --role operate'
TOKEN=$("$CAPSA" --store "$STORE" serve token add tour --role operate)
echo "capsa_…  (kept in \$TOKEN)"
run serve token list

server_step "start capsa serve on a free loopback port"
echo '$ capsa serve --listen 127.0.0.1:0 --backend mock &'
"$CAPSA" --store "$STORE" serve --listen 127.0.0.1:0 --backend mock \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
for _ in $(seq 200); do
    grep -q '^listening on ' "$WORK/serve.out" 2>/dev/null && break
    sleep 0.05
done
URL=$(sed -n 's/^listening on //p' "$WORK/serve.out")
echo "listening on $URL"

# curl with the token; prints the URL it calls (the last argument), never the body.
api() {
    printf '$ curl %s\n' "${!#}"
    curl -sS -H "Authorization: Bearer $TOKEN" "$@"
    echo
}

server_step "follow the events of staging 'api' (Server-Sent Events) in the background"
echo "\$ curl -N $URL/v1/events?staging=api &"
curl -sN -H "Authorization: Bearer $TOKEN" "$URL/v1/events?staging=api" >"$WORK/events.txt" &
CURL_PID=$!
# The stream's first line (": capsa events after SEQ") says it is live.
for _ in $(seq 200); do
    [ -s "$WORK/events.txt" ] && break
    sleep 0.05
done

server_step "create staging 'api' over HTTP, with a private override, and wait for it"
echo "(POST {\"name\": \"api\", \"tag\": \"2.0.0\", \"overrides\": [{\"key\": \"API_KEY\", \"value\": …, \"private\": true}]})"
api -H 'content-type: application/json' \
    -d '{"name": "api", "tag": "2.0.0", "overrides": [{"key": "API_KEY", "value": "hunter2", "private": true}]}' \
    "$URL/v1/stagings?wait=true"

server_step "the show's capsules and the audit log of 'api'"
api "$URL/v1/capsules"
api "$URL/v1/stagings/api/audit"

server_step "the events that arrived on the stream"
sleep 0.5
kill "$CURL_PID" 2>/dev/null || true
wait "$CURL_PID" 2>/dev/null || true
CURL_PID=""
grep -E '^(id|event|data):' "$WORK/events.txt"

server_step "no token: refused with a problem document (401 UNAUTHENTICATED)"
echo "\$ curl $URL/v1/stagings"
curl -sS "$URL/v1/stagings"
echo

server_step "stop the server: SIGTERM lets the requests in flight finish"
kill -TERM "$SERVE_PID"
wait "$SERVE_PID"
SERVE_PID=""
cat "$WORK/serve.err"

unset -f server_step api
