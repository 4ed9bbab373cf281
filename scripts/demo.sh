#!/usr/bin/env bash
# The main job: zero trust, end to end, on 127.0.0.1 — the walkthrough from the seed documents.
#
# Part 1 (real traffic): a built-in CA issues SPIFFE identities to productpage, details and sleep;
#   each gets a meshguard-proxy in front of a sample app. Plaintext reaches details while its
#   port is PERMISSIVE; with STRICT the plaintext connection is refused while sleep → details
#   through the mesh (mTLS, secure naming) still works.
# Part 2 (policies): Istio's YAML — RequestAuthentication with Istio's sample key set,
#   require-jwt, a DENY on a path — loaded by details' proxy (real requests), and the same request
#   explained by `meshguardctl authz check` (the same engine, offline).
# Exits non-zero if any observed result differs from the expected one.
# Usage: scripts/demo.sh [--keep-running]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
KEEP=0
[ "${1:-}" = "--keep-running" ] && KEEP=1

bash scripts/install-deps.sh
bash scripts/build.sh release >/tmp/meshguard-demo-build.log 2>&1 || {
  tail -n 40 /tmp/meshguard-demo-build.log
  echo "demo: build failed (full log: /tmp/meshguard-demo-build.log)" >&2
  exit 1
}
CTL="$ROOT/build/tools/meshguardctl"
PROXY="$ROOT/build/tools/meshguard-proxy"
APP="$ROOT/build/tools/mg-sample-app"
EX="$ROOT/examples/demo"

W="$(mktemp -d /tmp/meshguard-demo.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

FAILED=0
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show_yaml() { echo "policy applied ($1):"; sed 's/^/    /' "$1" | cut -c1-140; }
check() {  # check WHAT EXPECTED OBSERVED
  if [ "$2" = "$3" ]; then
    printf '   %-62s expected %-5s observed %-5s ok\n' "$1" "$2" "$3"
  else
    printf '   %-62s expected %-5s observed %-5s MISMATCH\n' "$1" "$2" "$3"
    FAILED=1
  fi
}
wait_port() {  # wait_port FILE REGEX → port number (bounded wait)
  local line
  for _ in $(seq 1 200); do
    line="$(grep -m1 -E "$2" "$1" 2>/dev/null || true)"
    if [ -n "$line" ]; then echo "${line##*:}"; return 0; fi
    sleep 0.05
  done
  echo "demo: timed out waiting for $2 in $1" >&2
  cat "$1" "${1%.out}.err" >&2 || true
  exit 1
}
launch() {  # launch NAME CMD...
  local name="$1"; shift
  "$@" >"$W/$name.out" 2>"$W/$name.err" &
  PIDS+=("$!")
}
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }

step "1. Identities: a built-in CA issues one X.509-SVID per workload"
"$CTL" ca init --dir "$W/ca" --trust-domain cluster.local
for wl in productpage details sleep; do
  "$CTL" cert issue --ca-dir "$W/ca" --spiffe-id "spiffe://cluster.local/ns/default/sa/$wl" --out "$W/$wl" --ttl 24h >/dev/null
  echo "   $wl: $("$CTL" cert inspect "$W/$wl/cert-chain.pem" --bundle "$W/ca/root-cert.pem" -o json |
    jq -r '"\(.spiffe_id)  expires \(.not_after)  verified=\(.verified)"')"
done

launch details-app "$APP" --listen 127.0.0.1:0
DETAILS_APP=$(wait_port "$W/details-app.out" '^listening on ')

start_details_proxy() {  # start_details_proxy MODE [POLICY_DIR]
  local policy_line=""
  [ -n "${2:-}" ] && policy_line="policyDir: $2"
  cat >"$W/details-proxy.yaml" <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
tls: {certChain: $W/details/cert-chain.pem, key: $W/details/key.pem, trustBundle: $W/details/root-cert.pem}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $DETAILS_APP, protocol: http, mtlsMode: $1}
admin: {port: 0}
accessLog: $W/details-access.log
$policy_line
YAML
  launch details-proxy "$PROXY" --config "$W/details-proxy.yaml"
  DETAILS_PROXY_PID="${PIDS[-1]}"
  DETAILS_IN=$(wait_port "$W/details-proxy.out" '^listening inbound\[0\] ')
}
stop_details_proxy() {
  kill -TERM "$DETAILS_PROXY_PID"; wait "$DETAILS_PROXY_PID" 2>/dev/null || true
  : >"$W/details-proxy.out"
}

