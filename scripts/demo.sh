#!/usr/bin/env bash
# shellcheck disable=SC2154  # APP_/IN_/ADMIN_<workload> are assigned with printf -v
# The main job: zero trust, end to end, on 127.0.0.1 — Istio's security walkthrough, driven
# through the control plane.
#
# Starts meshguard-control (built-in CA and embedded SQLite store in a temporary directory) and
# three workloads in namespace default — productpage, details, sleep — each an mg-sample-app
# behind its own meshguard-proxy, bootstrapped with its own token: the proxy generates its key,
# the control plane's CA signs its SPIFFE identity and pushes the policies that select it. A
# `Service` names details: productpage and sleep call http://details:9080 through one outbound
# listener each, routed by the service registry the control plane pushes (no hand-written route). Every
# step then changes policy with `meshguardctl apply` / `delete` (no restarts), waits (bounded) for
# the proxies to enforce it, makes real requests with curl and prints expected vs observed; where
# a decision can be explained, `meshguardctl authz check` evaluates the same request offline on
# the resources the control plane holds (the same engine). Exits non-zero on any mismatch.
#
# Usage: scripts/demo.sh [--keep-running]
#          installs what is missing (scripts/install-deps.sh), builds (scripts/build.sh release;
#          with MESHGUARD_BUILD_DIR=DIR set, the demo's targets in that configured tree instead)
#          and runs the walkthrough; --keep-running leaves the mesh up afterwards
#        scripts/demo.sh --binaries CONTROL CTL PROXY APP
#          the test-suite mode (tests/e2e/demo): no install, no build, exactly these binaries
set -euo pipefail
CALLER_DIR="$PWD"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$CALLER_DIR/$1" ;; esac; }
cd "$(dirname "$0")/.."
ROOT="$PWD"
EX="examples/demo"  # relative: the script runs from the repository root
KEEP=0
PREBUILT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-running) KEEP=1; shift ;;
    --binaries)
      [ $# -ge 5 ] || { echo "usage: $0 --binaries CONTROL CTL PROXY APP" >&2; exit 2; }
      CONTROL=$(abs "$2"); CTL=$(abs "$3"); PROXY=$(abs "$4"); APP=$(abs "$5"); PREBUILT=1; shift 5 ;;
    *) echo "usage: $0 [--keep-running] | --binaries CONTROL CTL PROXY APP" >&2; exit 2 ;;
  esac
done

if [ "$PREBUILT" = 0 ]; then
  bash scripts/install-deps.sh
  BUILD_LOG=/tmp/meshguard-demo-build.log
  if [ -n "${MESHGUARD_BUILD_DIR:-}" ]; then
    BIN="$(abs "$MESHGUARD_BUILD_DIR")/tools"
    build=(cmake --build "$(abs "$MESHGUARD_BUILD_DIR")" -j "${MESHGUARD_JOBS:-$(nproc)}"
           --target meshguard-control meshguardctl meshguard-proxy mg-sample-app)
  else
    BIN="$ROOT/build/tools"
    build=(bash scripts/build.sh release)
  fi
  echo "demo: building (log: $BUILD_LOG)"
  "${build[@]}" >"$BUILD_LOG" 2>&1 || {
    tail -n 40 "$BUILD_LOG"
    echo "demo: build failed (full log: $BUILD_LOG)" >&2
    exit 1
  }
  CONTROL="$BIN/meshguard-control"; CTL="$BIN/meshguardctl"; PROXY="$BIN/meshguard-proxy"; APP="$BIN/mg-sample-app"
fi
for b in "$CONTROL" "$CTL" "$PROXY" "$APP"; do
  [ -x "$b" ] || { echo "demo: $b is not an executable" >&2; exit 1; }
done
# How long a policy change may take to be enforced. The control plane pushes in well under a
# second; the test suite also runs this under sanitizers on a loaded machine, hence its margin.
WAIT_S=5
[ "$PREBUILT" = 1 ] && WAIT_S=20

