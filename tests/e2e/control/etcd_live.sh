#!/usr/bin/env bash
# Live service endpoints merged across control-plane replicas on etcd (docs/ETCD.md, "Live
# endpoints"): three replicas on one etcd; two proxies backing Service default/details connect to
# DIFFERENT replicas (1 and 2) and a client proxy to the third, which has no backend of its own.
# Replica 3's `get endpoints` and the client's pushed snapshot hold both backends, and calls by name
# reach both. Foreign or lying entries under live/ are ignored with a log line. A backend's
# departure at replica 2 (its grace period over) is pushed to the client at replica 3. Replica 1 is
# killed: its live keys vanish with its lease, its backend moves to replica 3 and stays reachable
# by name. Skipped (exit 77) without etcd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd_lib.sh"

start_etcd_cluster
"$CTL_BIN" ca init --dir "$WORK/cacerts" --trust-domain cluster.local >/dev/null || fail "ca init"
REPLICA_FLAGS=(--endpoint-grace 2s)
start_replica 1
start_replica 2
start_replica 3
pass "three control-plane replicas on etcd"
export MESHGUARD_SERVER="$R1" MESHGUARD_ADMIN_DIR="$WORK/replica1/admin"
DATA="$WORK/plug"  # start_proxy's --ca-bundle: $DATA/ca/root-cert.pem
mkdir -p "$DATA/ca" && cp "$WORK/cacerts/root-cert.pem" "$DATA/ca/root-cert.pem"

start_app app APP
cat >"$WORK/service.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, targetPort: $APP}]
YAML
on 1 apply -f "$WORK/service.yaml" >/dev/null || fail "apply the Service through replica 1"
wait_listed 3 "name: details" services details -n default

# live_keys: the keys under /meshguard/live/ (read through etcd's JSON gateway), one a line.
live_keys() {
  local out
  out=$(curl -s --max-time 5 -X POST "http://127.0.0.1:${CLIENT[0]}/v3/kv/range" \
    -d "{\"key\": \"$(printf /meshguard/live/ | base64 -w0)\", \"range_end\": \"$(printf /meshguard/live0 | base64 -w0)\", \"keys_only\": true}") ||
    fail "etcd range live/"
  jq -r '.kvs[]?.key' <<<"$out" | while read -r k; do printf '%s\n' "$k" | base64 -d; echo; done
}

# etcd_put KEY VALUE: writes through etcd's JSON gateway (what another tool with write access could do).
etcd_put() {
  curl -sf --max-time 5 -X POST "http://127.0.0.1:${CLIENT[0]}/v3/kv/put" \
    -d "{\"key\": \"$(printf '%s' "$1" | base64 -w0)\", \"value\": \"$(printf '%s' "$2" | base64 -w0)\"}" >/dev/null ||
    fail "etcd put $1"
}

