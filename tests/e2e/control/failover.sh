#!/usr/bin/env bash
# Fail static and durability: with the control plane killed (-9) traffic and policies keep working,
# a proxy restarted meanwhile enforces its persisted snapshot and certificate, the proxies resync
# when the control plane returns, and every acknowledged apply survives a kill -9 mid-stream.
source "$(dirname "$0")/lib.sh"

start_control
start_details_and_sleep

{ peer_strict details-strict "app: details"; echo ---; deny_paths deny-admin "app: details" "/admin/*"; } >"$WORK/policies.yaml"
ctl apply -f "$WORK/policies.yaml" >/dev/null || fail "apply"
wait_status "http://127.0.0.1:$sleep_OUT/admin/x" 403
wait_refused "$details_IN" || fail "STRICT not in force"
pass "policies in force before the outage"

CP_PORT="${CP_ADDR##*:}"
kill -KILL "$CP_PID"
wait "$CP_PID" 2>/dev/null || true
pass "control plane killed (-9)"

ok=0
for i in $(seq 1 20); do
  [ "$(http_status "http://127.0.0.1:$sleep_OUT/details/$i")" = 200 ] && ok=$((ok + 1))
done
expect_eq "$ok" 20 "control plane down: 20/20 mesh requests still 200"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/admin/x")" 403 "control plane down: DENY still enforced"
plaintext_refused "$details_IN" || fail "control plane down: STRICT no longer enforced"
pass "control plane down: STRICT still enforced"

# Restart details' proxy while the control plane is away: it must come up from its state dir.
kill -TERM "$details_PID"
wait "$details_PID" 2>/dev/null || true
rm -f "$WORK/details.token"  # no way to bootstrap again: only the persisted SVID can serve
start_proxy details
pass "details' proxy restarted with the control plane down (persisted SVID + snapshot)"
wait_refused "$details_IN" || fail "restarted proxy: STRICT not enforced from the persisted snapshot"
pass "restarted proxy: STRICT enforced from the persisted snapshot"
# sleep's route still points at the old port: re-point it by restarting sleep (also from its state).
kill -TERM "$sleep_PID"
wait "$sleep_PID" 2>/dev/null || true
sed -i -E "s/destination: \"127\.0\.0\.1:[0-9]+\"/destination: \"127.0.0.1:$details_IN\"/" "$WORK/sleep.yaml"
start_proxy sleep
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "restarted proxies: mesh request 200"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/admin/x")" 403 "restarted proxy: DENY enforced from the persisted snapshot"

# The control plane returns on the same address: proxies reconnect and take new policies.
start_control "$CP_PORT"
for _ in $(seq 1 200); do
  n=$(ctl workload list -o json 2>/dev/null | jq '[.[] | select(.connected)] | length' 2>/dev/null || echo 0)
  [ "$n" = 2 ] && break
  sleep 0.05
done
expect_eq "$n" 2 "control plane back: both proxies reconnected"
deny_paths deny-status "app: details" "/status/*" >"$WORK/teapot.yaml"
ctl apply -f "$WORK/teapot.yaml" >/dev/null || fail "apply after restart"
wait_status "http://127.0.0.1:$sleep_OUT/status/200" 403
pass "control plane back: a new policy is enforced"

# kill -9 during a stream of applies: every apply that was acknowledged is there after restart.
CP_PORT="${CP_ADDR##*:}"
(
  for i in $(seq 1 60); do
    printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: stream-%s, namespace: stream}\nspec:\n  action: ALLOW\n  rules: [{to: [{operation: {paths: ["/p%s"]}}]}]\n' "$i" "$i" |
      "$CTL_BIN" apply -f - 2>/dev/null | grep ' created$' || true
  done
) >"$WORK/acked.txt" &
APPLIER=$!
for _ in $(seq 1 200); do
  [ "$(wc -l <"$WORK/acked.txt")" -ge 10 ] && break
  sleep 0.02
done
kill -KILL "$CP_PID"
wait "$APPLIER" 2>/dev/null || true
acked=$(wc -l <"$WORK/acked.txt")
[ "$acked" -ge 10 ] || fail "only $acked applies acknowledged before the kill"
[ "$acked" -lt 60 ] || fail "the kill came after every apply: nothing was tested"
pass "control plane killed (-9) after $acked acknowledged applies"
start_control "$CP_PORT"
stored=$(ctl get ap -n stream -o json | jq -r '.items[].metadata.name' | sort)
missing=0
while read -r line; do
  name=$(echo "$line" | sed -E 's#^authorizationpolicy/stream/([a-z0-9-]+) created$#\1#')
  echo "$stored" | grep -qx "$name" || { echo "missing after restart: $name" >&2; missing=$((missing + 1)); }
done <"$WORK/acked.txt"
expect_eq "$missing" 0 "every acknowledged apply ($acked) is in the store after kill -9 and restart"
echo "failover: all checks passed"
