#!/usr/bin/env bash
# app → client proxy (outbound, mTLS origination + secure naming) → server proxy (inbound
# STRICT/PERMISSIVE, http and tcp) → app. Refusals: plaintext into STRICT, a certificate from
# another CA, a server identity the route does not allow. Certificate hot reload.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

make_mesh_svids
make_ca "$WORK" rogue
make_svid "$WORK" intruder rogue "$PRODUCTPAGE"  # the right name, from the wrong CA

start_app app APP

run_proxy server S_STRICT='inbound[0]' S_PERMISSIVE='inbound[1]' S_TCP='inbound[2]' S_ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details, version: v1}}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: STRICT}
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: PERMISSIVE}
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: tcp, mtlsMode: STRICT}
admin: {port: 0}
accessLog: $WORK/server-access.log
workers: 2
YAML

run_proxy client C_OK='outbound[0]' C_WRONG_NAME='outbound[1]' C_TCP='outbound[2]' C_PERMISSIVE='outbound[3]' \
  C_HTTP='outbound[4]' C_HTTP_WRONG_NAME='outbound[5]' C_ADMIN=admin <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage, labels: {app: productpage, version: v3}}
$(tls_yaml productpage)
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_STRICT", identities: ["$DETAILS"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_STRICT", identities: ["spiffe://cluster.local/ns/default/sa/reviews"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_TCP", identities: ["$DETAILS"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_PERMISSIVE", identities: ["$DETAILS"]}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_STRICT", identities: ["$DETAILS"], protocol: http}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_STRICT", identities: ["spiffe://cluster.local/ns/default/sa/reviews"], protocol: http}
admin: {port: 0}
accessLog: $WORK/client-access.log
workers: 1
YAML

# client_handshakes: full + resumed TLS handshakes the client proxy has made so far.
client_handshakes() {
  curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics" |
    awk '/^meshguard_tls_handshakes_total\{side="client"/ {n += $2} END {print n + 0}'
}

