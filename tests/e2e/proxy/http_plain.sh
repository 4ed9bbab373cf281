#!/usr/bin/env bash
# client → inbound proxy (plaintext, DISABLE) → app: forwarding, keep-alive, pipelining, chunked
# bodies, limits (431, 400, slowloris), TCP splice, admin endpoints, config errors, drain.
source "$(dirname "$0")/lib.sh"

start_app app APP

# A config with an unknown field is refused with file:line.
cat >"$WORK/bad.yaml" <<YAML
workload: {name: details, namespace: default, serviceAccount: details}
inbound:
  - port: 0
    appPort: $APP
    protocl: http
YAML
if "$PROXY_BIN" --config "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1; then fail "a config with an unknown field was accepted"; fi
expect_contains "$(cat "$WORK/bad.out")" "bad.yaml:5: unknown field 'protocl' in inbound[0]" "unknown config field rejected with file:line"

run_proxy proxy IN='inbound[0]' TCP='inbound[1]' ADMIN=admin <<YAML
workload:
  name: details
  namespace: default
  serviceAccount: details
  labels: {app: details}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: DISABLE}
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: tcp, mtlsMode: DISABLE}
admin: {port: 0}
accessLog: $WORK/access.log
workers: 2
limits: {headerTimeoutMs: 300, maxHeaderBytes: 8192, maxHeaders: 50, drainTimeoutMs: 500}
YAML
PROXY_PID=$LAST_PID
BASE="http://127.0.0.1:$IN"

expect_contains "$(curl -s --max-time 10 "$BASE/details/1")" '"author": "William Shakespeare"' "GET /details/1 through the proxy"
expect_eq "$(http_status "$BASE/status/503")" 503 "app status codes pass through"
headers=$(curl -s --max-time 10 -H 'X-Forwarded-Client-Cert: By=evil' -H 'X-Keep: yes' "$BASE/headers")
expect_not_contains "$headers" "By=evil" "client-supplied x-forwarded-client-cert is removed"
expect_contains "$headers" '"X-Keep": "yes"' "ordinary headers are forwarded"

both=$(curl -sv --max-time 10 "$BASE/ip" "$BASE/details/2" 2>&1)
expect_contains "$both" "Re-using existing connection" "keep-alive to the client"
expect_contains "$both" '"id": 2' "second request on the kept-alive connection"

printf 'GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: a\r\n\r\nGET /details/7 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$WORK/pipelined"
out=$(raw_exchange "$IN" "$WORK/pipelined")
expect_contains "$out" "HTTP/1.1 201 Created" "pipelined request 1"
expect_contains "$out" "HTTP/1.1 202 Accepted" "pipelined request 2"
expect_contains "$out" '"id": 7' "pipelined request 3"

head -c 200000 /dev/urandom | base64 -w0 >"$WORK/body"
size=$(stat -c %s "$WORK/body")
expect_contains "$(curl -s --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/body" "$BASE/anything")" "\"length\": $size" "chunked request body (${size} bytes) arrives whole"
expect_contains "$(curl -s --max-time 10 --data-binary @"$WORK/body" "$BASE/anything")" "\"length\": $size" "Content-Length request body arrives whole"
expect_eq "$(curl -s --max-time 10 "$BASE/stream/20" | wc -l | tr -d ' ')" 20 "chunked response relayed"
expect_contains "$(curl -s --max-time 10 -H 'Expect: 100-continue' --data-binary @"$WORK/body" "$BASE/anything")" "\"length\": $size" "Expect: 100-continue"

big=$(head -c 9000 /dev/zero | tr '\0' a)
expect_eq "$(http_status "$BASE/ip" -H "X-Big: $big")" 431 "oversized header block → 431"
many=()
for i in $(seq 1 60); do many+=(-H "X-H$i: v"); done
expect_eq "$(http_status "$BASE/ip" "${many[@]}")" 431 "too many headers → 431"

printf 'POST /anything/smuggled HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' >"$WORK/smuggle"
out=$(raw_exchange "$IN" "$WORK/smuggle")
expect_contains "$out" "HTTP/1.1 400 Bad Request" "Content-Length + Transfer-Encoding → 400"
printf 'POST /anything HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n' >"$WORK/badchunk"
out=$(raw_exchange "$IN" "$WORK/badchunk")
expect_contains "$out" "400 Bad Request" "bad chunk size → 400"
printf 'GET /folded HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n' >"$WORK/fold"
expect_contains "$(raw_exchange "$IN" "$WORK/fold")" "HTTP/1.1 400 Bad Request" "obs-fold → 400"
expect_not_contains "$(cat "$WORK/app.out")" "/anything/smuggled" "a smuggling attempt never reached the app"
expect_not_contains "$(cat "$WORK/app.out")" "/folded" "an obs-fold request never reached the app"

# Slowloris: half a head, then silence. The proxy must close the connection on its own; the
# 10 s `timeout` only bounds the test (status 124 would mean the proxy never closed it).
set +e
timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$IN"'; printf "GET /ip HTTP/1.1\r\nHost: a\r\n" >&3; cat <&3' >"$WORK/slow.out"
status=$?
set -e
[ "$status" -ne 124 ] || fail "slow client was not disconnected"
[ ! -s "$WORK/slow.out" ] || fail "slow client got a response: $(cat "$WORK/slow.out")"
pass "slow client disconnected after the header timeout"

