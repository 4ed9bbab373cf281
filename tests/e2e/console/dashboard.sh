#!/usr/bin/env bash
# The zero-trust console (issue 17) end to end: a control plane, details and sleep behind proxies,
# traffic allowed (sleep → details over mTLS), denied (a DENY policy on /admin*) and plaintext (to
# details' inbound directly). The proxies report it over their config streams; `meshguardctl
# dashboard` serves the console on 127.0.0.1; its JSON API is checked with curl + jq, then the
# pages in headless Chromium over WebDriver (webdriver.py), with screenshots in ARTIFACTS.
# Arguments: PROXY_BIN APP_BIN CONTROL_BIN CTL_BIN ARTIFACTS_DIR. Without chromium and
# chromedriver the browser part is skipped (exit 77, CTest's SKIP_RETURN_CODE) after the API part.
ARTIFACTS="$5"
source "$(dirname "$0")/../control/lib.sh"

start_control
cat >"$WORK/deny.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
YAML
ctl apply -f "$WORK/deny.yaml" >/dev/null || fail "apply deny-admin"
start_details_and_sleep
SLEEP_URL="http://127.0.0.1:$sleep_OUT"
wait_status "$SLEEP_URL/status/200" 200
wait_status "$SLEEP_URL/admin/keys" 403
for _ in 1 2 3 4; do http_status "$SLEEP_URL/status/200" >/dev/null; done
for _ in 1 2; do http_status "$SLEEP_URL/admin/keys" >/dev/null; done
for _ in 1 2 3; do
  expect_eq "$(http_status "http://127.0.0.1:$details_IN/status/200")" 200 "plaintext to details' inbound (PERMISSIVE)"
done

start dashboard "$CTL_BIN" dashboard --port 0
URL=$(wait_for_line "$WORK/dashboard.out" '^console: http://127\.0\.0\.1:[0-9]+/$' | sed 's/^console: //')
pass "dashboard prints $URL"
api() { curl -sf --max-time 10 "${URL}api/$1"; }

# The proxies report every 3 s: wait (bounded: ~20 s) until both edges and all requests are in.
EDGE='.edges[] | select(.source == "default/sleep" and .destination == "default/details")'
PLAIN='.edges[] | select(.source == "plaintext" and .destination == "default/details")'
for _ in $(seq 1 100); do
  g=$(api graph || true)
  [ "$(echo "$g" | jq -r "[$EDGE | .allowed >= 5 and .denied >= 3] + [$PLAIN | .allowed >= 3] | all and length == 2" 2>/dev/null)" = true ] && break
  sleep 0.2
done
expect_eq "$(echo "$g" | jq -r "$EDGE | .mtls")" "mTLS" "graph: sleep → details carries the mTLS badge"
expect_eq "$(echo "$g" | jq -r "$EDGE | \"\(.allowed) \(.denied)\"")" "5 3" "graph: sleep → details allowed 5, denied 3"
expect_eq "$(echo "$g" | jq -r "$EDGE | .policies[] | select(.policy == \"default/deny-admin\") | .denied")" 3 \
  "graph: the edge's denials were decided by default/deny-admin"
expect_eq "$(echo "$g" | jq -r "$EDGE | .sourcePrincipals[0]")" "spiffe://cluster.local/ns/default/sa/sleep" "graph: source principal"
expect_eq "$(echo "$g" | jq -r "$PLAIN | \"\(.mtls) \(.allowed) \(.denied)\"")" "plaintext 3 0" "graph: plaintext edge badge"
expect_eq "$(echo "$g" | jq -r '[.namespaces[] | select(.name == "default") | .workloads[]] | sort | join(",")')" \
  "default/details,default/sleep" "graph: workloads grouped by namespace"
echo "$g" | jq -e "$EDGE | .rate > 0" >/dev/null || fail "graph: the edge has a request rate"