W="$(mktemp -d /tmp/meshguard-demo.XXXXXX)"
PIDS=()
cleanup() {
  local rc=$? pid f
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # In a sanitizer build, a report in any process's stderr fails the run.
  for f in "$W"/*.err; do
    [ -f "$f" ] || continue
    if grep -qE "AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:" "$f"; then
      echo "demo: sanitizer report in $f" >&2
      head -n 60 "$f" >&2
      rc=1
    fi
  done
  [ -n "${MESHGUARD_DEMO_KEEP_FILES:-}" ] && echo "demo: files kept in $W" >&2 || rm -rf "$W"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show_yaml() { echo "   policy ($(basename "$1")):"; grep -v '^#' "$1" | sed 's/^/      /' | cut -c1-140; }
run() {  # run CMD...: print the command as a user would type it, then its output, indented
  echo "   \$ ${*/#$CTL/meshguardctl}"
  "$@" 2>&1 | sed 's/^/      /'
  return "${PIPESTATUS[0]}"
}
check() {  # check WHAT EXPECTED OBSERVED
  if [ "$2" = "$3" ]; then
    printf '   %-64s expected %-6s observed %-6s ok\n' "$1" "$2" "$3"
  else
    printf '   %-64s expected %-6s observed %-6s MISMATCH\n' "$1" "$2" "$3"
    FAILED=1
  fi
}
die() {
  echo "demo: $*" >&2
  for f in "$W"/*.err; do [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}
wait_port() {  # wait_port FILE REGEX → the port at the end of the first matching line (bounded)
  local line
  for _ in $(seq 1 $((WAIT_S * 40 + 600))); do
    line="$(grep -m1 -E "$2" "$1" 2>/dev/null || true)"
    if [ -n "$line" ]; then echo "${line##*:}"; return 0; fi
    sleep 0.05
  done
  die "timed out waiting for /$2/ in $1"
}
launch() {  # launch NAME CMD...: background process, output in $W/NAME.out and $W/NAME.err
  local name="$1"; shift
  "$@" >"$W/$name.out" 2>"$W/$name.err" &
  PIDS+=("$!")
}
# A request's HTTP status ("000" when no response came back) and curl's exit code.
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --path-as-is "$@" || true; }
curl_rc() { local rc=0; curl -s -o /dev/null --max-time 5 "$@" || rc=$?; echo "$rc"; }
# await WHAT EXPECTED CMD...: repeats CMD until it prints EXPECTED, at most $WAIT_S seconds,
# and says how long the change took to be enforced. A timeout is reported by the checks after it.
await() {
  local what="$1" expected="$2" out="" start i
  shift 2
  start=$(date +%s%N)
  for ((i = 0; i < WAIT_S * 20; i++)); do
    out="$("$@")"
    if [ "$out" = "$expected" ]; then
      echo "   enforced by the proxies after $((($(date +%s%N) - start) / 1000000)) ms ($what)"
      return 0
    fi
    sleep 0.05
  done
  echo "   NOT enforced within ${WAIT_S} s ($what: last observed $out)"
}

# ---------------------------------------------------------------------------------- the mesh

step "The control plane: built-in CA, SQLite store in $W/control"
launch control "$CONTROL" --data-dir "$W/control" --listen 127.0.0.1:0 --metrics 127.0.0.1:0
CP_PORT=$(wait_port "$W/control.out" '^listening grpc ')
CP_METRICS=$(wait_port "$W/control.out" '^listening metrics ')
export MESHGUARD_SERVER="127.0.0.1:$CP_PORT" MESHGUARD_ADMIN_DIR="$W/control/admin"
echo "   meshguard-control: gRPC (mTLS) on $MESHGUARD_SERVER, metrics on 127.0.0.1:$CP_METRICS"
echo "   meshguardctl talks to it with the admin identity it wrote to $MESHGUARD_ADMIN_DIR"
run "$CTL" apply -f "$EX/mesh.yaml" || die "cannot register the workloads"

# start_workload NAME [OUTBOUND_YAML]: a sample app and its proxy, bootstrapped with a token
# bound to default/NAME. Sets APP_<NAME>, IN_<NAME>, ADMIN_<NAME> (ports).
start_workload() {
  local wl="$1" outbound="${2:-}"
  mkdir -p "$W/$wl"
  launch "$wl-app" "$APP" --listen 127.0.0.1:0
  local app_port; app_port=$(wait_port "$W/$wl-app.out" '^listening on ')
  # The token is a credential: only the proxy's user may read it.
  (umask 077 && "$CTL" token create --namespace default --service-account "$wl" --ttl 10m >"$W/$wl/token") ||
    die "cannot create a bootstrap token for $wl"
  cat >"$W/$wl/proxy.yaml" <<YAML
workload: {name: $wl, namespace: default, serviceAccount: $wl, labels: {app: $wl}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app_port, protocol: http}
$outbound
admin: {port: 0}
accessLog: $W/$wl/access.log
YAML
  launch "$wl-proxy" "$PROXY" --config "$W/$wl/proxy.yaml" --workers 2 \
    --control-plane "$MESHGUARD_SERVER" --ca-bundle "$W/control/ca/root-cert.pem" \
    --token-file "$W/$wl/token" --state-dir "$W/$wl/state"
  local in_port admin_port
  in_port=$(wait_port "$W/$wl-proxy.out" '^listening inbound\[0\] ')
  admin_port=$(wait_port "$W/$wl-proxy.out" '^listening admin ')
  printf -v "APP_$wl" '%s' "$app_port"
  printf -v "IN_$wl" '%s' "$in_port"
  printf -v "ADMIN_$wl" '%s' "$admin_port"
}
outbound_by_name() {  # one outbound HTTP listener: routes by Host through the service registry
  cat <<YAML
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
YAML
}

step "Three workloads in namespace default, each a sample app behind its own meshguard-proxy"
start_workload details
# A Service names details' workloads (selector app: details); the control plane computes its
# endpoints from the proxies that register and pushes them to every proxy: no per-route YAML.
cat >"$W/details-service.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, targetPort: $APP_details}]
YAML
show_yaml "$W/details-service.yaml"
run "$CTL" apply -f "$W/details-service.yaml" || die "cannot apply the details Service"
start_workload productpage "$(outbound_by_name)"
OUT_productpage=$(wait_port "$W/productpage-proxy.out" '^listening outbound\[0\] ')
start_workload sleep "$(outbound_by_name)"
OUT_sleep=$(wait_port "$W/sleep-proxy.out" '^listening outbound\[0\] ')
echo "   each proxy generated its own key and presented a token from"
echo "   \`meshguardctl token create --namespace default --service-account NAME --ttl 10m\` for its first certificate:"
for wl in productpage details sleep; do
  in="IN_$wl" admin="ADMIN_$wl"
  line=$(grep -m1 -E 'bootstrapped .*valid until [0-9T:-]+Z$' "$W/$wl-proxy.err" || true)
  [ -n "$line" ] || die "$wl: the proxy did not log its bootstrap"
  id=$(sed -E 's/.*bootstrapped ([^,]+),.*/\1/' <<<"$line")
  echo "   $wl: identity $id, certificate valid until ${line##* }"
  echo "      inbound 127.0.0.1:${!in}, admin 127.0.0.1:${!admin}"
done
echo "   productpage and sleep call http://details:9080/ through their proxy's outbound listener"
echo "   (127.0.0.1:$OUT_productpage, 127.0.0.1:$OUT_sleep: curl --connect-to stands in for the app's name resolution)"

DETAILS="http://127.0.0.1:$IN_details"           # plaintext, straight to details' inbound port
# The service by name, through a caller's proxy (routed by Host, mTLS, secure naming from the registry).
BY_NAME="http://details:9080"
VIA_SLEEP=(--connect-to "details:9080:127.0.0.1:$OUT_sleep")
VIA_PRODUCTPAGE=(--connect-to "details:9080:127.0.0.1:$OUT_productpage")
await "details registered and pushed to sleep" 200 status_of "${VIA_SLEEP[@]}" "$BY_NAME/details/1"
await "details registered and pushed to productpage" 200 status_of "${VIA_PRODUCTPAGE[@]}" "$BY_NAME/details/1"
run "$CTL" get endpoints || die "get endpoints failed"

# explain PATH EXPECTED [AUTH] [PRINCIPAL]: `meshguardctl authz check` on the resources the
# control plane holds right now, for the request a workload sends to details.
explain() {
  local path="$1" expected="$2" auth="${3:-}" principal="${4-cluster.local/ns/default/sa/productpage}"
  "$CTL" get all -A -o yaml >"$W/held.yaml"
  jq -n --arg p "$path" --arg a "$auth" --arg pr "$principal" '{
    destination: {namespace: "default", labels: {app: "details"}, serviceAccount: "details", ip: "127.0.0.1", port: 9080},
    source: ({ip: "127.0.0.1"} + (if $pr == "" then {} else {principal: $pr} end)),
    request: {method: "GET", path: $p, host: "details:9080",
              headers: (if $a == "" then {} else {authorization: $a} end)}}' >"$W/request.json"
  local out; out=$("$CTL" authz check -f "$W/held.yaml" --request "$W/request.json") || die "authz check failed"
  check "  same request, meshguardctl authz check (offline)" "$expected" "$(jq -r .status <<<"$out")"
  echo "      $(jq -c '{decision, status, policy, rule, reason}' <<<"$out" | cut -c1-180)"
}
# judge WHAT EXPECTED PATH [AUTH]: productpage → details through the mesh, then the explanation.
judge() {
  local what="$1" expected="$2" path="$3" auth="${4:-}" args=()
  [ -n "$auth" ] && args=(-H "Authorization: $auth")
  echo "   request: productpage → details: curl${auth:+ -H \"Authorization: ${auth:0:20}...\"} $BY_NAME$path"
  check "$what" "$expected" "$(status_of "${args[@]}" "${VIA_PRODUCTPAGE[@]}" "$BY_NAME$path")"
  explain "$path" "$expected" "$auth"
}
TOKEN=$(cat "$EX/demo-token.jwt")

