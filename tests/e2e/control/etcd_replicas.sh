#!/usr/bin/env bash
# Control-plane replicas on etcd (docs/ETCD.md): a three-member etcd cluster and three
# meshguard-control replicas sharing it (--store etcd://...), all on 127.0.0.1. A policy applied
# through one replica is seen through another and pushed to proxies connected to a third; two
# stale applies at once give one conflict and no lost update; the replica the proxies talk to is
# killed and they move to another (no new certificate), still serving requests and taking later
# policies, and a new proxy bootstraps past the dead replica; the etcd leader is killed and writes
# resume. Skipped (exit 77) without etcd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd_lib.sh"

start_etcd_cluster

# One operator CA every replica plugs in.
"$CTL_BIN" ca init --dir "$WORK/cacerts" --trust-domain cluster.local >/dev/null || fail "ca init"

start_replica 1
start_replica 2
start_replica 3
pass "three control-plane replicas on etcd"
[ ! -e "$WORK/replica1/store.db" ] && [ ! -e "$WORK/replica1/token-key.pem" ] && [ ! -e "$WORK/replica1/ca" ] ||
  fail "a replica on etcd kept shared state in its data dir: $(ls "$WORK/replica1")"
pass "the data dir keeps only the replica's own identities ($(ls "$WORK/replica1" | tr '\n' ' '))"
# The shared token-signing key is in etcd sealed, never in clear (read through etcd's JSON gateway).
token_key=$(etcd_get /meshguard/shared/token-key)
case "$token_key" in
  mg-sealed-v1:*) pass "the shared token key is sealed in etcd" ;;
  *) fail "the shared token key in etcd is not sealed: ${token_key:0:40}" ;;
esac

# The proxies bootstrap with tokens minted by replica 2 through replica 1 (first in their list).
start_mesh_via "$R1,$R2,$R3"

# 1. Apply through replica 2: seen through replica 3, enforced by proxies connected to replica 1.
deny_paths deny-admin "app: details" "/admin/*" >"$WORK/deny.yaml"
on 2 apply -f "$WORK/deny.yaml" >"$WORK/apply1.txt" || fail "apply through replica 2"
rev1=$(sed -n 's/^revision //p' "$WORK/apply1.txt")
wait_listed 3 "name: deny-admin" ap deny-admin -n default
pass "applied through replica 2 (revision $rev1), listed through replica 3"
wait_status "http://127.0.0.1:$sleep_OUT/admin/x" 403
pass "applied through replica 2, enforced by proxies connected to replica 1"

# 2. Two admins edit the same policy from revision rev1 and apply at once through two replicas.
sed 's|/admin/\*|/edit-a/*|' "$WORK/deny.yaml" >"$WORK/edit-a.yaml"
sed 's|/admin/\*|/edit-b/*|' "$WORK/deny.yaml" >"$WORK/edit-b.yaml"
(rc=0; on 2 apply -f "$WORK/edit-a.yaml" --if-revision "$rev1" >"$WORK/a.out" 2>&1 || rc=$?; echo "$rc" >"$WORK/a.rc") &
A=$!
(rc=0; on 3 apply -f "$WORK/edit-b.yaml" --if-revision "$rev1" >"$WORK/b.out" 2>&1 || rc=$?; echo "$rc" >"$WORK/b.rc") &
B=$!
wait "$A" "$B"
rc_a=$(cat "$WORK/a.rc") rc_b=$(cat "$WORK/b.rc")
if [ "$rc_a" = 0 ] && [ "$rc_b" != 0 ]; then
  winner=edit-a loser=b
elif [ "$rc_a" != 0 ] && [ "$rc_b" = 0 ]; then
  winner=edit-b loser=a
else
  fail "two stale applies: expected exactly one to succeed, exit codes $rc_a $rc_b ($(cat "$WORK/a.out" "$WORK/b.out"))"
fi
grep -q "store.conflict" "$WORK/$loser.out" || fail "the losing apply did not say conflict: $(cat "$WORK/$loser.out")"
wait_listed 1 "/$winner/" ap deny-admin -n default
stored=$(on 1 get ap deny-admin -n default -o yaml)
expect_contains "$stored" "/$winner/" "two stale applies: one conflict, the winner's edit stored"
expect_not_contains "$stored" "/admin/" "two stale applies: no lost update (the base is gone)"
wait_status "http://127.0.0.1:$sleep_OUT/$winner/x" 403
on 2 apply -f "$WORK/deny.yaml" >/dev/null || fail "re-apply the base"
wait_status "http://127.0.0.1:$sleep_OUT/admin/x" 403

# 2b. delete -f of several documents is one etcd transaction: one missing → nothing deleted;
# --ignore-not-found deletes the rest at one revision (seen through another replica).
for n in x1 x2 x3; do
  printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: scratch}\nspec: {}\n---\n' "$n"