# Allowed path, with the server's view of the client in x-forwarded-client-cert.
headers=$(curl -s --max-time 10 "http://127.0.0.1:$C_OK/headers")
expect_contains "$headers" "\"x-forwarded-client-cert\": \"By=$DETAILS;Hash=" "XFCC names the server (By)"
expect_contains "$headers" ";URI=$PRODUCTPAGE\"" "XFCC carries the client's SPIFFE ID (URI)"
hash=$(echo "$headers" | sed -nE 's/.*Hash=([0-9a-f]+);URI.*/\1/p')
expected_hash=$(openssl x509 -in "$WORK/productpage.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
expect_eq "$hash" "$expected_hash" "XFCC Hash is the SHA-256 of the client certificate"
expect_contains "$headers" '"x-forwarded-proto": "https"' "x-forwarded-proto https"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_OK/details/1")" '"author": "William Shakespeare"' "app → client proxy → mTLS → server proxy → app"
both=$(curl -sv --max-time 10 "http://127.0.0.1:$C_OK/ip" "http://127.0.0.1:$C_OK/details/5" 2>&1)
expect_contains "$both" '"id": 5' "keep-alive across the mTLS pair"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_TCP/details/9")" '"id": 9' "TCP over mTLS (STRICT tcp port)"

# PERMISSIVE accepts both.
expect_eq "$(http_status "http://127.0.0.1:$S_PERMISSIVE/status/200")" 200 "PERMISSIVE: plaintext accepted"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_PERMISSIVE/headers")" "URI=$PRODUCTPAGE" "PERMISSIVE: mTLS detected and verified"
expect_not_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_PERMISSIVE/headers" -H "X-Forwarded-Client-Cert: URI=$PRODUCTPAGE")" "URI=$PRODUCTPAGE" "PERMISSIVE plaintext cannot forge XFCC"

# Plaintext into STRICT: closed before any byte reaches the app.
expect_eq "$(http_status "http://127.0.0.1:$S_STRICT/strict-plaintext-marker")" 000 "STRICT: plaintext refused"
expect_eq "$(http_status "http://127.0.0.1:$S_TCP/strict-tcp-marker")" 000 "STRICT tcp: plaintext refused"

# A certificate from another CA (same SPIFFE ID) is refused by the server.
printf 'GET /rogue-marker HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$WORK/rogue-request"
rogue=$(timeout 10 openssl s_client -connect "127.0.0.1:$S_STRICT" -cert "$WORK/intruder.pem" -key "$WORK/intruder.key" \
  -CAfile "$WORK/mesh-ca.pem" -quiet <"$WORK/rogue-request" 2>&1 || true)
expect_not_contains "$rogue" "HTTP/1.1" "certificate from another CA: no HTTP response"
# And with a certificate the mesh trusts, the same client gets through (the test can fail).
ok=$(timeout 10 openssl s_client -connect "127.0.0.1:$S_STRICT" -cert "$WORK/productpage.pem" -key "$WORK/productpage.key" \
  -CAfile "$WORK/mesh-ca.pem" -quiet <"$WORK/rogue-request" 2>&1 || true)
expect_contains "$ok" "HTTP/1.1 404 Not Found" "same request with a mesh certificate reaches the app"
# Without a client certificate.
none=$(printf 'GET /nocert-marker HTTP/1.1\r\nHost: a\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$S_STRICT" \
  -CAfile "$WORK/mesh-ca.pem" -quiet 2>&1 || true)
expect_not_contains "$none" "HTTP/1.1" "no client certificate: no HTTP response"

# Secure naming: the server is details, the route only allows reviews.
expect_eq "$(http_status "http://127.0.0.1:$C_WRONG_NAME/naming-marker")" 000 "secure-naming mismatch fails the connection"

app_log=$(cat "$WORK/app.out")
for marker in strict-plaintext-marker strict-tcp-marker nocert-marker naming-marker; do
  expect_not_contains "$app_log" "$marker" "refused connection ($marker) never reached the app"
done
expect_contains "$app_log" "/rogue-marker" "control: the trusted s_client request did reach the app"

server_log=$(cat "$WORK/server-access.log")
expect_contains "$server_log" '"reason":"plaintext_on_strict_port"' "server logs plaintext refusal"
expect_contains "$server_log" '"reason":"tls_handshake_failed"' "server logs the failed handshake"
expect_contains "$server_log" "\"principal\":\"$PRODUCTPAGE\"" "server access log has the source principal"
client_log=$(cat "$WORK/client-access.log")
expect_contains "$client_log" '"reason":"secure_naming_mismatch"' "client logs the secure-naming mismatch"
expect_contains "$(cat "$WORK/client.err")" "is not one of [spiffe://cluster.local/ns/default/sa/reviews]" "mismatch names the identities"

metrics=$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")
expect_contains "$metrics" "source_principal=\"$PRODUCTPAGE\",source_app=\"unknown\",source_version=\"unknown\",destination_workload=\"details\",destination_workload_namespace=\"default\",destination_principal=\"$DETAILS\"" "metrics carry both principals"
expect_contains "$metrics" 'connection_security_policy="mutual_tls"}' "metrics mark mutual_tls"
expect_contains "$metrics" 'meshguard_connections_refused_total{direction="inbound",reason="plaintext_on_strict_port"}' "refusals counted"
expect_contains "$metrics" "meshguard_certificate_expiry_timestamp_seconds{identity=\"$DETAILS\"}" "certificate expiry gauge"
expect_contains "$metrics" 'meshguard_certificate_state{state="Available"} 1' "certificate state gauge: Available"
expect_contains "$metrics" 'meshguard_certificate_state{state="Unavailable"} 0' "certificate state gauge: not Unavailable"

# HTTP outbound route: requests ride pooled keep-alive mTLS connections.
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_HTTP/headers")" "URI=$PRODUCTPAGE" "HTTP route: request arrives with XFCC"
before=$(client_handshakes)
for i in 1 2 3 4 5; do
  expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_HTTP/details/$i")" "\"id\": $i" "HTTP route request $i (new app connection)"
done
after=$(client_handshakes)
[ "$after" -eq "$before" ] || fail "HTTP route: expected pooled upstream reuse, but $((after - before)) new TLS handshakes for 5 requests"
pass "HTTP route: 5 requests from 5 app connections reused one pooled mTLS connection"
expect_contains "$(curl -s --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary 'chunky' "http://127.0.0.1:$C_HTTP/anything")" '"data": "chunky"' "HTTP route: chunked request body"
# A WebSocket upgrade across the mesh: 101 from the app, then bytes both ways
# through client proxy → mTLS → server proxy, spliced after the one authorized request.
upgraded=$(timeout 20 python3 - "$C_HTTP" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /echo HTTP/1.1\r\nHost: details\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(4096)
    if not d:
        break
    buf += d
head, _, rest = buf.partition(b"\r\n\r\n")
s.sendall(b"across the mesh")
while len(rest) < len(b"across the mesh"):
    d = s.recv(4096)
    if not d:
        break
    rest += d
print(head.split(b"\r\n")[0].decode(), "|", rest.decode())
PY
)
expect_eq "$upgraded" "HTTP/1.1 101 Switching Protocols | across the mesh" "HTTP route: protocol upgrade (101) spliced end to end over mTLS"
# The line is written when the spliced connection ends (just after the client closed it).
expect_contains "$(wait_for_line "$WORK/server-access.log" '"path":"/echo"')" '"status":101' "server access log records the upgrade (101)"
expect_eq "$(http_status "http://127.0.0.1:$C_HTTP_WRONG_NAME/naming-http-marker")" 503 "HTTP route with the wrong server identity → 503"
expect_not_contains "$(cat "$WORK/app.out")" "naming-http-marker" "secure-naming refusal on the HTTP route never reached the app"
expect_contains "$(grep '"direction":"outbound"' "$WORK/client-access.log" | grep '"protocol":"http"' | grep '"path":"/details/3"')" "\"principal\":\"$DETAILS\"" "client access log has outbound HTTP requests with the server principal"
# Peer metadata exchange (x-envoy-peer-metadata): each proxy labels the far end's workload, app and
# version from what the other proxy sent over mTLS, never from what an app or a plaintext client says.
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics")" "istio_requests_total{reporter=\"source\",source_workload=\"productpage\",source_canonical_service=\"productpage\",source_canonical_revision=\"v3\",source_workload_namespace=\"default\",source_principal=\"$PRODUCTPAGE\",source_app=\"productpage\",source_version=\"v3\",destination_workload=\"details\",destination_workload_namespace=\"default\",destination_principal=\"$DETAILS\",destination_app=\"details\",destination_version=\"v1\",destination_service=\"127.0.0.1\",destination_canonical_service=\"details\",destination_canonical_revision=\"v1\"" "client reports istio_requests_total as the source, the destination's workload from its metadata"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")" "istio_requests_total{reporter=\"destination\",source_workload=\"productpage\",source_canonical_service=\"productpage\",source_canonical_revision=\"v3\",source_workload_namespace=\"default\",source_principal=\"$PRODUCTPAGE\",source_app=\"productpage\",source_version=\"v3\",destination_workload=\"details\"" "server reports the source's workload, app and version from its metadata"
# A spoofed header: a workload "evil" in the same namespace, as an app or a plaintext client could send it.
SPOOF=$(python3 - <<'PY'
import base64
def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7f) | 0x80]); n >>= 7
    return out + bytes([n])