# ---------------------------------------------------------------------------------- the walkthrough

step "1. PERMISSIVE (the default): plaintext HTTP straight to details' inbound port"
echo "   request: curl $DETAILS/details/1   (a client outside the mesh, no certificate)"
check "plaintext → details" 200 "$(status_of "$DETAILS/details/1")"
check "sleep → details through the mesh (mTLS)" 200 "$(status_of "${VIA_SLEEP[@]}" "$BY_NAME/details/1")"

step "2. PeerAuthentication STRICT for app: details"
show_yaml "$EX/peer-strict.yaml"
run "$CTL" apply -f "$EX/peer-strict.yaml" || die "apply failed"
await "plaintext refused" 56 curl_rc "$DETAILS/details/1"
echo "   request: curl $DETAILS/details/1   (plaintext)"
check "plaintext → details: curl exit code (56 = connection reset)" 56 "$(curl_rc "$DETAILS/details/1")"
explain /details/1 0 "" ""
echo "   request: sleep → $BY_NAME via its proxy (127.0.0.1:$OUT_sleep) → mTLS → details' proxy → app"
check "sleep → details through the mesh (mTLS)" 200 "$(status_of "${VIA_SLEEP[@]}" "$BY_NAME/details/1")"
xfcc=$(curl -s --max-time 5 "${VIA_SLEEP[@]}" "$BY_NAME/headers" | jq -r '.headers["x-forwarded-client-cert"] // .["x-forwarded-client-cert"] // empty' 2>/dev/null || true)
echo "   the app sees the caller's verified identity: x-forwarded-client-cert: ${xfcc:0:150}"