w=$(api workloads)
D='.workloads[] | select(.id == "default/details")'
expect_eq "$(echo "$w" | jq -r "$D | .connected")" true "workloads: details connected"
expect_eq "$(echo "$w" | jq -r "$D | .spiffeId")" "spiffe://cluster.local/ns/default/sa/details" "workloads: identity"
serial=$(ctl workload list -o json | jq -r '.[] | select(.name == "details") | .certSerial')
echo "$w" | jq -e "$D | .certificate.serial | length > 0" >/dev/null || fail "workloads: certificate serial"
echo "$w" | jq -e "$D | .certificate.warning == false and .certificate.secondsLeft > 0" >/dev/null || fail "workloads: expiry, no warning"
echo "$w" | jq -e "$D | .trustRoot.current == true" >/dev/null || fail "workloads: trust root in use is the current bundle"
echo "$w" | jq -e "$D | .configSent.version == .configAcked.version and .inSync" >/dev/null || fail "workloads: config sent and ACKed"
expect_eq "$(echo "$w" | jq -r "$D | .certificate.serial")" "$serial" "workloads: serial as workload list shows it"

p=$(api policies)
P='.resources[] | select(.kind == "AuthorizationPolicy" and .name == "deny-admin")'
expect_eq "$(echo "$p" | jq -r "$P | \"\(.action) \(.selects | join(\",\"))\"")" "DENY default/details" "policies: action and selected workloads"
echo "$p" | jq -e "$P | .findings | type == \"array\"" >/dev/null || fail "policies: findings listed"

d=$(api decisions)
DD='.decisions[] | select(.path == "/admin/keys")'
expect_eq "$(echo "$d" | jq -r "[$DD] | first | \"\(.source) \(.destination) \(.method) \(.status) \(.decision) \(.policy) \(.rule)\"")" \
  "default/sleep default/details GET 403 DENY default/deny-admin 0" "decisions: the denied request with policy and rule"
expect_eq "$(api 'decisions?policy=default%2Fdeny-admin' | jq -r '[.decisions[].policy] | unique | join(",")')" "default/deny-admin" \
  "decisions: filtered by policy"
expect_eq "$(api 'decisions?workload=default/nope' | jq -r '.decisions | length')" 0 "decisions: filtered by workload"

whatif() {
  curl -sf --max-time 10 -H 'Content-Type: application/json' -d "$1" "${URL}api/whatif"
}
expect_eq "$(whatif '{"workload": "default/details", "request": {"destination": {"port": 80}, "source": {"principal": "cluster.local/ns/default/sa/sleep"}, "request": {"method": "GET", "path": "/admin/1"}}}' | jq -r '"\(.decision) \(.policy) \(.rule)"')" \
  "DENY default/deny-admin 0" "whatif: /admin/1 denied by deny-admin rule 0"
expect_eq "$(whatif '{"workload": "default/details", "request": {"destination": {"port": 80}, "request": {"method": "GET", "path": "/status/200"}}}' | jq -r .decision)" \
  ALLOW "whatif: /status/200 allowed"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -d '{"request": 1}' "${URL}api/whatif")" 400 "whatif: a bad body is a 400"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${URL}api/nope")" 404 "unknown API: 404"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: evil.example:80' "${URL}api/graph")" 421 \
  "a foreign Host (DNS rebinding) is refused"
# Suggest: ALLOW rules from the allowed mTLS traffic details received; its dry run replays what was observed.
s=$(api 'suggest?workload=default/details')
expect_eq "$(echo "$s" | jq -r '"\(.rules) \(.observed.requests) \(.observed.plaintextRequests) \(.observed.deniedRequests)"')" "1 11 3 3" \
  "suggest: one rule from 11 observed requests (3 plaintext, 3 denied make none)"
expect_contains "$(echo "$s" | jq -r .yaml)" '- from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/status/*"]}}]' "suggest: ALLOW sleep GET /status/*"
expect_contains "$(echo "$s" | jq -r .yaml)" '"istio.io/dry-run": "true"' "suggest: the YAML is a dry-run policy"
echo "$s" | jq -r .yaml >"$WORK/suggested.yaml"
ctl apply --dry-run=server -f "$WORK/suggested.yaml" >/dev/null || fail "suggest: the YAML is a valid resource the store takes"
r=$(curl -sf --max-time 10 -d "$(jq -n --arg y "$(cat "$WORK/suggested.yaml")" '{workload: "default/details", yaml: $y}')" \
  "${URL}api/suggest/dryrun")