def ld(field, b): return varint((field << 3) | 2) + varint(len(b)) + b
def entry(k, vf, v): return ld(1, ld(1, k.encode()) + ld(2, ld(vf, v)))
labels = entry("app", 3, b"evil") + entry("version", 3, b"v666")
s = entry("LABELS", 5, labels) + entry("NAME", 3, b"evil") + entry("NAMESPACE", 3, b"default") + entry("WORKLOAD_NAME", 3, b"evil")
print(base64.b64encode(s).decode())
PY
)
headers_logged() { grep -c '"path":"/headers"' "$1" || true; }
server_before=$(headers_logged "$WORK/server-access.log")
client_before=$(headers_logged "$WORK/client-access.log")
seen=$(curl -s -D "$WORK/spoof-response" --max-time 10 -H "x-envoy-peer-metadata: $SPOOF" -H "x-envoy-peer-metadata-id: sidecar~6.6.6.6~evil.default~default.svc.cluster.local" "http://127.0.0.1:$C_HTTP/headers")
expect_contains "$seen" '"x-forwarded-client-cert"' "spoofing app's request went through"
expect_not_contains "$(tr 'A-Z' 'a-z' <<<"$seen")" "x-envoy-peer-metadata" "the exchange headers never reach the server's app (the app's own were stripped, the proxy's taken off)"
expect_not_contains "$(tr 'A-Z' 'a-z' <"$WORK/spoof-response")" "x-envoy-peer-metadata" "the exchange headers never reach the calling app"
plain=$(curl -s -D "$WORK/plain-response" --max-time 10 -H "x-envoy-peer-metadata: $SPOOF" "http://127.0.0.1:$S_PERMISSIVE/headers")
expect_contains "$plain" '"x-forwarded-proto": "http"' "plaintext client's spoofing request went through (PERMISSIVE)"
expect_not_contains "$(tr 'A-Z' 'a-z' <<<"$plain")" "x-envoy-peer-metadata" "a plaintext client's exchange header never reaches the app"
expect_not_contains "$(tr 'A-Z' 'a-z' <"$WORK/plain-response")" "x-envoy-peer-metadata" "a plaintext client is not told the server's metadata"
# Counted before its access-log line is written: once both lines are there, so are the series.
for _ in $(seq 1 200); do
  [ "$(headers_logged "$WORK/server-access.log")" -ge $((server_before + 2)) ] &&
    [ "$(headers_logged "$WORK/client-access.log")" -ge $((client_before + 1)) ] && break
  sleep 0.05
