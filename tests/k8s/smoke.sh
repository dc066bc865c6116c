#!/usr/bin/env bash
# Smoke check of the test control plane, with curl and the admin token only.
#   tests/k8s/smoke.sh            # starts and stops its own control plane (with-control-plane.sh)
#   tests/k8s/smoke.sh --running  # uses the one already up (. $CAPSA_K8S_DIR/env)
# Exits non-zero on the first failure. Ends with the line "N passed, 0 failed".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${1:-}" != --running ]; then
    exec "$HERE/with-control-plane.sh" "$HERE/smoke.sh" --running
fi
# shellcheck disable=SC1091
. "${CAPSA_K8S_DIR:-/tmp/capsa-k8s}/env"
: "${CAPSA_K8S_SERVER:?}" "${CAPSA_K8S_TOKEN:?}" "${CAPSA_K8S_CA:?}"

PASSED=0
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

ok() { PASSED=$((PASSED + 1)); printf 'ok %d - %s\n' "$PASSED" "$*"; }
fail() { printf 'not ok - %s\n' "$*" >&2; printf '%d passed, 1 failed\n' "$PASSED"; exit 1; }

# req EXPECTED_CODES METHOD PATH [CONTENT_TYPE BODY]: request; fails unless the HTTP status is
# one of EXPECTED_CODES (comma separated). The body of the answer is in $TMP/out.
req() {
    local expect=$1 method=$2 path=$3 ctype=${4:-} body=${5:-} code
    local args=(-sS --max-time 30 --cacert "$CAPSA_K8S_CA" -H "Authorization: Bearer $CAPSA_K8S_TOKEN"
        -H "Accept: application/json" -X "$method" -o "$TMP/out" -w '%{http_code}')
    if [ -n "$ctype" ]; then
        args+=(-H "Content-Type: $ctype" --data-binary "$body")
    fi
    code=$(curl "${args[@]}" "$CAPSA_K8S_SERVER$path") || fail "$method $path: curl failed"
    case ",$expect," in
        *",$code,"*) ;;
        *) fail "$method $path: HTTP $code, expected $expect: $(head -c 600 "$TMP/out")" ;;
    esac
}

# jq-lite: py EXPR evaluates a Python expression over the last answer `o`, prints it.
py() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$TMP/out" "$1"; }
expect_eq() { # expect_eq EXPR VALUE WHAT
    local got
    got=$(py "$1") || fail "$3: cannot evaluate $1"
    [ "$got" = "$2" ] || fail "$3: $1 = '$got', expected '$2'"
}

NS="capsa-smoke-$$"
API=/api/v1/namespaces/$NS
APPS=/apis/apps/v1/namespaces/$NS

# 0. Reachable, authenticated, verified TLS.
req 200 GET /version
ok "GET /version: $(py 'o["gitVersion"]')"
req 200 GET /apis/apps/v1
ok "apps/v1 served"

# 1. Namespace.
req 201 POST /api/v1/namespaces application/json \
    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\",\"labels\":{\"app.kubernetes.io/managed-by\":\"capsa\"}}}"
expect_eq 'o["metadata"]["name"]' "$NS" "create namespace"
ok "namespace $NS created"

# 2. ConfigMap.
req 201 POST "$API/configmaps" application/json \
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"color":"blue"}}'
req 200 GET "$API/configmaps/settings"
expect_eq 'o["data"]["color"]' blue "read configmap"
ok "configmap created and read back"

# 3. Deployment (apps/v1).
DEPLOY='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},
 "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
  "template":{"metadata":{"labels":{"app":"web"}},
   "spec":{"containers":[{"name":"web","image":"example.invalid/web:1.0.0",
     "envFrom":[{"configMapRef":{"name":"settings"}}]}]}}}}'
req 201 POST "$APPS/deployments" application/json "$DEPLOY"
expect_eq 'o["metadata"]["generation"]' 1 "create deployment"
req 200 GET "$APPS/deployments/web"
expect_eq 'o.get("status", {}).get("readyReplicas")' None "fresh deployment status"
ok "deployment created; no controller has touched its status"

# 4. Play the controller: patch /status.
STATUS='{"status":{"observedGeneration":1,"replicas":2,"updatedReplicas":2,"readyReplicas":2,"availableReplicas":2,
 "conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable","message":"smoke"},
               {"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable","message":"smoke"}]}}'
