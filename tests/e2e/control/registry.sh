#!/usr/bin/env bash
# Issue 16, the service registry end to end: a Service applied to the control plane, replicas
# registering through their proxies' Hello, endpoints in `get endpoints` and in every proxy's
# snapshot, a client calling the service by name through one outbound listener (balanced across
# the replicas), a replica killed (clients keep getting 200; its endpoint leaves after the grace
# period), a third replica joining (receives traffic within a bounded poll), an AuthorizationPolicy
# at the server still deciding, and a Workload's egress list narrowing what its proxy is sent.
source "$(dirname "$0")/lib.sh"

CONTROL_ARGS=(--endpoint-grace 2s)
start_control
start_app app APP

cat >"$WORK/service.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, targetPort: $APP}]
YAML
out=$(ctl apply -f "$WORK/service.yaml") || fail "apply Service: $out"
expect_contains "$out" "service/default/details created" "apply creates the Service"

# A ServiceEndpoints is the control plane's to write: apply refuses it (client side, then server).
cat >"$WORK/endpoints.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: details, namespace: default}
spec:
  endpoints: [{workload: evil, address: 127.0.0.1, serviceAccount: evil, ports: [{port: 9080, endpointPort: 1}]}]
YAML
if out=$(ctl apply -f "$WORK/endpoints.yaml" 2>&1); then fail "apply of a ServiceEndpoints succeeded: $out"; fi
expect_contains "$out" "endpoints.yaml:1: ServiceEndpoints default/details cannot be applied" "apply refuses ServiceEndpoints"

# start_replica NAME: an app-backing proxy labelled app=details (service account details) in front
# of the shared app; sets NAME_IN, NAME_ADMIN, NAME_PID.
start_replica() {
  local name="$1"
  ctl token create --namespace default --service-account details --ttl 10m >"$WORK/$name.token" || fail "token for $name"
  cat >"$WORK/$name.yaml" <<YAML
workload: {name: $name, namespace: default, serviceAccount: details, labels: {app: details}}
accessLog: $WORK/$name-access.log
workers: 1
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0, address: 127.0.0.1}
YAML
  start_proxy "$name"
}

# endpoints_rows: `get endpoints` table rows of default/details (no header).
endpoints_rows() { ctl get endpoints 2>/dev/null | awk 'NR > 1 && $2 == "details"'; }

# wait_endpoints REGEX...: polls (bounded: ~10 s) until every REGEX matches a row of endpoints_rows
# and the row count is the number of REGEXes.
wait_endpoints() {
  local rows ok re
  for _ in $(seq 1 200); do
    rows=$(endpoints_rows)
    ok=1
    for re in "$@"; do echo "$rows" | grep -qE "$re" || ok=0; done
    [ "$ok" = 1 ] && [ "$(echo "$rows" | grep -c .)" = "$#" ] && return 0
    sleep 0.05
  done
  fail "endpoints never became [$*]; last: $rows"
}

ID=spiffe://cluster.local/ns/default/sa/details
start_replica details1
start_replica details2
ep1="details1 +9080->127\.0\.0\.1:$details1_IN +$ID +true"
ep2="details2 +9080->127\.0\.0\.1:$details2_IN +$ID +true"
wait_endpoints "$ep1" "$ep2"
pass "get endpoints: both replicas, service port -> inbound listener, identity, healthy"
ctl get services | grep -qE "^default +details +app=details +http:9080->$APP/http +LEAST_REQUEST +2/2 " ||
  fail "get services: $(ctl get services)"
pass "get services: selector, ports, load balancer, 2/2 endpoints"
ep_json=$(ctl get endpoints details -o json)
expect_eq "$(echo "$ep_json" | jq -r '.spec.endpoints | map(.workload) | join(",")')" "details1,details2" "get endpoints -o json"
ctl get endpoints -o yaml | grep -q "endpointPort: $details2_IN" || fail "get endpoints -o yaml: $(ctl get endpoints -o yaml)"
pass "get endpoints -o yaml"
described=$(ctl describe service details)
expect_contains "$described" "details.default.svc.cluster.local" "describe service: host names"
echo "$described" | grep -qE "^ +details2 +details +yes" || fail "describe service: selected workloads: $described"
echo "$described" | grep -qE "$ep1" || fail "describe service: endpoints: $described"
pass "describe service: selected workloads and endpoints"
if out=$(ctl delete endpoints details 2>&1); then fail "delete endpoints succeeded: $out"; fi
expect_contains "$out" "computed by the control plane" "delete refuses ServiceEndpoints"