start_details_proxy PERMISSIVE
cat >"$W/sleep-proxy.yaml" <<YAML
workload: {name: sleep, namespace: default, serviceAccount: sleep, labels: {app: sleep}}
tls: {certChain: $W/sleep/cert-chain.pem, key: $W/sleep/key.pem, trustBundle: $W/sleep/root-cert.pem}
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:__DETAILS__", protocol: http,
     identities: ["spiffe://cluster.local/ns/default/sa/details"]}
admin: {port: 0}
accessLog: $W/sleep-access.log
YAML

start_sleep_proxy() {
  sed "s/__DETAILS__/$DETAILS_IN/" "$W/sleep-proxy.yaml" >"$W/sleep-proxy.run.yaml"
  launch sleep-proxy "$PROXY" --config "$W/sleep-proxy.run.yaml"
  SLEEP_PROXY_PID="${PIDS[-1]}"
  SLEEP_OUT=$(wait_port "$W/sleep-proxy.out" '^listening outbound\[0\] ')
}
start_sleep_proxy

step "2. PERMISSIVE (the default): plaintext HTTP straight to details' inbound port"
echo "   request: curl http://127.0.0.1:$DETAILS_IN/details/1   (productpage, no mesh)"
check "plaintext → details" 200 "$(status_of "http://127.0.0.1:$DETAILS_IN/details/1")"

step "3. PeerAuthentication STRICT for app: details"
show_yaml "$EX/peer-strict.yaml"
mode=$("$CTL" authz check -f "$EX/peer-strict.yaml" --request <(echo '{"destination":{"namespace":"default","labels":{"app":"details"},"serviceAccount":"details","port":9080},"source":{"ip":"127.0.0.1"},"request":{"method":"GET","path":"/details/1","host":"details:9080"}}') | jq -r .status)
check "engine: plaintext to the STRICT port (0 = connection refused)" 0 "$mode"
stop_details_proxy; kill -TERM "$SLEEP_PROXY_PID"; wait "$SLEEP_PROXY_PID" 2>/dev/null || true
start_details_proxy STRICT; start_sleep_proxy
set +e; curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$DETAILS_IN/details/1"; rc=$?; set -e
check "plaintext → details: curl exit code (56 = connection reset)" 56 "$rc"
echo "   request: sleep → its proxy (127.0.0.1:$SLEEP_OUT) → mTLS → details' proxy → app"
check "sleep → details through the mesh (mTLS)" 200 "$(status_of "http://127.0.0.1:$SLEEP_OUT/details/1")"
xfcc=$(curl -s --max-time 5 "http://127.0.0.1:$SLEEP_OUT/headers" | jq -r '.headers["x-forwarded-client-cert"] // .["x-forwarded-client-cert"] // empty' 2>/dev/null || true)
echo "   the app sees the caller's verified identity: x-forwarded-client-cert: ${xfcc:0:160}"

step "4. Back to PERMISSIVE: plaintext works again"
show_yaml "$EX/peer-permissive.yaml"
stop_details_proxy; kill -TERM "$SLEEP_PROXY_PID"; wait "$SLEEP_PROXY_PID" 2>/dev/null || true
start_details_proxy PERMISSIVE; start_sleep_proxy
check "plaintext → details" 200 "$(status_of "http://127.0.0.1:$DETAILS_IN/details/1")"