expect_eq "$(echo "$r" | jq -r '"\(.requests) \(.wouldAllow) \(.wouldDeny)"')" "11 5 6" "suggest dry run: the observed mTLS traffic stays allowed"
expect_eq "$(echo "$r" | jq -r '[.changed[] | "\(.sourcePrincipal) \(.observed)->\(.wouldBe)"] | join(",")')" "null ALLOW->DENY" \
  "suggest dry run: only the plaintext calls would change (denied)"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${URL}api/suggest?workload=default/nope")" 404 "suggest: unknown workload 404"

expect_eq "$(api mesh | jq -r '"\(.trustDomain) \(.caRoots | length)"')" "cluster.local 1" "mesh: trust domain and CA root"
# describe (issue 18) lists the same samples from the window: a policy's wherever it decided, a
# registered Workload's as the destination (sleep sent the denied requests: none are sleep's).
row_fields() { sed -n '/^Recent decisions/,/^Document:/p' | grep -m1 " $1 " | awk "{print $2}"; }
ds=$(ctl describe ap/deny-admin) || fail "describe ap/deny-admin"
expect_contains "$ds" "Recent decisions (denials and audits, newest first; the last 5 minutes):" "describe ap: recent decisions"
expect_eq "$(echo "$ds" | row_fields /admin/keys '$2, $3, $4, $5, $6, $7, $8, $9')" \
  "default/sleep default/details GET /admin/keys 403 DENY default/deny-admin 0" "describe ap: the denial, its source, destination and rule"
expect_eq "$(echo "$ds" | sed -n '/^Recent decisions/,/^Document:/p' | grep -c ' /admin/keys ')" 3 "describe ap: the three denials"
cat >"$WORK/workloads.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: details, namespace: default}
spec: {serviceAccount: details, labels: {app: details}}
---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: sleep, namespace: default}
spec: {serviceAccount: sleep, labels: {app: sleep}}
YAML
ctl apply -f "$WORK/workloads.yaml" >/dev/null || fail "apply the Workloads"
dw=$(ctl describe wl details) || fail "describe wl details"
expect_eq "$(echo "$dw" | sed -n '/^Recent decisions/p' | head -1)" \
  "Recent decisions (denials and audits, newest first; the last 5 minutes):" "describe wl: recent decisions"
expect_eq "$(echo "$dw" | row_fields /admin/keys '$2, $3, $4, $5, $6, $7, $8, $9')" \
  "default/sleep GET /admin/keys 403 DENY default/deny-admin 0 denied" "describe wl: the denial with policy, rule and reason"
echo "$dw" | sed -n '/^Recent decisions/,/^Document:/p' | grep -q ' TIME .*SOURCE .*METHOD .*PATH .*STATUS .*POLICY .*RULE .*REASON' ||
  fail "describe wl: the table's columns"
echo "$dw" | row_fields /admin/keys '$1' | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' || fail "describe wl: RFC 3339 time"
expect_eq "$(ctl describe wl sleep | grep '^Recent decisions')" \
  "Recent decisions: none in the last 5 minutes (the console's telemetry window)" "describe wl sleep: none (it was the source)"
pass "describe shows recent decisions from the console's window"

# Only the admin identity gets in: a workload's SVID is refused by the control plane.
rc=0
MESHGUARD_ADMIN_DIR="$WORK/details-state" timeout 10 "$CTL_BIN" dashboard --port 0 >"$WORK/notadmin.out" 2>&1 || rc=$?
expect_eq "$rc" 1 "dashboard with a workload identity: refused"
expect_contains "$(cat "$WORK/notadmin.out")" "admin" "dashboard with a workload identity: says why"

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "skip: chromium / chromedriver not installed (Debian packages chromium chromium-driver)"
  exit 77
fi
mkdir -p "$ARTIFACTS"
timeout 120 python3 "$(dirname "$0")/webdriver.py" "$URL" "$ARTIFACTS" "$WORK" || fail "the console in Chromium (webdriver.py)"
pass "console pages in headless Chromium; screenshots in $ARTIFACTS"