done
expect_not_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")" 'evil' "a spoofed header changes no server label"
expect_not_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics")" 'evil' "a spoofed header changes no client label"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")" "source_workload=\"unknown\",source_canonical_service=\"unknown\",source_canonical_revision=\"unknown\",source_workload_namespace=\"unknown\",source_principal=\"unknown\",source_app=\"unknown\"" "the plaintext client stays unknown"

# Concurrent load through both route kinds (8 clients, 200 requests): every one must succeed.
for port in "$C_HTTP" "$C_OK"; do
  seq 1 200 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "http://127.0.0.1:$port/details/{}" >"$WORK/load.codes" || true
  expect_eq "$(grep -c '^200$' "$WORK/load.codes")" 200 "200 concurrent requests via 127.0.0.1:$port all succeed"
done

# Large bodies both ways over mTLS (many TLS records, partial writes), through the HTTP route and
# the TCP splice: the app echoes the request body back.
head -c 200000 /dev/urandom | base64 -w0 >"$WORK/body"
size=$(stat -c %s "$WORK/body")
for port in "$C_HTTP" "$C_OK"; do
  echoed=$(curl -s --max-time 10 --data-binary @"$WORK/body" "http://127.0.0.1:$port/anything")
  expect_contains "$echoed" "\"length\": $size" "a ${size}-byte body arrives whole via 127.0.0.1:$port"
  expect_contains "$echoed" "$(head -c 64 "$WORK/body")" "and comes back in the response via 127.0.0.1:$port"
done

# Request metrics come from a per-worker series cache: it must still count every request. The
# client's outbound 200s in istio_requests_total equal the 200 lines of its access log (the log
# line is written after the counter, so read the log first; retried while a last line lands).
counted=-1 logged=-2
for _ in $(seq 1 50); do
  logged=$(grep '"direction":"outbound"' "$WORK/client-access.log" | grep '"protocol":"http"' | grep -c '"status":200' || true)
  counted=$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics" | grep '^istio_requests_total{reporter="source"' |
    grep 'response_code="200"' | awk '{ s += $NF } END { print s + 0 }')
  [ "$counted" = "$logged" ] && break
  sleep 0.1
