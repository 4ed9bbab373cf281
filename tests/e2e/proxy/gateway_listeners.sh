#!/usr/bin/env bash
# A gateway's listeners follow its Gateway documents without a restart (issue 20): a Gateway added
# to the policyDir opens a listener (printed "listening gateway[i] ADDR:PORT" as at start-up) that
# serves its routes; removed, its port refuses connections and its idle connections are closed,
# the other listener unaffected; a port another process holds is a bind failure (logged, counted in
# meshguard_listener_bind_failures_total) that neither stops the other listeners nor the publish,
# and is tried again at the next publish; a listener id is never reused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/gateway_lib.sh"

make_gateway_mesh
backend ratings

# gateway_yaml NAME PORT HOST: a Gateway istio-system/NAME, one HTTP server on PORT for HOST, and
# the VirtualService sending HOST to ratings.
gateway_yaml() {
  cat <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: $1, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: $2, name: http, protocol: HTTP}
    hosts: ["$3"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: $1, namespace: default}
spec:
  hosts: ["$3"]
  gateways: [istio-system/$1]
  http:
  - route: [{destination: {host: ratings.internal}}]
YAML
}

cat >"$WORK/gw-policies/ratings.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.internal]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $RATINGS_IN}}]
  subjectAltNames: ["$RATINGS_ID"]
YAML
gateway_yaml first 0 first.test >"$WORK/gw-policies/first.yaml"

run_proxy gw FIRST='gateway[0]' ADMIN_GW=admin <<YAML
workload: {name: ingressgateway, namespace: istio-system, serviceAccount: istio-ingressgateway-service-account,
           labels: {istio: ingressgateway}, address: 127.0.0.1}
$(tls_yaml gateway)
admin: {port: 0}
accessLog: $WORK/gw-access.log
policyDir: $WORK/gw-policies
gateway: {credentialsDir: $WORK/creds}
YAML

# get HOST PORT PATH: the status of a plain HTTP request to the gateway (000: no HTTP answer).
get() { http_status "http://127.0.0.1:$2$3" -H "Host: $1"; }
# curl_exit PORT: curl's exit code for a request to PORT (7: connection refused).
curl_exit() {
  local rc=0
  curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$1/" || rc=$?
  echo "$rc"
}
# wait_refused PORT: polls (bounded: ~10 s) until connections to PORT are refused.
wait_refused() {
  local rc=""
  for _ in $(seq 1 200); do
    rc=$(curl_exit "$1")
    [ "$rc" = 7 ] && return 0
    sleep 0.05
  done
  fail "timed out waiting for port $1 to refuse connections (last curl exit: $rc)"
}
bind_failures() {
  curl -s --max-time 10 "http://127.0.0.1:$ADMIN_GW/metrics" |
    awk '/^meshguard_listener_bind_failures_total/ {n += $2} END {print n + 0}'
}

expect_eq "$(get first.test "$FIRST" /anything/1)" 200 "gateway[0] (started with it) routes first.test"

# 1. A second Gateway added to the policyDir: a new listener, printed as at start-up, serving its routes.
SECOND_PORT=$(free_port)
gateway_yaml second "$SECOND_PORT" second.test | put_file "$WORK/gw-policies" second.yaml
line=$(wait_for_line "$WORK/gw.out" '^listening gateway\[1\] ')
expect_eq "$line" "listening gateway[1] 127.0.0.1:$SECOND_PORT" "a Gateway added at run time: listening gateway[1]"
expect_eq "$(get second.test "$SECOND_PORT" /anything/2)" 200 "gateway[1] routes second.test to ratings"
expect_contains "$(cat "$WORK/ratings.out")" "/anything/2" "ratings' app served the request through gateway[1]"
expect_eq "$(get first.test "$FIRST" /anything/3)" 200 "gateway[0] still serves"
expect_eq "$(get second.test "$FIRST" /anything/3)" 404 "second.test is not bound to gateway[0]'s Gateway"
# /config_dump shows the new listener's routes (hosts → destinations); its access log says gateway.
routes=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN_GW/config_dump" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(json.dumps([l.get("routes") for l in d["listeners"] if l.get("name") == "gateway[1]"], separators=(",", ":"), sort_keys=True))')
expect_eq "$routes" '[[{"hosts":["second.test"],"http":[{"destinations":[{"host":"ratings.internal","weight":100}]}],"virtualService":"default/second"}]]' \
  "/config_dump: gateway[1]'s routes, second.test → ratings.internal"