step "3. Back to PERMISSIVE: delete the STRICT policy"
run "$CTL" delete peerauthentication details-strict -n default || die "delete failed"
await "plaintext accepted" 200 status_of "$DETAILS/details/1"
check "plaintext → details" 200 "$(status_of "$DETAILS/details/1")"

step "4. RequestAuthentication for issuer testing@secure.istio.io (Istio's sample key set)"
show_yaml "$EX/jwt-example.yaml"
run "$CTL" apply -f "$EX/jwt-example.yaml" || die "apply failed"
await "bad token refused" 401 status_of -H "Authorization: Bearer badtoken" "${VIA_PRODUCTPAGE[@]}" "$BY_NAME/details/1"
judge "valid demo token" 200 /details/1 "Bearer $TOKEN"
judge "Authorization: Bearer badtoken" 401 /details/1 "Bearer badtoken"
judge "no token" 200 /details/1

step "5. AuthorizationPolicy require-jwt"
show_yaml "$EX/require-jwt.yaml"
run "$CTL" apply -f "$EX/require-jwt.yaml" || die "apply failed"
await "no token denied" 403 status_of "${VIA_PRODUCTPAGE[@]}" "$BY_NAME/details/1"
judge "no token" 403 /details/1
judge "valid demo token" 200 /details/1 "Bearer $TOKEN"

