#!/usr/bin/env bash
# Issue 18 item 8: a proxy whose stream ended is listed as disconnected (CONNECTED no) for the
# grace period (`meshguard-control --forget-disconnected`), then dropped from `workload list`; a
# registered Workload stays listed (it is configuration), without its proxy's state; at the next
# change the forgotten proxies' metric series leave /metrics too (a long-lived control plane does
# not keep one for every workload it ever saw).
source "$(dirname "$0")/lib.sh"

CONTROL_ARGS=(--forget-disconnected 3s)
start_control
workload_resource ratings ratings "app: ratings" >"$WORK/ratings.yaml"
ctl apply -f "$WORK/ratings.yaml" >/dev/null || fail "register ratings"
start_app app APP
start_workload details details "$APP"   # connects with a token, never registered
start_workload ratings ratings "$APP"   # registered

# state NAME: "connected", "disconnected" or "absent" as `workload list -o json` shows NAME.
state() {
  ctl workload list -o json | jq -r --arg n "$1" \
    'map(select(.name == $n)) | if length == 0 then "absent" elif .[0].connected then "connected" else "disconnected" end'
}
# wait_state NAME STATE: bounded (~15 s).
wait_state() {
  local s=""
  for _ in $(seq 1 150); do
    s=$(state "$1")
    [ "$s" = "$2" ] && return 0
    sleep 0.1
  done
  fail "$1: expected $2, still $s"
}
wait_state details connected
wait_state ratings connected
pass "both proxies connected"

revision_series() { curl -s --max-time 5 "http://$CP_METRICS/metrics" | grep "^meshguard_proxy_config_revision{" || true; }
# wait_series PATTERN present|absent: bounded (~15 s).
wait_series() {
  for _ in $(seq 1 150); do
    if revision_series | grep -q "$1"; then [ "$2" = present ] && return 0
    else [ "$2" = absent ] && return 0; fi
    sleep 0.1
  done
  fail "series $1: expected $2; /metrics has: $(revision_series)"
}
wait_series 'workload="default/details"' present
pass "an ACKing proxy has its config revision series"

kill -TERM "$details_PID" "$ratings_PID"
wait_state details disconnected
pass "a proxy whose stream ended is listed as disconnected"
expect_contains "$(ctl workload list)" "details" "the table still shows details while in the grace period"
expect_contains "$(ctl workload list -o json | jq -r '.[] | select(.name == "details") | .lastSeen')" "T" "with when it was last seen"

wait_state details absent
pass "dropped after the grace period (--forget-disconnected 3s)"
json=$(ctl workload list -o json)
expect_eq "$(jq -r '.[] | select(.name == "ratings") | .registered' <<<"$json")" true "the registered Workload stays listed"
expect_eq "$(jq -r '.[] | select(.name == "ratings") | .lastSeen' <<<"$json")" null "without its proxy's state"

# The next change erases the forgotten records, and their series with them.
ctl apply -f - >/dev/null <<'YAML' || fail "apply a change"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nudge, namespace: other}
spec: {}
YAML
wait_series 'workload="default/details"' absent
wait_series 'workload="default/ratings"' absent
pass "the forgotten proxies' meshguard_proxy_config_revision series are gone from /metrics"

# It comes back when it reconnects.
start_proxy details
wait_state details connected
pass "a dropped proxy is listed again once it reconnects"
wait_series 'workload="default/details"' present
pass "with its series back once it ACKs"

expect_contains "$("$CONTROL_BIN" --help)" "--forget-disconnected" "the flag is in --help"
expect_contains "$("$CONTROL_BIN" --help | grep -A2 -- '--forget-disconnected')" "5m" "with its default"
echo "PASS: forget"