expect_contains "$(grep '"/anything/2"' "$WORK/gw-access.log")" '"direction":"gateway"' "the gateway's access-log line says direction gateway"

# 2. Removed: the port refuses connections, an idle connection on it is closed; gateway[0] unaffected.
exec {idle}<>"/dev/tcp/127.0.0.1/$SECOND_PORT"
sleep 0.2  # accepted and registered as idle
rm -f "$WORK/gw-policies/second.yaml"
wait_refused "$SECOND_PORT"
pass "the Gateway removed: connections to its port are refused"
expect_eof "$idle" "an idle connection on the closed listener is closed (drained)"
wait_for_line "$WORK/gw.err" 'closed gateway\[1\] 127\.0\.0\.1:'"$SECOND_PORT" >/dev/null
expect_eq "$(get first.test "$FIRST" /anything/4)" 200 "gateway[0] unaffected by the removal"
expect_not_contains "$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN_GW/config_dump")" "127.0.0.1:$SECOND_PORT" \
  "/config_dump no longer lists the closed listener"

# 3. A port another process holds: a bind failure, counted; the listener opened in the same publish
# and gateway[0] serve; the publish stands (its routes are in force).
TAKEN_PORT=$(free_port)
start blocker python3 -c "
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', $TAKEN_PORT)); s.listen(1); print('bound', flush=True); time.sleep(600)"
wait_for_line "$WORK/blocker.out" '^bound$' >/dev/null
blocker_pid=$LAST_PID
before=$(bind_failures)
THIRD_PORT=$(free_port)
{ gateway_yaml taken "$TAKEN_PORT" taken.test; echo ---; gateway_yaml third "$THIRD_PORT" third.test; } |
  put_file "$WORK/gw-policies" third.yaml
line=$(wait_for_line "$WORK/gw.out" '^listening gateway\[3\] ')
expect_eq "$line" "listening gateway[3] 127.0.0.1:$THIRD_PORT" "the other new listener of the publish is bound"
expect_eq "$(bind_failures)" "$((before + 1))" "meshguard_listener_bind_failures_total counts the port in use"
expect_contains "$(cat "$WORK/gw.err")" "gateway[2] 127.0.0.1:$TAKEN_PORT" "the bind failure is logged with the listener and port"
expect_eq "$(get third.test "$THIRD_PORT" /anything/5)" 200 "gateway[3] serves"
expect_eq "$(get first.test "$FIRST" /anything/6)" 200 "gateway[0] still serves after the bind failure"

# The port freed, the next publish binds it, under the id it was planned with.
kill "$blocker_pid"
for _ in $(seq 1 100); do [ "$(curl_exit "$TAKEN_PORT")" = 7 ] && break; sleep 0.05; done
{ gateway_yaml first 0 first.test; echo "# edited: a publish"; } | put_file "$WORK/gw-policies" first.yaml
line=$(wait_for_line "$WORK/gw.out" '^listening gateway\[2\] ')
expect_eq "$line" "listening gateway[2] 127.0.0.1:$TAKEN_PORT" "the next publish binds the freed port (gateway[2])"
expect_eq "$(get taken.test "$TAKEN_PORT" /anything/7)" 200 "gateway[2] serves"

# 4. The second Gateway back: a new id (ids are never reused), gateway[0] still the same listener.
gateway_yaml second "$SECOND_PORT" second.test | put_file "$WORK/gw-policies" second.yaml
line=$(wait_for_line "$WORK/gw.out" '^listening gateway\[4\] ')
expect_eq "$line" "listening gateway[4] 127.0.0.1:$SECOND_PORT" "the Gateway back: a new id, gateway[4]"
expect_eq "$(get second.test "$SECOND_PORT" /anything/8)" 200 "gateway[4] routes second.test"
expect_eq "$(grep -c '^listening gateway\[0\] ' "$WORK/gw.out")" 1 "gateway[0] was bound once"
expect_eq "$(get first.test "$FIRST" /anything/9)" 200 "gateway[0] serves throughout"