# TCP port: bytes spliced both ways.
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$TCP/details/3")" '"id": 3' "TCP splice to the app"

# Admin.
expect_eq "$(http_status "http://127.0.0.1:$ADMIN/healthz/ready")" 200 "/healthz/ready"
metrics=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics")
expect_contains "$metrics" 'istio_requests_total{reporter="destination",source_workload="unknown",source_canonical_service="unknown",source_canonical_revision="unknown",source_workload_namespace="unknown",source_principal="unknown",source_app="unknown",source_version="unknown",destination_workload="details",destination_workload_namespace="default",destination_principal="unknown",destination_app="details",destination_version="unknown",destination_service="details.default.svc.cluster.local",destination_canonical_service="details",destination_canonical_revision="latest",destination_service_name="details",destination_service_namespace="default",request_protocol="http",response_code="431"' "istio_requests_total counts 431s"
expect_contains "$metrics" 'response_code="200",response_flags="-",connection_security_policy="none",grpc_response_status=""}' "istio_requests_total counts 200s"
expect_contains "$metrics" 'istio_tcp_connections_opened_total{' "TCP connections counted"
expect_contains "$metrics" 'meshguard_authz_decisions_total{action="NONE",policy="none",result="allowed",dry_run="false"}' "authz decisions counted"
dump=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/config_dump")
expect_contains "$dump" '"serviceAccount": "details"' "/config_dump shows the workload"
expect_contains "$dump" '"mtlsMode": "DISABLE"' "/config_dump shows listeners"
expect_contains "$dump" '"state": "None"' "/config_dump shows certificate state"

log=$(cat "$WORK/access.log")
expect_contains "$log" '"path":"/details/1"' "access log has the request"
expect_contains "$log" '"status":431' "access log has the 431"
expect_contains "$log" '"policy":null' "access log policy field (null without policies)"
expect_contains "$log" '"protocol":"tcp"' "access log has the TCP connection"
# Every line is one JSON object with the documented keys (the writer is hand-written).
jq -e . "$WORK/access.log" >/dev/null || fail "access log is not valid JSON lines: $log"
keys=$(grep '"path":"/details/1"' "$WORK/access.log" | head -n 1 | jq -c 'keys_unsorted')
expect_eq "$keys" '["time","direction","protocol","source","destination","method","host","path","status","response_flags","response_code_details","action","policy","rule","audit","dry_run","dry_run_policy","reason","duration_ms","bytes_received","bytes_sent"]' "access log HTTP line keys"
line=$(grep '"path":"/details/1"' "$WORK/access.log" | head -n 1)
expect_eq "$(jq -c '[.direction, .protocol, .method, .status, .destination.appPort, .audit, .action, .rule]' <<<"$line")" \
  "[\"inbound\",\"http\",\"GET\",200,$APP,false,null,null]" "access log HTTP line values"
tcp_keys=$(grep '"protocol":"tcp"' "$WORK/access.log" | head -n 1 | jq -c 'keys_unsorted')
expect_eq "$tcp_keys" '["time","direction","protocol","source","destination","response_flags","action","policy","rule","audit","dry_run","dry_run_policy","reason","duration_ms","bytes_received","bytes_sent"]' "access log TCP line keys"

# maxConnections: with the only slot taken, the next connection is closed unanswered.
run_proxy limited LIMITED='inbound[0]' LIMITED_ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0}
accessLog: $WORK/limited-access.log
workers: 1
limits: {maxConnections: 1}
YAML
exec 5<>/dev/tcp/127.0.0.1/"$LIMITED"
for _ in $(seq 1 100); do
  curl -s --max-time 10 "http://127.0.0.1:$LIMITED_ADMIN/config_dump" | grep -q '"activeConnections": 1' && break
  sleep 0.05
done
expect_eq "$(http_status "http://127.0.0.1:$LIMITED/ip")" 000 "connection over maxConnections is refused"
exec 5>&-
wait_status "http://127.0.0.1:$LIMITED/ip" 200
pass "a slot freed by a closed connection is reused"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$LIMITED_ADMIN/metrics")" 'meshguard_connections_refused_total{direction="inbound",reason="max_connections"}' "refusal counted"

# Graceful drain: SIGTERM with an idle keep-alive HTTP connection (closed at once) and a busy TCP
# connection (cut at the drain timeout) open → exits 0.
exec 4<>/dev/tcp/127.0.0.1/"$IN"
exec 6<>/dev/tcp/127.0.0.1/"$TCP"
printf 'GET /ip HTTP/1.1\r\nHost: a\r\n\r\n' >&6
kill -TERM "$PROXY_PID"
exited=0
for _ in $(seq 1 100); do
  if ! kill -0 "$PROXY_PID" 2>/dev/null; then exited=1; break; fi
  sleep 0.1
done
exec 4>&-
exec 6>&-
[ "$exited" = 1 ] || fail "proxy did not exit after SIGTERM"
wait "$PROXY_PID" && pass "proxy drained and exited 0 on SIGTERM" || fail "proxy exit status $?"
expect_contains "$(cat "$WORK/proxy.err")" "drain timeout: closing 1 connection(s)" "drain cut the busy TCP connection at the drain timeout"
echo "PASS http_plain"