request_json() {  # request_json PATH [AUTH_HEADER]
  local headers='{}'
  [ -n "${2:-}" ] && headers=$(jq -cn --arg a "$2" '{authorization: $a}')
  jq -cn --arg p "$1" --argjson h "$headers" '{
    destination: {namespace: "default", labels: {app: "details"}, serviceAccount: "details", ip: "127.0.0.1", port: 9080},
    source: {principal: "cluster.local/ns/default/sa/productpage", ip: "127.0.0.1"},
    request: {method: "GET", path: $p, host: "details:9080", headers: $h},
    time: 1700000000}' >"$W/request.json"
}
apply_policies() {  # apply_policies FILES...: the details proxy restarts on exactly these policies
  rm -rf "$W/policies"; mkdir -p "$W/policies"
  cp "$@" "$W/policies/"
  stop_details_proxy
  start_details_proxy PERMISSIVE "$W/policies"
}
judge() {  # judge WHAT EXPECTED PATH AUTH FILES...: a real request through the proxy, and the engine's explanation
  local what="$1" expected="$2" path="$3" auth="$4"; shift 4
  local args=() f
  for f in "$@"; do args+=(-f "$f"); done
  local curl_args=(--path-as-is)  # send the path exactly as written: the proxy normalizes it
  [ -n "$auth" ] && curl_args+=(-H "Authorization: $auth")
  echo "   request: curl${auth:+ -H \"Authorization: ${auth:0:20}...\"} http://127.0.0.1:$DETAILS_IN$path"
  check "$what" "$expected" "$(status_of "${curl_args[@]}" "http://127.0.0.1:$DETAILS_IN$path")"
  request_json "$path" "$auth"
  local out; out=$("$CTL" authz check "${args[@]}" --request "$W/request.json")
  check "  same request, meshguardctl authz check" "$expected" "$(echo "$out" | jq -r .status)"
  echo "      $out" | cut -c1-200
}
TOKEN=$(cat "$EX/demo-token.jwt")

step "5. RequestAuthentication for issuer testing@secure.istio.io (Istio's sample key set)"
show_yaml "$EX/jwt-example.yaml"
apply_policies "$EX/jwt-example.yaml"
judge "valid demo token" 200 /details/1 "Bearer $TOKEN" "$EX/jwt-example.yaml"
judge "Authorization: Bearer badtoken" 401 /details/1 "Bearer badtoken" "$EX/jwt-example.yaml"
judge "no token" 200 /details/1 "" "$EX/jwt-example.yaml"

step "6. AuthorizationPolicy require-jwt"
show_yaml "$EX/require-jwt.yaml"
apply_policies "$EX/jwt-example.yaml" "$EX/require-jwt.yaml"
judge "no token" 403 /details/1 "" "$EX/jwt-example.yaml" "$EX/require-jwt.yaml"
judge "valid demo token" 200 /details/1 "Bearer $TOKEN" "$EX/jwt-example.yaml" "$EX/require-jwt.yaml"

step "7. A DENY policy on a path"
show_yaml "$EX/deny-path.yaml"
apply_policies "$EX/jwt-example.yaml" "$EX/require-jwt.yaml" "$EX/deny-path.yaml"
judge "GET /admin/users with a valid token" 403 /admin/users "Bearer $TOKEN" "$EX/jwt-example.yaml" "$EX/require-jwt.yaml" "$EX/deny-path.yaml"
judge "GET /admin/../details/1 (normalized to /details/1)" 200 "/admin/../details/1" "Bearer $TOKEN" "$EX/jwt-example.yaml" "$EX/require-jwt.yaml" "$EX/deny-path.yaml"

step "8. What the proxies saw"
echo "   details' access log: the denied request names the policy and rule:"
grep '"status":403' "$W/details-access.log" | tail -n 1 |
  jq -c '{method, path, status, policy, rule, reason, source_principal: .source.principal}' | sed 's/^/      /'
ADMIN=$(grep -m1 -E '^listening admin ' "$W/details-proxy.out" | sed -E 's/.*:([0-9]+)$/\1/')
echo "   details' proxy metrics (excerpt):"
curl -s --max-time 5 "http://127.0.0.1:$ADMIN/metrics" | grep -E '^(meshguard_authz_decisions_total|meshguard_certificate_expiry)' | head -n 8 | cut -c1-200 | sed 's/^/      /'

echo
if [ "$FAILED" -ne 0 ]; then
  echo "demo: some observed results differ from the expected ones" >&2
  exit 1
fi
echo "demo: every step behaved as expected"
if [ "$KEEP" = 1 ]; then
  echo "mesh left running (Ctrl-C to stop): plaintext http://127.0.0.1:$DETAILS_IN/details/1," \
       "through the mesh http://127.0.0.1:$SLEEP_OUT/details/1, admin http://127.0.0.1:$ADMIN/metrics"
  wait
fi