req 200 PATCH "$APPS/deployments/web/status" application/merge-patch+json "$STATUS"
req 200 GET "$APPS/deployments/web"
expect_eq 'o["status"]["readyReplicas"]' 2 "status readyReplicas"
expect_eq 'o["status"]["availableReplicas"]' 2 "status availableReplicas"
expect_eq 'o["status"]["observedGeneration"]' 1 "status observedGeneration"
expect_eq '[c["status"] for c in o["status"]["conditions"] if c["type"]=="Available"][0]' True "Available condition"
expect_eq 'o["spec"]["replicas"]' 2 "spec untouched by /status patch"
ok "deployment /status patched and read back (readyReplicas=2, Available=True)"

# A spec change bumps generation; the status stays (observedGeneration now behind).
req 200 PATCH "$APPS/deployments/web" application/strategic-merge-patch+json \
    '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"example.invalid/web:1.1.0"}]}}}}'
expect_eq 'o["metadata"]["generation"]' 2 "generation after spec change"
expect_eq 'o["status"]["observedGeneration"]' 1 "observedGeneration after spec change"
ok "spec patch bumps generation to 2, status observedGeneration stays 1"

# 5. Server-side apply a ConfigMap (field manager capsa), create then update.
APPLY='apiVersion: v1
kind: ConfigMap
metadata:
  name: applied
  labels:
    app.kubernetes.io/managed-by: capsa
data:
  tag: "1.0.0"
'
req 201,200 PATCH "$API/configmaps/applied?fieldManager=capsa&force=true" application/apply-patch+yaml "$APPLY"
expect_eq 'o["data"]["tag"]' 1.0.0 "server-side apply (create)"
expect_eq '[m["operation"] for m in o["metadata"]["managedFields"] if m["manager"]=="capsa"][0]' Apply "managedFields"
req 200 PATCH "$API/configmaps/applied?fieldManager=capsa&force=true" application/apply-patch+yaml "${APPLY//1.0.0/1.1.0}"
expect_eq 'o["data"]["tag"]' 1.1.0 "server-side apply (update)"
req 200 GET "$API/configmaps/applied"
expect_eq 'o["metadata"]["labels"]["app.kubernetes.io/managed-by"]' capsa "applied label"
ok "server-side apply (fieldManager=capsa) created then updated configmap 'applied'"

# A second manager applying the same field without force conflicts (409).
req 409 PATCH "$API/configmaps/applied?fieldManager=other" application/apply-patch+yaml "${APPLY//1.0.0/9.9.9}"
ok "apply by another manager without force conflicts (409)"

# 6. Delete the namespace. With no kube-controller-manager, nothing empties it or removes its
#    'kubernetes' finalizer: it stays Terminating. Play the namespace controller: delete the
#    contents, then clear spec.finalizers through the /finalize subresource.
req 200,202 DELETE "/api/v1/namespaces/$NS"
req 200 GET "/api/v1/namespaces/$NS"
expect_eq 'o["status"]["phase"]' Terminating "namespace phase after delete"
ok "namespace deleted: Terminating (no namespace controller runs)"
req 200 DELETE "$APPS/deployments/web?propagationPolicy=Background"
req 200 DELETE "$API/configmaps"
req 200 PUT "/api/v1/namespaces/$NS/finalize" application/json \
    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$NS\"},\"spec\":{\"finalizers\":[]}}"
for _ in $(seq 1 50); do
    code=$(curl -sS --max-time 10 --cacert "$CAPSA_K8S_CA" -H "Authorization: Bearer $CAPSA_K8S_TOKEN" \
        -o /dev/null -w '%{http_code}' "$CAPSA_K8S_SERVER/api/v1/namespaces/$NS")
    [ "$code" = 404 ] && break
    sleep 0.2
done
[ "$code" = 404 ] || fail "namespace $NS still there after finalize (HTTP $code)"
ok "namespace $NS gone after finalize"

# 7. No token: rejected.
code=$(curl -sS --max-time 10 --cacert "$CAPSA_K8S_CA" -o /dev/null -w '%{http_code}' "$CAPSA_K8S_SERVER/api/v1/namespaces")
[ "$code" = 401 ] || [ "$code" = 403 ] || fail "anonymous list of namespaces answered $code"
ok "anonymous request refused ($code)"

printf '%d passed, 0 failed\n' "$PASSED"