# The client: one outbound HTTP listener routing by Host through the registry.
ctl token create --namespace default --service-account sleep --ttl 10m >"$WORK/sleep.token" || fail "token for sleep"
cat >"$WORK/sleep.yaml" <<YAML
workload: {name: sleep, namespace: default, serviceAccount: sleep, labels: {app: sleep}}
accessLog: $WORK/sleep-access.log
workers: 1
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0, address: 127.0.0.1}
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
YAML
start_proxy sleep
SNAP="$WORK/sleep-state/policies/snapshot.yaml"
for _ in $(seq 1 200); do
  grep -q "endpointPort: $details2_IN" "$SNAP" 2>/dev/null && grep -q "endpointPort: $details1_IN" "$SNAP" && break
  sleep 0.05
done
grep -q "kind: Service$" "$SNAP" || fail "sleep's snapshot has no Service: $(cat "$SNAP")"
grep -q "endpointPort: $details1_IN" "$SNAP" && grep -q "endpointPort: $details2_IN" "$SNAP" ||
  fail "sleep's snapshot lacks the endpoints: $(cat "$SNAP")"
pass "the client's pushed snapshot holds the Service and both endpoints (ACKed: no NACK below)"
grep -q "endpointPort: $details1_IN" "$WORK/details1-state/policies/snapshot.yaml" ||
  fail "details1's snapshot lacks the endpoints (default: every service of the mesh)"
pass "every proxy receives every service by default"

OUT="http://127.0.0.1:$sleep_OUT"
wait_status "$OUT/details/1" 200 -H "Host: details:9080"
pass "sleep calls http://details:9080/ by name through its proxy"
for host in details.default details.default.svc:9080 details.default.svc.cluster.local; do
  expect_eq "$(http_status "$OUT/details/1" -H "Host: $host")" 200 "by name: Host $host"
done
headers=$(curl -s --max-time 10 -H "Host: details:9080" "$OUT/headers")
expect_contains "$headers" "URI=spiffe://cluster.local/ns/default/sa/sleep" "the replica sees sleep's SVID (mTLS)"

# count NAME: requests the replica's proxy logged.
count() {
  local n
  n=$(grep -c '"method":"GET"' "$WORK/$1-access.log" 2>/dev/null) || true
  echo "${n:-0}"
}
b1=$(count details1)
b2=$(count details2)
N=100
for i in $(seq 1 $N); do
  code=$(http_status "$OUT/details/$i" -H "Host: details")
  [ "$code" = 200 ] || fail "request $i by name: $code"
done
wait_for_count "$WORK/sleep-access.log" '"path":"/details/100"' 1
for _ in $(seq 1 100); do
  [ $(( $(count details1) - b1 + $(count details2) - b2 )) -ge $N ] && break
  sleep 0.05
done
n1=$(( $(count details1) - b1 ))
n2=$(( $(count details2) - b2 ))
echo "balance over $N requests: details1=$n1 details2=$n2"
expect_eq "$((n1 + n2))" "$N" "every request reached one replica"
# LEAST_REQUEST with one request at a time is a fair coin per request: 30..70 of 100 is > 4 sigma.
[ "$n1" -ge 30 ] && [ "$n1" -le 70 ] || fail "unbalanced: details1=$n1 details2=$n2 (tolerance 30..70 of $N)"
pass "two replicas behind one name: balanced within 30..70 of $N (LEAST_REQUEST)"

# An AuthorizationPolicy at the server still decides for traffic that came by name.
deny_paths deny-admin "app: details" "/admin/*" >"$WORK/deny.yaml"
ctl apply -f "$WORK/deny.yaml" >/dev/null || fail "apply deny-admin"
wait_status "$OUT/admin/x" 403 -H "Host: details"
expect_eq "$(http_status "$OUT/details/1" -H "Host: details")" 200 "other paths still 200"
pass "AuthorizationPolicy at the server decides (403 by name)"

# A replica killed: requests keep succeeding (retry on another endpoint, then the registry drops it).
kill -KILL "$details2_PID"
for i in $(seq 1 40); do
  code=$(http_status "$OUT/details/$i" -H "Host: details")
  [ "$code" = 200 ] || fail "request $i after details2 was killed: $code"
