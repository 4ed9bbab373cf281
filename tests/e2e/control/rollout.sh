#!/usr/bin/env bash
# Issue 18 item 1: `apply --wait` returns once every connected proxy the change selects has ACKed
# it (and names the ones that have not, exit 1), and one version — the store revision — shows in
# `apply`, `workload list` and the proxy's /config_dump.
source "$(dirname "$0")/lib.sh"

start_control
start_details_and_sleep

# Both proxies in sync with the store before the change (their first snapshots ACKed).
out=$(ctl apply -f /dev/null --wait=10s 2>&1) || fail "apply --wait of nothing: $out"
pass "apply --wait with no change returns at once"

deny_paths deny-admin "app: details" "/admin/*" >"$WORK/deny.yaml"
out=$(ctl apply -f "$WORK/deny.yaml" --wait=20s) || fail "apply --wait: $out"
rev=$(echo "$out" | sed -nE 's/^revision ([0-9]+)$/\1/p')
[ -n "$rev" ] || fail "apply prints no revision: $out"
expect_contains "$out" "revision $rev: 1 of 2 connected proxies received it and ACKed" "apply --wait: details ACKed, sleep not selected"
# No polling: --wait returned after details' proxy ACKed, i.e. after the policy was in force.
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/admin/x")" 403 "the DENY is enforced when apply --wait returns"

wl=$(ctl workload list -o json)
expect_eq "$(echo "$wl" | jq -r '.[] | select(.name == "details") | .ackedRevision')" "$rev" "workload list: details enforces revision $rev"
expect_eq "$(echo "$wl" | jq -r '.[] | select(.name == "details") | .sync')" SYNCED "workload list: details SYNCED"
expect_eq "$(echo "$wl" | jq -r '.[] | select(.name == "sleep") | .sync')" SYNCED "workload list: sleep (not selected) SYNCED too"
sleep_rev=$(echo "$wl" | jq -r '.[] | select(.name == "sleep") | .ackedRevision')
[ "$sleep_rev" -lt "$rev" ] || fail "sleep's snapshot should predate revision $rev (it is not selected), got $sleep_rev"
pass "workload list: sleep keeps the snapshot of revision $sleep_rev"
ctl workload list | grep -qE "^default +details +$DETAILS_ID +yes +Available +[0-9A-F]+.* $rev +SYNCED " ||
  fail "workload list table lacks REVISION $rev SYNCED: $(ctl workload list)"
pass "workload list table: REVISION and SYNC"

dump=$(curl -s --max-time 5 "http://127.0.0.1:$details_ADMIN/config_dump")
expect_eq "$(echo "$dump" | jq -r '.controlPlane.revision')" "$rev" "details' /config_dump: controlPlane.revision $rev"
expect_eq "$(echo "$dump" | jq -r '.controlPlane.connected')" true "details' /config_dump: connected"
expect_eq "$(echo "$dump" | jq -r '.controlPlane.version')" \
  "$(echo "$wl" | jq -r '.[] | select(.name == "details") | .ackedVersion')" "config_dump's snapshot version is the ACKed one"

# A proxy that cannot answer (stopped) is named, with a non-zero exit, when the wait times out.
deny_paths deny-sleep "app: sleep" "/never" >"$WORK/deny-sleep.yaml"
kill -STOP "$sleep_PID"
rc=0
out=$(ctl apply -f "$WORK/deny-sleep.yaml" --wait=2s 2>&1) || rc=$?
kill -CONT "$sleep_PID"
expect_eq "$rc" 1 "apply --wait=2s exits 1 when a selected proxy does not ACK"
rev2=$(echo "$out" | sed -nE 's/^revision ([0-9]+)$/\1/p')
expect_contains "$out" "revision $rev2 is not in force on 1 of 2 connected proxies (timed out)" "the timeout says how many"
expect_contains "$out" "default/sleep (pushed, not ACKed)" "the timeout names the proxy"
expect_not_contains "$out" "default/details" "details (not selected) is not waited for"

# Once it runs again it ACKs: re-applying the unchanged file with --wait succeeds.
out=$(ctl apply -f "$WORK/deny-sleep.yaml" --wait=20s 2>&1) || fail "apply --wait after resume: $out"
expect_contains "$out" "policy/default/deny-sleep unchanged" "re-apply: unchanged"
dump=$(curl -s --max-time 5 "http://127.0.0.1:$sleep_ADMIN/config_dump")
expect_eq "$(echo "$dump" | jq -r '.controlPlane.revision')" "$rev2" "sleep's /config_dump: revision $rev2"

rc=0
out=$(ctl apply -f "$WORK/deny.yaml" --wait=forever 2>&1) || rc=$?
expect_eq "$rc" 1 "a bad --wait duration is refused"
expect_contains "$out" "--wait:" "the error names --wait"
echo "PASS: rollout"