# start_backend NAME CONTROL-PLANES: a proxy of service account details labelled app=details in
# front of the app, connected to CONTROL-PLANES (the first one first); sets NAME_IN, NAME_PID.
start_backend() {
  local name="$1"
  CP_ADDR="$2"
  on 1 token create --namespace default --service-account details --ttl 10m >"$WORK/$name.token" || fail "token for $name"
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

# endpoint_rows N: `get endpoints` rows of default/details through replica N (no header).
endpoint_rows() { on "$1" get endpoints 2>/dev/null | awk 'NR > 1 && $2 == "details"' || true; }

# wait_rows N REGEX...: polls (bounded: ~10 s) until replica N lists exactly one row per REGEX.
wait_rows() {
  local n="$1" rows ok re
  shift
  for _ in $(seq 1 200); do
    rows=$(endpoint_rows "$n")
    ok=1
    for re in "$@"; do grep -qE "$re" <<<"$rows" || ok=0; done
    [ "$ok" = 1 ] && [ "$(grep -c . <<<"$rows")" = "$#" ] && return 0
    sleep 0.05
  done
  fail "replica $n never listed endpoints [$*]; last: $rows"
}

# 1. One backend at replica 1, one at replica 2 (each with replica 3 as its fallback).
start_backend details1 "$R1,$R3"
start_backend details2 "$R2,$R3"
ID=spiffe://cluster.local/ns/default/sa/details
ep1="details1 +9080->127\.0\.0\.1:$details1_IN +$ID +true"
ep2="details2 +9080->127\.0\.0\.1:$details2_IN +$ID +true"
wait_rows 3 "$ep1" "$ep2"
pass "replica 3, with no backend connected to it, lists both (identity as each replica verified it)"
wait_rows 1 "$ep1" "$ep2"
wait_rows 2 "$ep1" "$ep2"
pass "replicas 1 and 2 list each other's backend too"
keys=$(live_keys)
expect_eq "$(grep -c '/default/details[12]$' <<<"$keys")" 2 "one live key per backend in etcd"
r1_port=${R1##*:}
grep -qE "^/meshguard/live/[^/]+:$r1_port#[0-9a-f]+/default/details1$" <<<"$keys" ||
  fail "details1's key is not under replica 1's id: $keys"
value=$(etcd_get "$(grep '/default/details1$' <<<"$keys")")
expect_eq "$(jq -r '.spiffeId + " " + (.healthy | tostring)' <<<"$value")" "$ID true" \
  "the entry carries the SPIFFE ID replica 1 verified, healthy"

# 1b. A workload's name belongs to the identity connected with it on every replica: another
# service account of the namespace cannot take details1 (connected at replica 1) over at replica 2.
on 1 token create --namespace default --service-account intruder --ttl 10m >"$WORK/squatter.token" ||
  fail "token for the squatter"
sed -e 's/serviceAccount: details/serviceAccount: intruder/' -e 's/name: details2/name: details1/' \
  -e 's/details2-access/squatter-access/' "$WORK/details2.yaml" >"$WORK/squatter.yaml"
start squatter "$PROXY_BIN" --config "$WORK/squatter.yaml" --control-plane "$R2" \
  --ca-bundle "$DATA/ca/root-cert.pem" --token-file "$WORK/squatter.token" --state-dir "$WORK/squatter-state" \
  --bootstrap-timeout 20
SQUATTER_PID=$LAST_PID
wait_for_line "$WORK/squatter.err" \
  "hello.name_in_use: workload default/details1 is connected at another replica as $ID" >/dev/null
kill "$SQUATTER_PID" 2>/dev/null || true
wait_rows 2 "$ep1" "$ep2"
wait_rows 3 "$ep1" "$ep2"
pass "another identity's Hello for a name connected at another replica is refused (hello.name_in_use)"

# 2. The client at replica 3 calls the service by name: both backends answer.
CP_ADDR="$R3"
on 1 token create --namespace default --service-account sleep --ttl 10m >"$WORK/sleep.token" || fail "token for sleep"
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
  grep -q "endpointPort: $details1_IN" "$SNAP" 2>/dev/null && grep -q "endpointPort: $details2_IN" "$SNAP" && break
  sleep 0.05
done
grep -q "endpointPort: $details1_IN" "$SNAP" && grep -q "endpointPort: $details2_IN" "$SNAP" ||
  fail "the client's snapshot (from replica 3) lacks a backend: $(cat "$SNAP" 2>/dev/null)"
pass "the client's snapshot pushed by replica 3 holds both backends"
OUT="http://127.0.0.1:$sleep_OUT"
wait_status "$OUT/status/200" 200 -H "Host: details:9080"

# count NAME: requests backend NAME's proxy logged.
count() {
  local n
  n=$(grep -c '"method":"GET"' "$WORK/$1-access.log" 2>/dev/null) || true
  echo "${n:-0}"
}
b1=$(count details1)
b2=$(count details2)
N=60
for i in $(seq 1 $N); do
  code=$(http_status "$OUT/details/$i" -H "Host: details")
  [ "$code" = 200 ] || fail "request $i by name: $code"
done
for _ in $(seq 1 100); do
  [ $(($(count details1) - b1 + $(count details2) - b2)) -ge $N ] && break
  sleep 0.05
done
n1=$(($(count details1) - b1))
n2=$(($(count details2) - b2))
echo "over $N requests by name: details1 (replica 1) $n1, details2 (replica 2) $n2"
expect_eq "$((n1 + n2))" "$N" "every request reached a backend"
[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || fail "a backend got none of $N requests: details1=$n1 details2=$n2"
pass "calls by name from replica 3's client reach the backends of replicas 1 and 2"

# 3. Entries that are not a replica's honest report are ignored, with a log line, never a crash:
# a key outside the layout, junk, and a record whose SPIFFE ID is not its service account's.
etcd_put /meshguard/live/stray "junk"
etcd_put /meshguard/live/cp-x:1#00/default/junk '{"name": '
lying=$(jq -c --arg a 127.0.0.1 --argjson p "$details1_IN" \
  '{name: "evil", namespace: "default", serviceAccount: "details", labels: {app: "details"}, address: $a,
    inbound: [{port: $p, appPort: '"$APP"', protocol: "http"}], spiffeId: "spiffe://cluster.local/ns/default/sa/admin", healthy: true}' <<<'{}')
etcd_put /meshguard/live/cp-x:1#00/default/evil "$lying"
for n in 1 2 3; do
  wait_for_line "$WORK/replica$n.err" "live endpoints: ignoring /meshguard/live/cp-x:1#00/default/evil: registry.bad_live_entry" >/dev/null
  wait_for_line "$WORK/replica$n.err" "live endpoints: ignoring /meshguard/live/stray" >/dev/null
  wait_for_line "$WORK/replica$n.err" "live endpoints: ignoring /meshguard/live/cp-x:1#00/default/junk" >/dev/null
done
pass "malformed and lying live entries: each replica logs and ignores them"
for n in 1 2 3; do
  pid="R${n}_PID"
  kill -0 "${!pid}" 2>/dev/null || fail "replica $n died"
  wait_rows "$n" "$ep1" "$ep2"
done
pass "every replica still up, listing just the two honest backends"

# 4. details2 stops: replica 2 lists it unhealthy, then (its 2 s grace over) deletes its key; the
# client at replica 3 is pushed the departure.
kill -KILL "$details2_PID"
wait_rows 3 "$ep1"
for _ in $(seq 1 200); do
  grep -q "endpointPort: $details2_IN" "$SNAP" || break
  sleep 0.05
done
grep -q "endpointPort: $details2_IN" "$SNAP" && fail "the client's snapshot still lists details2"
pass "a backend leaving replica 2 is pushed to the client at replica 3"
for i in $(seq 1 10); do
  expect_eq "$(http_status "$OUT/details/$i" -H "Host: details")" 200 "by name with details2 gone ($i)" >/dev/null
done

# 5. Replica 1 dies: its live keys vanish with its lease (TTL 5 s); details1 moves to replica 3,
# which publishes it again; calls by name keep reaching it.
(
  for i in $(seq 1 80); do
    http_status "$OUT/details/$i" -H "Host: details"
    echo
    sleep 0.05
  done
) >"$WORK/load.txt" &
LOAD=$!
before=$(count details1)
kill -KILL "$R1_PID"
wait "$R1_PID" 2>/dev/null || true
pass "replica 1 killed (-9) under load"
wait_for_line "$WORK/details1.err" "moving from control plane $R1" >/dev/null
gone=0
for _ in $(seq 1 300); do
  keys=$(live_keys)
  if ! grep -qE "^/meshguard/live/[^/]+:$r1_port#" <<<"$keys"; then gone=1; break; fi
  sleep 0.1
done
[ "$gone" = 1 ] || fail "replica 1's live keys outlived its lease: $keys"
pass "replica 1's live keys vanished with its lease"
r3_port=${R3##*:}
for _ in $(seq 1 200); do
  grep -qE "^/meshguard/live/[^/]+:$r3_port#[0-9a-f]+/default/details1$" <<<"$(live_keys)" && break
  sleep 0.05
done
grep -qE "^/meshguard/live/[^/]+:$r3_port#[0-9a-f]+/default/details1$" <<<"$(live_keys)" ||
  fail "replica 3 did not publish details1: $(live_keys)"
wait_rows 2 "$ep1"
pass "details1 moved to replica 3, which publishes it; replica 2 lists it"
wait "$LOAD"
failed=$(grep -vc '^200$' "$WORK/load.txt" || true)
echo "requests by name while replica 1 died: $(grep -c . "$WORK/load.txt") sent, $failed not 200"
for i in $(seq 1 200); do
  code=$(http_status "$OUT/details/$i" -H "Host: details")
  [ "$code" = 200 ] && [ "$(count details1)" -gt "$before" ] && break
  sleep 0.05
done
[ "$(count details1)" -gt "$before" ] || fail "details1 unreachable by name after replica 1 died"
expect_eq "$(http_status "$OUT/status/200" -H "Host: details")" 200 "details reachable by name after replica 1 died"
