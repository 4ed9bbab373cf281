#!/usr/bin/env bash
# policyDir hot reload: (a) a policy changed under a bounded keep-alive load flips the decision
# with zero failed requests (every response 200 before, 403 after, never a connection error);
# (c) a broken policy file keeps the last good policy enforced, /config_dump shows lastError,
# fixing it recovers; the access log carries the action of a "no ALLOW matched" denial and the
# dry-run outcome.
source "$(dirname "$0")/lib.sh"

start_app app APP
mkdir -p "$WORK/policies"
deny_paths deny-admin "" "/admin/*" | put_file "$WORK/policies" deny.yaml
run_details_proxy "$APP" "workers: 2"
dump() { curl -s --max-time 10 "http://127.0.0.1:$ADMIN/config_dump"; }
metrics() { curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics"; }

expect_eq "$(http_status "$BASE/status/200")" 200 "start: /status/200 allowed"
expect_eq "$(http_status "$BASE/admin/x")" 403 "start: /admin/x denied"
d=$(dump)
expect_contains "$d" '"version": 1' "config_dump: policy version 1"
expect_contains "$d" '"origin": "'"$WORK"'/policies/deny.yaml:' "config_dump: origin file:line"
expect_contains "$d" '"mtlsMode": "DISABLE"' "no tls section, no PeerAuthentication: DISABLE"
hash1=$(echo "$d" | sed -nE 's/^    "hash": "([0-9a-f]+)",?$/\1/p')
[ ${#hash1} -eq 64 ] || fail "no content hash in config_dump: $d"
pass "config_dump: content hash $hash1"

# (a) 60 curl processes × 5 keep-alive requests = 300 requests; the policy changes after ~100.
# Past request 200 the loop waits (bounded) for the reload to be logged, so that however slow
# the machine, the last 100 requests run under the new policy.
( for i in $(seq 1 60); do
    if [ "$i" -eq 41 ]; then
      for _ in $(seq 1 200); do [ -e "$WORK/reloaded" ] && break; sleep 0.05; done
    fi
    curl -s -w '%{http_code}\n' --max-time 10 -o /dev/null "$BASE/status/200" -o /dev/null "$BASE/status/200" \
      -o /dev/null "$BASE/status/200" -o /dev/null "$BASE/status/200" -o /dev/null "$BASE/status/200" || echo "curl-exit-$?"
  done >"$WORK/load.txt" ) &
LOAD=$!
wait_for_count "$WORK/load.txt" '.' 100
deny_paths deny-status "" "/status/*" | put_file "$WORK/policies" deny.yaml
wait_for_line "$WORK/proxy.err" 'policy reloaded: version 2' >/dev/null
touch "$WORK/reloaded"
for _ in $(seq 1 600); do kill -0 "$LOAD" 2>/dev/null || break; sleep 0.05; done
kill -0 "$LOAD" 2>/dev/null && fail "load loop did not finish within 30 s"
wait "$LOAD" || true
total=$(wc -l <"$WORK/load.txt")
ok=$(grep -cx 200 "$WORK/load.txt" || true)
denied=$(grep -cx 403 "$WORK/load.txt" || true)
expect_eq "$total" 300 "300 responses recorded"
expect_eq "$((ok + denied))" 300 "every response is 200 or 403 (no connection error, no 5xx)"
[ "$ok" -ge 100 ] || fail "expected ≥100 allowed before the change, got $ok"
[ "$denied" -ge 100 ] || fail "expected ≥100 denied after the change, got $denied"
# Sequential requests: once denied, never allowed again.
flips=$(uniq "$WORK/load.txt" | wc -l)
expect_eq "$flips" 2 "the decision flipped exactly once ($ok allowed, then $denied denied)"
pass "decisions flipped under keep-alive load with zero failed requests"
expect_eq "$(http_status "$BASE/admin/x")" 404 "the old DENY rule is gone (/admin/x reaches the app: its 404)"
d=$(dump)
expect_contains "$d" '"version": 2' "config_dump: policy version 2"
expect_contains "$d" '"name": "default/deny-status"' "config_dump names the policy in force"
expect_not_contains "$d" "$hash1" "config_dump: content hash changed"
expect_contains "$(metrics)" 'meshguard_config_reload_total{resource="policy",result="success"} 1' "reload success counted"

# (c) A broken file: the last good policy stays enforced; the error is visible; fixing recovers.
broken_policy | put_file "$WORK/policies" broken.yaml
wait_for_line "$WORK/proxy.err" 'policy reload failed, keeping version 2: .*broken\.yaml:[0-9]+' >/dev/null
pass "one clear log line with file:line"
expect_eq "$(http_status "$BASE/status/200")" 403 "broken directory: last good policy still enforced"
d=$(dump)
expect_contains "$d" '"lastError": "policy.bad_yaml: '"$WORK"'/policies/broken.yaml:' "config_dump: lastError with file:line"
expect_contains "$d" '"version": 2' "config_dump: still version 2"
expect_contains "$(metrics)" 'meshguard_config_reload_total{resource="policy",result="error"} 1' "reload error counted"
sleep 0.6  # a few more polls: the same broken content is not reported again
expect_eq "$(grep -c 'policy reload failed' "$WORK/proxy.err")" 1 "the error is logged once"
put_file "$WORK/policies" broken.yaml <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-ip, namespace: default}
spec:
  action: ALLOW
  rules: [{to: [{operation: {paths: ["/ip", "/headers"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-deny-headers
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/headers"]}}]}]
YAML
wait_for_line "$WORK/proxy.err" 'policy reloaded: version 3' >/dev/null
d=$(dump)
expect_contains "$d" '"lastError": null' "fixed: lastError cleared"
expect_contains "$d" '"version": 3' "fixed: version 3"
expect_eq "$(http_status "$BASE/ip")" 200 "fixed: the new ALLOW policy is in force"
expect_eq "$(http_status "$BASE/status/200")" 403 "fixed: DENY still in force"
expect_eq "$(http_status "$BASE/details/1")" 403 "no ALLOW matched → 403"
wait_for_line "$WORK/access.log" '"path":"/details/1"' >/dev/null
line=$(grep '"path":"/details/1"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"action":"ALLOW"' "no-ALLOW-match denial logged with action ALLOW"
expect_eq "$(http_status "$BASE/headers")" 200 "dry-run DENY does not deny"
wait_for_line "$WORK/access.log" '"path":"/headers"' >/dev/null
line=$(grep '"path":"/headers"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"dry_run":false' "access log: the dry-run outcome (would have been denied)"
expect_contains "$line" '"dry_run_policy":"default/dry-deny-headers"' "access log: the dry-run policy"
expect_contains "$(metrics)" 'meshguard_authz_decisions_total{action="DRY_RUN",policy="default/dry-deny-headers",result="denied",dry_run="true"} 1' "dry-run outcome counted"

# Deleting every file is a valid (empty) policy set: everything is allowed again.
# (The two unlinks may straddle a directory poll: a version with one file left may come first.)
rm -f "$WORK/policies/deny.yaml" "$WORK/policies/broken.yaml"
wait_for_line "$WORK/proxy.err" 'policy reloaded: version [45], 0 resource' >/dev/null
expect_eq "$(http_status "$BASE/status/200")" 200 "empty policy directory: allowed"
echo "PASS reload"