done
[ "$logged" -ge 200 ] || fail "expected at least 200 outbound 200s in the client access log, got $logged"
expect_eq "$counted" "$logged" "istio_requests_total counts every logged request"

# Outbound connections resume TLS sessions (each curl above was a new upstream connection).
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")" 'meshguard_tls_handshakes_total{side="server",resumed="true"}' "server saw resumed TLS sessions"
client_metrics=$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics")
expect_contains "$client_metrics" 'meshguard_tls_handshakes_total{side="client",resumed="true"}' "client resumed TLS sessions"
expect_contains "$client_metrics" 'meshguard_tls_handshakes_total{side="client",resumed="false"}' "client did full handshakes first"

# Hot reload: a new certificate for the server; new handshakes use it, nothing restarts.
server_serial() { curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/config_dump" | jq -r '.certificate.serial // empty'; }
old_serial=$(server_serial)
[ -n "$old_serial" ] || fail "no serial in /config_dump"
mkdir "$WORK/rotated"
cp "$WORK/mesh-ca.pem" "$WORK/mesh-ca.key" "$WORK/rotated/"
make_svid "$WORK/rotated" details mesh "$DETAILS"
mv "$WORK/rotated/details.key" "$WORK/details.key"
mv "$WORK/rotated/details-chain.pem" "$WORK/details-chain.pem"
new_serial=$old_serial
for _ in $(seq 1 100); do
  new_serial=$(server_serial)
  [ "$new_serial" != "$old_serial" ] && break
  sleep 0.1
done
[ "$new_serial" != "$old_serial" ] || fail "certificate was not reloaded"
pass "certificate reloaded without restart ($old_serial → $new_serial)"
served=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$S_STRICT" -cert "$WORK/productpage.pem" \
  -key "$WORK/productpage.key" -CAfile "$WORK/mesh-ca.pem" 2>/dev/null | openssl x509 -noout -serial 2>/dev/null || true)
expect_eq "${served#serial=}" "$new_serial" "new handshakes present the new certificate"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_OK/details/4")" '"id": 4' "traffic still flows after the reload"
# Fail closed, then recover without a restart: a proxy started before its certificate exists
# refuses mTLS (not ready), and serves as soon as the files appear.
mkdir "$WORK/late"
run_proxy late L_STRICT='inbound[0]' L_ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details}
tls: {certChain: $WORK/late/chain.pem, key: $WORK/late/key.pem, trustBundle: $WORK/late/bundle.pem}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: STRICT}
admin: {port: 0}
accessLog: $WORK/late-access.log
workers: 1
YAML
# late_request: one request over mTLS (productpage's certificate) to the late proxy; prints what came back.
late_request() {
  printf 'GET /late-marker HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | timeout 10 openssl s_client \
    -connect "127.0.0.1:$L_STRICT" -cert "$WORK/productpage.pem" -key "$WORK/productpage.key" -CAfile "$WORK/mesh-ca.pem" -quiet 2>&1 || true
}
expect_eq "$(http_status "http://127.0.0.1:$L_ADMIN/healthz/ready")" 503 "no certificate: not ready"
expect_not_contains "$(late_request)" "HTTP/1.1" "no certificate: mTLS refused"
expect_contains "$(cat "$WORK/late-access.log")" '"reason":"no_certificate"' "no certificate: refusal logged"
expect_contains "$(cat "$WORK/late.err")" "mTLS is unavailable" "no certificate: clear log line"
cp "$WORK/details-bundle.pem" "$WORK/late/bundle.pem"
(umask 077 && cp "$WORK/details.key" "$WORK/late/key.pem")
cp "$WORK/details-chain.pem" "$WORK/late/chain.pem"
wait_status "http://127.0.0.1:$L_ADMIN/healthz/ready" 200
pass "certificate appeared: ready without a restart"
expect_contains "$(late_request)" "HTTP/1.1 404 Not Found" "certificate appeared: mTLS served"
echo "PASS mtls"
