#!/usr/bin/env bash
# OPAPolicy through the control plane: `meshguardctl apply` stores it and pushes it to the proxy it
# selects (sleep -> details over mTLS, the policy sees the caller's SPIFFE ID); a policy changed
# with apply under a bounded keep-alive load flips the decision with zero failed requests; a
# module that does not compile is refused at apply with file:line:col and changes nothing.
source "$(dirname "$0")/lib.sh"

start_control
start_details_and_sleep

# opa_policy NAME ALLOWED_PREFIX: an OPAPolicy for app=details allowing GETs under the prefix,
# from sleep's identity only.
opa_policy() {
  cat <<YAML
apiVersion: meshguard.io/v1alpha1
kind: OPAPolicy
metadata: {name: $1, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  data:
    allowed_prefix: "$2"
  policy: |
    package envoy.authz

    default allow := false

    allow if {
      input.attributes.source.principal == "spiffe://cluster.local/ns/default/sa/sleep"
      input.attributes.request.http.method == "GET"
      startswith(input.attributes.request.http.path, data.allowed_prefix)
    }
YAML
}

URL="http://127.0.0.1:$sleep_OUT"
opa_policy details-opa /status >"$WORK/opa.yaml"
out=$(ctl apply -f "$WORK/opa.yaml") || fail "apply OPAPolicy: $out"
expect_contains "$out" "opapolicy/default/details-opa created" "apply prints the OPAPolicy it created"
wait_status "$URL/details/1" 403
pass "OPAPolicy pushed: /details/1 denied"
expect_eq "$(http_status "$URL/status/200")" 200 "OPAPolicy pushed: /status/200 allowed (caller's SPIFFE ID in the input)"
grep -q "kind: OPAPolicy" "$WORK/details-state/policies/snapshot.yaml" || fail "details' snapshot lacks the OPAPolicy"
if grep -q details-opa "$WORK/sleep-state/policies/snapshot.yaml"; then fail "sleep received an OPAPolicy for app=details"; fi
pass "only the selected workload received the OPAPolicy"
expect_contains "$(ctl get opa details-opa -o yaml)" "name: details-opa" "get opa shows the stored document"
wait_for_line "$WORK/details-access.log" '"policy":"default/details-opa"' >/dev/null
pass "access log names the OPAPolicy"

# A module that does not compile: apply refused with file:line:col, nothing changes.
before=$(ctl get all -A -o json)
sed 's/data.allowed_prefix)/allowed)/' "$WORK/opa.yaml" >"$WORK/broken.yaml"
rc=0
err=$(ctl apply -f "$WORK/broken.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "an OPAPolicy that does not compile was applied"
expect_contains "$err" "broken.yaml:16:7:" "broken module: the error names the file's line"
expect_contains "$err" "rego_unsafe_var_error" "broken module: OPA's error code"
expect_eq "$(ctl get all -A -o json | jq -c .)" "$(echo "$before" | jq -c .)" "broken module: store unchanged"
expect_eq "$(http_status "$URL/status/200")" 200 "broken module: enforcement unchanged"

# Under load (40 curl processes x 5 keep-alive requests), the allowed prefix moves from /status to
# /details: /status/200 flips from 200 to 403 exactly once and no request fails.
( for i in $(seq 1 40); do
    if [ "$i" -eq 26 ]; then
      for _ in $(seq 1 200); do [ -e "$WORK/flipped" ] && break; sleep 0.05; done
    fi
    curl -s -w '%{http_code}\n' --max-time 10 -o /dev/null "$URL/status/200" -o /dev/null "$URL/status/200" \
      -o /dev/null "$URL/status/200" -o /dev/null "$URL/status/200" -o /dev/null "$URL/status/200" || echo "curl-exit-$?"
  done >"$WORK/load.txt" ) &
LOAD=$!
PIDS+=("$LOAD")
wait_for_count "$WORK/load.txt" '.' 50
opa_policy details-opa /details >"$WORK/opa2.yaml"
ctl apply -f "$WORK/opa2.yaml" >/dev/null || fail "apply the changed OPAPolicy"
wait_status "$URL/details/1" 200
touch "$WORK/flipped"
for _ in $(seq 1 600); do kill -0 "$LOAD" 2>/dev/null || break; sleep 0.05; done
kill -0 "$LOAD" 2>/dev/null && fail "load loop did not finish within 30 s"
wait "$LOAD" || true
total=$(wc -l <"$WORK/load.txt")
ok=$(grep -cx 200 "$WORK/load.txt" || true)
denied=$(grep -cx 403 "$WORK/load.txt" || true)
expect_eq "$total" 200 "200 responses recorded"
expect_eq "$((ok + denied))" 200 "every response is 200 or 403 (no connection error, no 5xx)"
[ "$ok" -ge 50 ] || fail "expected ≥50 allowed before the change, got $ok"
[ "$denied" -ge 75 ] || fail "expected ≥75 denied after the change, got $denied"
expect_eq "$(uniq "$WORK/load.txt" | wc -l)" 2 "the decision flipped exactly once ($ok allowed, then $denied denied)"
pass "OPAPolicy changed with apply under load: new decision, zero failed requests"
echo "opa: all checks passed"
