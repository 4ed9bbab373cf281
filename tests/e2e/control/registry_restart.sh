#!/usr/bin/env bash
# Issue 16: the service registry across control-plane restarts. A client calls a service by name
# while the control plane restarts (SIGTERM, then kill -9); the replicas cannot reconnect for a
# while (their control-plane connections run through a relay the test cuts), and in the second
# round one dies while the control plane is down. The registrations were kept in the store and restored, live for the
# endpoint grace: the client, reconnecting first, is sent the replicas that have not reconnected
# yet instead of an empty endpoint set, and no request by name fails (no 503 UH). A restored
# replica that never reconnects leaves after the grace, as a disconnected one does.
source "$(dirname "$0")/lib.sh"
RELAY_PY="$(dirname "$0")/tcp_relay.py"

# Long enough that the client reconnects and sends its requests well within it on a loaded
# machine; nothing below measures it.
CONTROL_ARGS=(--endpoint-grace 15s)
start_control
CP_PORT="${CP_ADDR##*:}"
start_app app APP

cat >"$WORK/service.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, targetPort: $APP}]
YAML
ctl apply -f "$WORK/service.yaml" >/dev/null || fail "apply Service"

# start_relay PORT: the relay from 127.0.0.1:PORT (0: any) to the control plane; sets RELAY_PORT, RELAY_PID.
start_relay() {
  start relay python3 "$RELAY_PY" "$1" "$CP_ADDR"
  RELAY_PID="$LAST_PID"
  RELAY_PORT=$(port_of "$WORK/relay.out" '^listening ')
}
stop_pid() {
  kill "-$1" "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null || true
}

# start_replica NAME [CONTROL_ADDR]: a proxy labelled app=details in front of the shared app.
start_replica() {
  local name="$1" saved="$CP_ADDR"
  ctl token create --namespace default --service-account details --ttl 10m >"$WORK/$name.token" || fail "token for $name"
  cat >"$WORK/$name.yaml" <<YAML
workload: {name: $name, namespace: default, serviceAccount: details, labels: {app: details}}
accessLog: $WORK/$name-access.log
workers: 1
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0, address: 127.0.0.1}
YAML
  CP_ADDR="${2:-$CP_ADDR}"
  start_proxy "$name"
  CP_ADDR="$saved"
}

endpoints_rows() { ctl get endpoints 2>/dev/null | awk 'NR > 1 && $2 == "details"'; }
# wait_rows REGEX COUNT: polls (bounded: ~30 s) until COUNT rows of endpoints_rows match REGEX.
wait_rows() {
  local rows
  for _ in $(seq 1 600); do
    rows=$(endpoints_rows)
    [ "$(echo "$rows" | grep -cE "$1")" = "$2" ] && return 0
    sleep 0.05
  done
  fail "endpoints: wanted $2 rows matching [$1]; last: $rows"
}
# connected NAME: whether the control plane has NAME's stream and NAME ACKed what it was sent.
connected() {
  ctl workload list -o json 2>/dev/null |
    jq -e --arg n "$1" '.[] | select(.name == $n and .connected and .configVersion != "" and .configVersion == .ackedVersion)' >/dev/null
}
wait_connected() {
  for _ in $(seq 1 600); do
    connected "$1" && return 0
    sleep 0.05
  done
  fail "$1 never reconnected and ACKed"
}
count() {
  local n
  n=$(grep -c '"method":"GET"' "$WORK/$1-access.log" 2>/dev/null) || true
  echo "${n:-0}"
}
# by_name N WHAT: N requests by name through sleep's outbound listener; every one must be 200.
by_name() {
  local i code bad=""
  for i in $(seq 1 "$1"); do
    code=$(http_status "$OUT/details/$i" -H "Host: details")
    [ "$code" = 200 ] || bad+=" #$i:$code"
  done
  [ -z "$bad" ] || fail "$2: requests by name not 200:$bad"
  pass "$2: $1 requests by name, all 200"
}

start_relay 0
start_replica details1 "127.0.0.1:$RELAY_PORT"
start_replica details2 "127.0.0.1:$RELAY_PORT"
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
OUT="http://127.0.0.1:$sleep_OUT"
wait_rows "^default +details +details[12] .* true$" 2
wait_connected sleep
wait_status "$OUT/details/0" 200 -H "Host: details"
by_name 20 "before any restart"

# Round 1: SIGTERM. Both replicas are cut off from the control plane (not from their clients)
# until the client has reconnected and sent its requests: without the restored registrations the
# client would be sent no endpoint for details and answer 503 (UH). The relay goes after the
# control plane: a stream that ends while the control plane runs is a proxy leaving (restored
# unhealthy, as it was).
stop_pid TERM "$CP_PID"
stop_pid TERM "$RELAY_PID"
pass "control plane stopped (SIGTERM); the replicas' way back to it cut"
start_control "$CP_PORT"
grep -q "restored 3 registrations" "$WORK/control.err" || fail "no restore logged: $(cat "$WORK/control.err")"
wait_connected sleep
connected details1 && fail "details1 reconnected although its relay is down"
connected details2 && fail "details2 reconnected although its relay is down"
b1=$(count details1)
by_name 60 "restarted, sleep reconnected, the replicas not yet"
wait_rows "^default +details +details[12] .* true$" 2
pass "restarted: both replicas listed healthy before they reconnected (restored)"
[ "$(count details1)" -gt "$b1" ] || fail "the restored details1 received none of the 60 requests"
pass "the restored endpoint received traffic ($(( $(count details1) - b1 )) of 60)"
start_relay "$RELAY_PORT"
wait_connected details1
wait_connected details2
by_name 20 "the replicas reconnected"

# Round 2: kill -9, and details2 dies while the control plane is down: restored, it is dialled
# and refused (the client retries on details1 and ejects it), then leaves after the grace.
stop_pid KILL "$CP_PID"
stop_pid TERM "$RELAY_PID"
stop_pid KILL "$details2_PID"
pass "control plane killed (-9); details2 killed meanwhile, details1 cut off"
start_control "$CP_PORT"
wait_connected sleep
wait_rows "^default +details +details[12] .* true$" 2
by_name 60 "after kill -9: details1 cut off, details2 dead"
start_relay "$RELAY_PORT"
wait_connected details1
wait_rows "^default +details +details1 .* true$" 1
for _ in $(seq 1 900); do
  endpoints_rows | grep -q details2 || break
  sleep 0.05
done
endpoints_rows | grep -q details2 && fail "details2 (never reconnected) still listed well past the grace: $(endpoints_rows)"
wait_rows "^default +details +details" 1
pass "details2, restored but never back, left after the grace; details1 stays"
b1=$(count details1)
by_name 20 "after details2 left"
expect_eq "$(( $(count details1) - b1 ))" 20 "every request went to details1"