done
pass "details2 killed: 40 requests by name right after, all 200"
seen_unhealthy=0
for _ in $(seq 1 300); do
  rows=$(endpoints_rows)
  echo "$rows" | grep -qE "details2 .* false$" && seen_unhealthy=1
  echo "$rows" | grep -q details2 || break
  sleep 0.05
done
echo "$rows" | grep -q details2 && fail "details2 still listed well past the 2 s grace: $rows"
pass "details2's endpoint left after the grace period$([ $seen_unhealthy = 1 ] && echo ' (listed unhealthy meanwhile)')"
wait_endpoints "$ep1"
for _ in $(seq 1 200); do
  grep -q "endpointPort: $details2_IN" "$SNAP" || break
  sleep 0.05
done
grep -q "endpointPort: $details2_IN" "$SNAP" && fail "sleep's snapshot still lists details2"
pass "the departure is pushed: sleep's snapshot lists details1 only"

# A third replica registers: it gets traffic within a bounded poll. An endpoints watch sees it
# (endpoints change without a store revision: their events are ordered by the registry's generation).
"$CTL_BIN" get endpoints -w --watch-count 1 >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCHER=$!
PIDS+=("$WATCHER")
wait_for_line "$WORK/watch.out" '^-- revision [0-9]+, watching$' >/dev/null
start_replica details3
wait_endpoints "$ep1" "details3 +9080->127\.0\.0\.1:$details3_IN +$ID +true"
got=0
for i in $(seq 1 200); do
  code=$(http_status "$OUT/details/$i" -H "Host: details")
  [ "$code" = 200 ] || fail "request $i while details3 joins: $code"
  if [ "$(count details3)" -gt 0 ]; then got=1; break; fi
done
[ "$got" = 1 ] || fail "details3 registered but got none of 200 requests"
pass "details3 joined: it receives traffic (after $i requests)"
wait_for_line "$WORK/watch.out" '^revision [0-9]+  serviceendpoints/default/details configured$' >/dev/null
for _ in $(seq 1 200); do kill -0 "$WATCHER" 2>/dev/null || break; sleep 0.05; done
kill -0 "$WATCHER" 2>/dev/null && fail "get endpoints -w --watch-count 1 still running: $(cat "$WORK/watch.out")"
pass "get endpoints -w: the join arrived as an event"
# Endpoints joining and leaving changed only sleep's ServiceEndpoints: published without a compile.
loads=$(curl -s --max-time 10 "http://127.0.0.1:$sleep_ADMIN/config_dump" | jq -c .policy.loads)
expect_eq "$(echo "$loads" | jq '.endpointsOnly >= 2')" true "sleep applied the endpoint changes without compiling: $loads"

# egress: a Workload document narrows what sleep is sent (here: only a service it does not call).
cat >"$WORK/sleep-workload.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: sleep, namespace: default}
spec:
  serviceAccount: sleep
  labels: {app: sleep}
  egress: ["./ratings"]
YAML
ctl apply -f "$WORK/sleep-workload.yaml" >/dev/null || fail "apply sleep's Workload with egress"
for _ in $(seq 1 200); do
  grep -q "kind: ServiceEndpoints" "$SNAP" || break
  sleep 0.05
done
grep -q "kind: Service" "$SNAP" && fail "egress [./ratings]: sleep still receives details: $(cat "$SNAP")"
grep -q "endpointPort: $details3_IN" "$WORK/details1-state/policies/snapshot.yaml" ||
  fail "details1 (no egress list) lost the endpoints"
pass "egress list narrows the pushed services (sleep none, details1 still all)"
wait_status "$OUT/details/1" 404 -H "Host: details"
pass "by name after egress narrowed it away: 404 (unknown host)"

# Every connected proxy ACKed what it was sent (the new kinds never NACK).
for _ in $(seq 1 200); do
  wl=$(ctl workload list -o json)
  [ "$(echo "$wl" | jq '[.[] | select(.connected and .configVersion == .ackedVersion)] | length')" = 3 ] && break
  sleep 0.05
done
expect_eq "$(echo "$wl" | jq '[.[] | select(.connected and .configVersion == .ackedVersion)] | length')" 3 "all three connected proxies ACKed"
