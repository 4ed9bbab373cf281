#!/usr/bin/env bash
# Istio's TCP metadata exchange between two proxies: a TCP route's client proxy offers ALPN
# istio-peer-exchange, the server proxy selects it, each writes one metadata frame before the
# app's bytes, and both label istio_tcp_* (and their TCP access-log lines) with the other's
# workload. A peer that does not offer (openssl s_client) or does not select it (a foreign TLS
# server) works as before with the labels unknown; a stalled or malformed frame closes the
# connection with a clear log line, on either side, and nothing reaches the app.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

make_mesh_svids
start_app app APP
start plain python3 "$(dirname "$0")/mesh_tls_peer.py" plain "$WORK/details.pem" "$WORK/details.key" "$WORK/mesh-ca.pem"
PLAIN=$(port_of "$WORK/plain.out" '^listening on 127\.0\.0\.1:[0-9]+$')
start badframe python3 "$(dirname "$0")/mesh_tls_peer.py" badframe "$WORK/details.pem" "$WORK/details.key" "$WORK/mesh-ca.pem"
BADFRAME=$(port_of "$WORK/badframe.out" '^listening on 127\.0\.0\.1:[0-9]+$')

run_proxy server S_TCP='inbound[0]' S_HTTP='inbound[1]' S_ADMIN=admin <<YAML
workload: {name: details-v1, namespace: default, serviceAccount: details, labels: {app: details, version: v1}}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: tcp, mtlsMode: STRICT}
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: STRICT}
admin: {port: 0}
accessLog: $WORK/server-access.log
limits: {headerTimeoutMs: 1000}
workers: 2
YAML

run_proxy client C_TCP='outbound[0]' C_TO_HTTP='outbound[1]' C_PLAIN='outbound[2]' C_BADFRAME='outbound[3]' \
  C_ADMIN=admin <<YAML
workload: {name: productpage-v3, namespace: default, serviceAccount: productpage, labels: {app: productpage, version: v3}}
$(tls_yaml productpage)
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_TCP", identities: ["$DETAILS"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_HTTP", identities: ["$DETAILS"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$PLAIN", identities: ["$DETAILS"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$BADFRAME", identities: ["$DETAILS"]}
admin: {port: 0}
accessLog: $WORK/client-access.log
workers: 1
YAML

# metric_line ADMIN_PORT NAME REGEX: the first line of metric NAME matching REGEX ("" when none).
metric_line() {
  curl -s --max-time 10 "http://127.0.0.1:$1/metrics" | grep -E "^$2\{" | grep -m1 -E "$3" || true
}

# Both sides' workloads, through a TCP route to a TCP port.
for i in 1 2 3; do
  expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_TCP/details/$i")" "\"id\": $i" "TCP over mTLS with the exchange ($i)"
done
src_labels='source_workload="productpage-v3",source_canonical_service="productpage",source_canonical_revision="v3",source_workload_namespace="default",source_principal="'"$PRODUCTPAGE"'",source_app="productpage",source_version="v3"'
dst_labels='destination_workload="details-v1",destination_workload_namespace="default",destination_principal="'"$DETAILS"'",destination_app="details",destination_version="v1"'
for metric in istio_tcp_connections_opened_total istio_tcp_sent_bytes_total istio_tcp_received_bytes_total; do
  line=$(metric_line "$S_ADMIN" "$metric" "reporter=\"destination\",$src_labels,$dst_labels")
  [ -n "$line" ] || fail "server: no $metric with the client's workload labels in: $(metric_line "$S_ADMIN" "$metric" .)"
  [ "${line##* }" -gt 0 ] || fail "server: $metric is 0: $line"
  line=$(metric_line "$C_ADMIN" "$metric" "reporter=\"source\",$src_labels,$dst_labels")
  [ -n "$line" ] || fail "client: no $metric with the server's workload labels in: $(metric_line "$C_ADMIN" "$metric" .)"
  [ "${line##* }" -gt 0 ] || fail "client: $metric is 0: $line"
done
pass "istio_tcp_connections_opened_total / sent / received carry both workloads on both sides"
expect_contains "$(metric_line "$S_ADMIN" istio_tcp_connections_opened_total "reporter=\"destination\",$src_labels")" '} 3' "server: three connections opened, one series"
wait_for_line "$WORK/server-access.log" '"protocol":"tcp".*"workload":"productpage-v3","namespace":"default"' >/dev/null
pass "server access log: the TCP line names the source workload"
wait_for_line "$WORK/client-access.log" '"destination":\{"address":"[^"]*","namespace":"default","principal":"[^"]*","workload":"details-v1"\}.*"protocol":"tcp"' >/dev/null
pass "client access log: the TCP line names the destination workload"

