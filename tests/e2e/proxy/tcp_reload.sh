#!/usr/bin/env bash
# A policy reload re-judges live TCP connections: after a DENY for the source (ipBlocks) on one
# port's app port is applied, the open connection on that port is closed (logged, counted) and
# new ones are refused, while a live connection on another TCP port keeps working. The same for
# a WebSocket connection on an HTTP port: its upgrade request is judged again at each reload.
source "$(dirname "$0")/lib.sh"

start_app app APP
start_app app2 APP2
mkdir -p "$WORK/policies"
run_proxy proxy IN1='inbound[0]' IN2='inbound[1]' IN_HTTP='inbound[2]' ADMIN=admin <<YAML
workload: {name: db, namespace: default, serviceAccount: db, labels: {app: db}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: tcp}
  - {port: 0, address: 127.0.0.1, appPort: $APP2, protocol: tcp}
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0}
accessLog: $WORK/access.log
policyDir: $WORK/policies
workers: 2
YAML

# request FD PATH: one keep-alive HTTP request over the spliced connection; prints the status line.
request() {
  local fd="$1" path="$2" line=""
  printf 'GET %s HTTP/1.1\r\nHost: db\r\n\r\n' "$path" >&"$fd" || true
  IFS= read -r -t 10 -u "$fd" line || true
  while IFS= read -r -t 0.3 -u "$fd" _; do :; done || true
  printf '%s' "${line%$'\r'}"
}

exec 3<>"/dev/tcp/127.0.0.1/$IN1"
exec 4<>"/dev/tcp/127.0.0.1/$IN2"
# A WebSocket on the HTTP port: the 101, then the app echoes what is sent.
exec 5<>"/dev/tcp/127.0.0.1/$IN_HTTP"
printf 'GET /echo HTTP/1.1\r\nHost: db\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n' >&5
IFS= read -r -t 10 -u 5 line || true
expect_eq "${line%$'\r'}" "HTTP/1.1 101 Switching Protocols" "HTTP port: WebSocket upgrade spliced"
while IFS= read -r -t 10 -u 5 line && [ "$line" != $'\r' ]; do :; done
# echo_line TEXT: one line through the WebSocket; prints what came back.
echo_line() {
  local got=""
  printf '%s\n' "$1" >&5 || true
  IFS= read -r -t 10 -u 5 got || true
  printf '%s' "$got"
}
expect_eq "$(echo_line before)" "before" "WebSocket: bytes both ways"
expect_eq "$(request 3 /status/200)" "HTTP/1.1 200 OK" "TCP port 1: live connection works"
expect_eq "$(request 4 /status/200)" "HTTP/1.1 200 OK" "TCP port 2: live connection works"

put_file "$WORK/policies" deny-local.yaml <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-local-to-app2, namespace: default}
spec:
  action: DENY
  rules:
    - from: [{source: {ipBlocks: ["127.0.0.1/32"]}}]
      to: [{operation: {ports: ["$APP2"]}}]
YAML
wait_for_line "$WORK/proxy.err" 'closing TCP connection from 127\.0\.0\.1:[0-9]+ on inbound\[1\]: no longer allowed after policy version 2' >/dev/null
pass "the denied live connection is closed after the reload (logged)"
expect_eof 4 "port 2: the connection reads EOF (not a timeout)"
expect_eq "$(request 3 /status/201)" "HTTP/1.1 201 Created" "port 1: the still-allowed live connection keeps working"
expect_eq "$(echo_line after)" "after" "WebSocket: still allowed after the reload, still open"
exec 3<&- 3>&-
expect_contains "$(grep connection_closed_by_policy "$WORK/access.log")" '"policy":"default/deny-local-to-app2"' "access log names the deciding policy"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics")" \
  'meshguard_connections_closed_total{reason="policy_reload"} 1' "closes counted"
# New connections on port 2 are refused; port 1 still serves.
out=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$IN2"'; printf "GET /new-after-deny-marker HTTP/1.1\r\nHost: db\r\nConnection: close\r\n\r\n" >&3; cat <&3' 2>/dev/null || true)
expect_eq "$out" "" "port 2: a new connection is refused"
expect_not_contains "$(cat "$WORK/app2.out")" "new-after-deny-marker" "…and its bytes never reached the app"
expect_eq "$(http_status "http://127.0.0.1:$IN1/status/200")" 200 "port 1: new connections still allowed"

# A DENY that matches the WebSocket's upgrade request: the spliced connection is closed.
deny_paths deny-echo "" "/echo" | put_file "$WORK/policies" deny-echo.yaml
wait_for_line "$WORK/proxy.err" 'closing WebSocket connection from 127\.0\.0\.1:[0-9]+ on inbound\[2\]: no longer allowed after policy version 3' >/dev/null
pass "the WebSocket whose upgrade request is now denied is closed after the reload (logged)"
expect_eof 5 "WebSocket: the connection reads EOF (not a timeout)"
expect_contains "$(grep connection_closed_by_policy "$WORK/access.log" | grep '"protocol":"websocket"')" '"policy":"default/deny-echo"' "access log: the WebSocket close names the deciding policy"
expect_contains "$(wait_for_line "$WORK/access.log" '"path":"/echo"')" '"response_code_details":"upgrade_closed_by_policy_reload"' "access log: the upgrade's own line says how it ended"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics")" \
  'meshguard_connections_closed_total{reason="policy_reload"} 2' "both closes counted"
echo "PASS tcp_reload"