done >"$WORK/multi.yaml"
on 2 apply -f "$WORK/multi.yaml" >/dev/null || fail "apply multi.yaml"
on 2 delete ap x1 -n scratch >/dev/null || fail "delete x1"
rc=0
err=$(on 3 delete -f "$WORK/multi.yaml" 2>&1) || rc=$?
expect_eq "$rc" 1 "etcd: delete -f with one document missing: exit 1"
expect_contains "$err" "authorizationpolicy/scratch/x1 not found" "etcd: the missing one named"
wait_listed 1 "name: x3" ap x3 -n scratch
expect_contains "$(on 1 get ap -n scratch -o name)" "/x2" "etcd: delete -f with one missing deleted nothing"
out=$(on 3 delete -f "$WORK/multi.yaml" --ignore-not-found) || fail "delete -f --ignore-not-found"
expect_contains "$out" "authorizationpolicy/scratch/x2 deleted" "etcd: x2 deleted"
expect_contains "$out" "authorizationpolicy/scratch/x3 deleted" "etcd: x3 deleted"
expect_eq "$(grep -c '^revision ' <<<"$out")" 1 "etcd: one revision for both"
for _ in $(seq 1 200); do
  [ "$(on 1 get ap -n scratch 2>&1)" = "No resources found in scratch namespace." ] && break
  sleep 0.05
done
expect_eq "$(on 1 get ap -n scratch 2>&1)" "No resources found in scratch namespace." "etcd: both gone, seen through replica 1"

# 3. Kill the replica the proxies talk to, under load: they move on; requests keep being served.
bootstraps_before=$(cat "$WORK/sleep.err" "$WORK/details.err" | grep -c "bootstrapped\|renewed" || true)
(
  for i in $(seq 1 60); do
    http_status "http://127.0.0.1:$sleep_OUT/details/$i"
    echo
    sleep 0.05
  done
) >"$WORK/load.txt" &
LOAD=$!
sleep 0.3
kill -KILL "$R1_PID"
wait "$R1_PID" 2>/dev/null || true
pass "replica 1 killed (-9) under load"
wait_for_line "$WORK/sleep.err" "moving from control plane $R1" >/dev/null
wait_for_line "$WORK/details.err" "moving from control plane $R1" >/dev/null
for _ in $(seq 1 200); do
  n=$(on 2 workload list -o json 2>/dev/null | jq '[.[] | select(.connected)] | length' 2>/dev/null || echo 0)
  [ "$n" = 2 ] && break
  sleep 0.05
done
expect_eq "$n" 2 "both proxies reconnected to replica 2"
deny_paths deny-status "app: details" "/status/*" >"$WORK/status.yaml"
on 3 apply -f "$WORK/status.yaml" >/dev/null || fail "apply through replica 3"
wait_status "http://127.0.0.1:$sleep_OUT/status/200" 403
pass "a policy applied through replica 3 reaches the proxies now on replica 2"
wait "$LOAD"
total=$(grep -c . "$WORK/load.txt")
ok=$(grep -c '^200$' "$WORK/load.txt" || true)
expect_eq "$ok/$total" "60/60" "requests served while the proxies moved replicas"
bootstraps_after=$(cat "$WORK/sleep.err" "$WORK/details.err" | grep -c "bootstrapped\|renewed" || true)
expect_eq "$bootstraps_after" "$bootstraps_before" "moving replicas issued no new certificate"
# A new workload bootstraps with replica 1 (first in its list) gone: its token, minted by replica
# 2, is taken by the next replica.
start_workload late late "$APP"
grep -q "moving from control plane $R1" "$WORK/late.err" || fail "late did not move past replica 1"
grep -q "bootstrapped spiffe://cluster.local/ns/default/sa/late" "$WORK/late.err" || fail "late did not bootstrap"
expect_eq "$(http_status "http://127.0.0.1:$late_IN/status/200")" 200 \
  "a proxy bootstrapped (token of replica 2) past the dead replica 1 serves"

# 4. Kill the etcd leader: writes resume once the other two have elected one.
leader=""
for _ in $(seq 1 100); do
  for i in 0 1 2; do
    # Read whole, then matched: grep -q closing the pipe early would fail curl under pipefail.
    metrics=$(curl -s --max-time 2 "http://127.0.0.1:${CLIENT[$i]}/metrics" || true)
    grep -q '^etcd_server_is_leader 1' <<<"$metrics" && leader=$i
  done
  [ -n "$leader" ] && break
  sleep 0.05
done
[ -n "$leader" ] || fail "no etcd leader found"
kill -KILL "${ETCD_PIDS[$leader]}"
wait "${ETCD_PIDS[$leader]}" 2>/dev/null || true
pass "etcd leader (member $leader) killed (-9)"
deny_paths deny-headers "app: details" "/headers" >"$WORK/headers.yaml"
on 2 apply -f "$WORK/headers.yaml" >/dev/null || fail "apply after the etcd leader was killed"
pass "writes resume after the etcd election"
wait_listed 3 "name: deny-headers" ap deny-headers -n default
wait_status "http://127.0.0.1:$sleep_OUT/headers" 403
pass "the write made after the election reaches the proxies"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/61")" 200 "mesh requests still served after the etcd election"
