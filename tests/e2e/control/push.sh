#!/usr/bin/env bash
# Policies applied to the control plane reach exactly the proxies they select, take effect without
# restarts, and a bad apply changes nothing.
source "$(dirname "$0")/lib.sh"

start_control
start_details_and_sleep

expect_eq "$(http_status "http://127.0.0.1:$details_IN/details/1")" 200 "plaintext to details (PERMISSIVE by default)"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "sleep -> details through the mesh (mTLS)"
headers=$(curl -s --max-time 10 "http://127.0.0.1:$sleep_OUT/headers")
expect_contains "$headers" "URI=spiffe://cluster.local/ns/default/sa/sleep" "details sees sleep's SVID issued by the control plane"

# An admin watch sees every change that follows (here: the next three).
"$CTL_BIN" get all -A --watch --watch-count 3 >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCHER=$!
PIDS+=("$WATCHER")
wait_for_line "$WORK/watch.out" '^-- revision [0-9]+, watching$' >/dev/null

peer_strict details-strict "app: details" >"$WORK/strict.yaml"
out=$(ctl apply -f "$WORK/strict.yaml") || fail "apply STRICT: $out"
expect_contains "$out" "peerauthentication/default/details-strict created" "apply prints what it created"
wait_refused "$details_IN" || fail "STRICT applied but plaintext still accepted after 5 s"
pass "STRICT via the control plane: plaintext refused at the connection"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "mTLS through the mesh still 200 under STRICT"
if grep -q details-strict "$WORK/sleep-state/policies/snapshot.yaml"; then
  fail "sleep received a PeerAuthentication that selects only app=details"
fi
pass "sleep's snapshot holds only what applies to sleep"
grep -q details-strict "$WORK/details-state/policies/snapshot.yaml" || fail "details' snapshot lacks its PeerAuthentication"
pass "details' snapshot holds its PeerAuthentication"

# Every connected proxy ACKed the version it was sent.
for _ in $(seq 1 400); do
  wl=$(ctl workload list -o json)
  if [ "$(echo "$wl" | jq '[.[] | select(.connected and .configVersion == .ackedVersion and .certState == "Available")] | length')" = 2 ]; then break; fi
  sleep 0.05
done
expect_eq "$(echo "$wl" | jq '[.[] | select(.connected and .configVersion == .ackedVersion)] | length')" 2 "workload list: both proxies connected and ACKed"
expect_eq "$(echo "$wl" | jq -r '.[] | select(.name == "details") | .spiffeId')" "$DETAILS_ID" "workload list: identity"
ctl workload list | grep -q "^default *details *$DETAILS_ID *yes *Available" || fail "workload list table: $(ctl workload list)"
pass "workload list table"

deny_paths deny-admin "app: details" "/admin/*" >"$WORK/deny.yaml"
ctl apply -f "$WORK/deny.yaml" >/dev/null || fail "apply deny-admin"
wait_status "http://127.0.0.1:$sleep_OUT/admin/x" 403
pass "AuthorizationPolicy DENY pushed: /admin/x 403"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "other paths still 200"
wait_for_line "$WORK/details-access.log" '"policy":"default/deny-admin"' >/dev/null
pass "access log names the pushed policy"

# The watcher saw: STRICT created, deny-admin created, and the next change (below).
# A bad apply (second document invalid) changes nothing.
before=$(ctl get all -A -o json)
cat >"$WORK/bad.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing-new, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/details/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: broken, namespace: default}
spec:
  action: MAYBE
YAML
rc=0
err=$(ctl apply -f "$WORK/bad.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a bad apply succeeded"
expect_contains "$err" "bad.yaml:13" "bad apply: the error names file and line"
after=$(ctl get all -A -o json)
expect_eq "$(echo "$after" | jq -c .)" "$(echo "$before" | jq -c .)" "bad apply: store and revision unchanged"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "bad apply: enforcement unchanged"

# get / delete round trip.
expect_contains "$(ctl get ap deny-admin -o yaml)" "name: deny-admin" "get -o yaml shows the stored document"
rc=0
ctl get ap no-such-policy >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "get of a missing resource succeeded"
pass "get of a missing resource fails"
ctl delete pa details-strict >/dev/null || fail "delete STRICT"
for _ in $(seq 1 100); do kill -0 "$WATCHER" 2>/dev/null || break; sleep 0.05; done
kill -0 "$WATCHER" 2>/dev/null && fail "the watcher did not see three changes: $(cat "$WORK/watch.out")"
expect_eq "$(grep -cE '^revision [0-9]+ ' "$WORK/watch.out")" 3 "watch: exactly three changes printed"
expect_contains "$(cat "$WORK/watch.out")" "peerauthentication/default/details-strict created" "watch: created"
expect_contains "$(cat "$WORK/watch.out")" "authorizationpolicy/default/deny-admin created" "watch: second apply"
expect_contains "$(cat "$WORK/watch.out")" "peerauthentication/default/details-strict deleted" "watch: deleted (the bad apply emitted nothing)"
wait_status "http://127.0.0.1:$details_IN/details/1" 200
pass "delete STRICT: plaintext accepted again"
ctl delete ap deny-admin >/dev/null || fail "delete deny-admin"
wait_status "http://127.0.0.1:$sleep_OUT/admin/x" 404
pass "delete deny-admin: /admin/x reaches the app again"

# Labels come from the registered Workload: changing them re-selects policies in the running proxy.
# tier_docs LABELS: a DENY for tier=backend, and the Workload details with LABELS.
tier_docs() { deny_paths deny-backend-status "tier: backend" "/status/*"; echo ---; workload_resource details details "$1"; }
tier_docs "app: details" >"$WORK/tier-deny.yaml"
ctl apply -f "$WORK/tier-deny.yaml" >/dev/null || fail "apply tier policy + Workload"
wait_for_line "$WORK/details-state/policies/snapshot.yaml" 'kind: Workload' >/dev/null
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/status/200")" 200 "DENY for tier=backend does not select details yet"
tier_docs "app: details, tier: backend" >"$WORK/tier-label.yaml"
ctl apply -f "$WORK/tier-label.yaml" >/dev/null || fail "relabel details"
wait_status "http://127.0.0.1:$sleep_OUT/status/200" 403
pass "Workload relabelled tier=backend: the running proxy enforces the DENY that now selects it"

# Each push reached details in memory, parsed once by its agent: the proxy parsed its policy file
# only at start-up (the bootstrap snapshot), never a push again from the file the agent wrote.
dump=$(curl -s --max-time 5 "http://127.0.0.1:$details_ADMIN/config_dump")
expect_eq "$(echo "$dump" | jq '.policy.loads.directory')" 1 "details read its policy file once, at start-up"
expect_eq "$(echo "$dump" | jq '.policy.loads.pushed >= 6')" true "details took the pushes in memory: $(echo "$dump" | jq -c .policy.loads)"
expect_eq "$(echo "$dump" | jq '.policy.loads.pushed')" "$(echo "$dump" | jq '.policy.version - 1')" "every push published once"

metrics=$(curl -s --max-time 5 "http://$CP_METRICS/metrics")
expect_contains "$metrics" 'meshguard_config_acks_total{result="ack"}' "control plane metrics: ACK counter"
expect_contains "$metrics" 'meshguard_push_ack_latency_milliseconds_count' "control plane metrics: push latency histogram"
echo "push: all checks passed"