# A TCP route to an HTTP port: the server's request metrics take the source from the exchange.
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_TO_HTTP/details/4")" '"id": 4' "TCP route to an HTTP port"
[ -n "$(metric_line "$S_ADMIN" istio_requests_total "reporter=\"destination\",$src_labels")" ] ||
  fail "server: istio_requests_total lacks the exchanged source labels: $(metric_line "$S_ADMIN" istio_requests_total .)"
pass "HTTP over a TCP route: istio_requests_total has the source workload from the TCP exchange"

# A client without the exchange (no ALPN): works, its workload unknown.
printf 'GET /details/7 HTTP/1.1\r\nHost: details\r\nConnection: close\r\n\r\n' >"$WORK/request"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$S_TCP" -cert "$WORK/productpage.pem" -key "$WORK/productpage.key" \
  -CAfile "$WORK/mesh-ca.pem" -quiet <"$WORK/request" 2>/dev/null || true)
expect_contains "$out" '"id": 7' "a client offering no ALPN still reaches the app"
[ -n "$(metric_line "$S_ADMIN" istio_tcp_connections_opened_total "reporter=\"destination\",source_workload=\"unknown\",.*source_principal=\"$PRODUCTPAGE\"")" ] ||
  fail "server: no unknown-workload series for the client without the exchange"
pass "without the exchange the source workload is unknown (principal kept)"

# A destination that does not select the ALPN: the bytes flow as before, its workload unknown.
expect_eq "$(curl -s --max-time 10 "http://127.0.0.1:$C_PLAIN/x")" "plain peer" "a server without the exchange is reached as before"
[ -n "$(metric_line "$C_ADMIN" istio_tcp_connections_opened_total "reporter=\"source\",.*destination_workload=\"unknown\",.*destination_principal=\"$DETAILS\"")" ] ||
  fail "client: no unknown-workload series for the server without the exchange"
pass "client: the destination without the exchange is labelled unknown"

# Malformed frames close the connection, logged, never reaching the app.
printf 'GET /badframe-marker HTTP/1.1\r\nHost: details\r\nConnection: close\r\n\r\n' >"$WORK/bad-request"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:$S_TCP" -alpn istio-peer-exchange -cert "$WORK/productpage.pem" \
  -key "$WORK/productpage.key" -CAfile "$WORK/mesh-ca.pem" -quiet <"$WORK/bad-request" 2>/dev/null | tr -d '\000' || true)
expect_not_contains "$out" "HTTP/1.1" "server: app bytes in place of the frame get no answer"
wait_for_line "$WORK/server.err" "inbound connection from 127\.0\.0\.1:[0-9]+ \($PRODUCTPAGE\) on port [0-9]+ closed: peer_exchange\.bad_magic" >/dev/null
pass "server: the malformed frame is logged (bad magic)"
# A client that selects the exchange and then says nothing: closed at the header timeout.
(sleep 4) | timeout 10 openssl s_client -connect "127.0.0.1:$S_TCP" -alpn istio-peer-exchange \
  -cert "$WORK/productpage.pem" -key "$WORK/productpage.key" -CAfile "$WORK/mesh-ca.pem" -quiet >/dev/null 2>&1 || true
wait_for_line "$WORK/server.err" 'closed: peer_exchange\.timeout' >/dev/null
pass "server: a stalled exchange is closed at the header timeout (logged)"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")" \
  'meshguard_connections_refused_total{direction="inbound",reason="peer_metadata_invalid"} 2' "server: both counted as refused"
expect_contains "$(grep '"reason":"peer_metadata_invalid"' "$WORK/server-access.log")" 'peer_exchange.bad_magic' "server access log: connection_refused event"
expect_not_contains "$(cat "$WORK/app.out")" "badframe-marker" "the malformed connection's bytes never reached the app"

expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$C_BADFRAME/x" || true)" 000 \
  "client: a destination answering the exchange with a malformed frame fails the connection"
wait_for_line "$WORK/client.err" "outbound to 127\.0\.0\.1:$BADFRAME refused: peer_metadata_invalid: peer_exchange\.bad_magic" >/dev/null
pass "client: the malformed frame is logged"

# Both proxies are still serving.
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_TCP/details/8")" '"id": 8' "still serving after the malformed frames"
echo "PASS tcp_metadata"