step "6. A DENY policy on a path"
show_yaml "$EX/deny-path.yaml"
run "$CTL" apply -f "$EX/deny-path.yaml" || die "apply failed"
await "/admin denied" 403 status_of -H "Authorization: Bearer $TOKEN" "${VIA_PRODUCTPAGE[@]}" "$BY_NAME/admin/users"
judge "GET /admin/users with a valid token" 403 /admin/users "Bearer $TOKEN"
judge "GET /admin/../details/1 (normalized to /details/1)" 200 "/admin/../details/1" "Bearer $TOKEN"
echo "   details' access log: the denied request names the policy and rule:"
denied=$(grep '"status":403' "$W/details/access.log" | grep '/admin/users' | tail -n 1 || true)
jq -c '{method, path, status, policy, rule, reason, source_principal: .source.principal}' <<<"${denied:-null}" |
  sed 's/^/      /'
check "access log: policy that denied /admin/users" default/deny-admin "$(jq -r '.policy // "none"' <<<"${denied:-null}")"
check "access log: rule that denied /admin/users" 0 "$(jq -r '.rule // "none"' <<<"${denied:-null}")"

step "7. Identities, certificates and metrics"
run "$CTL" get all -A || die "get failed"
run "$CTL" workload list || die "workload list failed"
wl_json=$("$CTL" workload list -o json)
check "workloads connected to the control plane" 3 "$(jq '[.[] | select(.connected)] | length' <<<"$wl_json")"
check "workloads with an Available certificate" 3 "$(jq '[.[] | select(.certState == "Available")] | length' <<<"$wl_json")"
check "workloads that acknowledged the latest snapshot" 3 \
  "$(jq '[.[] | select(.configVersion != "" and .ackedVersion == .configVersion and .nackError == "")] | length' <<<"$wl_json")"
check "identity of details" spiffe://cluster.local/ns/default/sa/details \
  "$(jq -r '.[] | select(.name == "details") | .spiffeId' <<<"$wl_json")"
for wl in details productpage; do
  admin="ADMIN_$wl"
  echo "   $wl proxy: curl http://127.0.0.1:${!admin}/metrics (excerpt)"
  curl -s --max-time 5 "http://127.0.0.1:${!admin}/metrics" |
    grep -E '^meshguard_(authz_decisions_total|certificate_expiry|config_reload_total)' | head -n 8 | cut -c1-170 |
    sed 's/^/      /'
done
echo "   control plane: curl http://127.0.0.1:$CP_METRICS/metrics (excerpt)"
cp_metrics=$(curl -s --max-time 5 "http://127.0.0.1:$CP_METRICS/metrics")
grep -E '^(pilot_xds_pushes|pilot_xds|meshguard_config_acks_total|meshguard_(csr_total|applies_total|store_revision|push_ack_latency_milliseconds_(count|sum)))' \
  <<<"$cp_metrics" | cut -c1-170 | sed 's/^/      /'
check "control plane: NACKed snapshots" 0 \
  "$(awk '/^meshguard_config_acks_total\{.*result="nack"/ {n += $2} END {print n + 0}' <<<"$cp_metrics")"

echo
if [ "$FAILED" -ne 0 ]; then
  echo "demo: some observed results differ from the expected ones" >&2
  exit 1
fi
echo "demo: every step behaved as expected"
if [ "$KEEP" = 1 ]; then
  echo "The mesh is left running (Ctrl-C stops it and removes $W). Talk to it:"
  echo "  export MESHGUARD_SERVER=$MESHGUARD_SERVER MESHGUARD_ADMIN_DIR=$MESHGUARD_ADMIN_DIR"
  hint() { printf '  %-62s # %s\n' "$1" "$2"; }
  hint "$CTL workload list" "identities, certificates, config ACKs"
  hint "$CTL get all -A -o yaml" "the resources the control plane holds"
  hint "$CTL delete authorizationpolicy require-jwt -n default" "pushed to details' proxy at once"
  hint "curl ${VIA_PRODUCTPAGE[*]} $BY_NAME/details/1" "productpage → details by name (mTLS)"
  hint "curl ${VIA_SLEEP[*]} $BY_NAME/headers" "sleep → details: the app sees the caller's identity"
  hint "$CTL get endpoints" "the registry: details' endpoints"
  hint "curl $DETAILS/details/1" "plaintext, straight to details' inbound port"
  hint "curl http://127.0.0.1:$ADMIN_details/config_dump" "details' proxy: identity, policies, mTLS modes"
  hint "curl http://127.0.0.1:$CP_METRICS/metrics" "the control plane's metrics"
  wait
fi
