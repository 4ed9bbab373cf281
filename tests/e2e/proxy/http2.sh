#!/usr/bin/env bash
# HTTP/2 through the mesh (issue 15): h2c with prior knowledge and HTTP/1.1 on one plaintext port;
# client proxy → server proxy over mTLS with ALPN h2 (one connection, many streams), with an
# AuthorizationPolicy on paths (allowed 200, denied 403) judged per stream; an HTTP/1.1 client to
# an h2c app (inbound protocol http2) and an h2c client to an HTTP/1.1 app (protocol http).
# Driven with curl --http2-prior-knowledge and h2load.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
command -v h2load >/dev/null || fail "h2load is required (Debian nghttp2-client, scripts/install-deps.sh)"

make_mesh_svids
start_app app APP
mkdir -p "$WORK/policies"
deny_paths deny-teapot "app: details" /status/418 >"$WORK/policies/deny.yaml"

run_proxy server S_STRICT='inbound[0]' S_PLAIN='inbound[1]' S_ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: STRICT}
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: PERMISSIVE}
admin: {port: 0}
accessLog: $WORK/server-access.log
policyDir: $WORK/policies
workers: 1
YAML

run_proxy client C_OUT='outbound[0]' C_ADMIN=admin <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_STRICT", identities: ["$DETAILS"], protocol: http}
admin: {port: 0}
accessLog: $WORK/client-access.log
workers: 1
YAML

# An "app" that speaks only h2c: the server proxy's plaintext port (HTTP/1.1 app behind it). A
# third proxy in front of it declares its app port http2.
run_proxy h2front F_IN='inbound[0]' <<YAML
workload: {name: front, namespace: default, serviceAccount: front}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $S_PLAIN, protocol: http2}
accessLog: $WORK/front-access.log
workers: 1
YAML

# metric ADMIN_PORT REGEX: the sum of the series matching REGEX.
metric() {
  curl -s --max-time 10 "http://127.0.0.1:$1/metrics" | awk -v re="$2" '$0 ~ re {n += $2} END {print n + 0}'
}

h2() { curl -s --max-time 10 --http2-prior-knowledge "$@"; }
h2_status() { h2 -o /dev/null -w '%{http_code} %{http_version}' "$@" || true; }

# 1. h2c prior knowledge and HTTP/1.1 on one plaintext port, same policy.
expect_eq "$(h2_status "http://127.0.0.1:$S_PLAIN/status/200")" "200 2" "h2c prior knowledge: allowed path 200 over HTTP/2"
expect_eq "$(h2_status "http://127.0.0.1:$S_PLAIN/status/418")" "403 2" "h2c prior knowledge: denied path 403 (AuthorizationPolicy)"
expect_eq "$(http_status "http://127.0.0.1:$S_PLAIN/status/418")" 403 "HTTP/1.1 on the same port: denied path 403"
expect_eq "$(http_status "http://127.0.0.1:$S_PLAIN/status/200")" 200 "HTTP/1.1 on the same port: 200"
body=$(h2 -d 'hello-h2-body' "http://127.0.0.1:$S_PLAIN/anything")
expect_contains "$body" 'hello-h2-body' "h2c request body relayed to the HTTP/1.1 app"
sent=$(grep '"path":"/anything"' "$WORK/server-access.log" | head -1 | jq -r '.bytes_sent')
[ "${sent:-0}" -ge "${#body}" ] ||
  fail "access log bytes_sent of an HTTP/2 stream counts its response body (${#body} bytes), got '${sent}'"
expect_contains "$(grep '"path":"/status/418"' "$WORK/server-access.log" | head -1)" '"policy":"default/deny-teapot"' "access log names the deciding policy for an HTTP/2 stream"

# 2. Through the mTLS pair: h2c from the app, h2 between the proxies.
headers=$(h2 "http://127.0.0.1:$C_OUT/headers")
expect_contains "$headers" ";URI=$PRODUCTPAGE\"" "h2c → client proxy → h2 over mTLS → server proxy: peer identity in XFCC"
expect_eq "$(h2_status "http://127.0.0.1:$C_OUT/status/418")" "403 2" "through the pair: denied path 403"
expect_eq "$(http_status "http://127.0.0.1:$C_OUT/status/200")" 200 "HTTP/1.1 from the app, carried as HTTP/2 between the proxies"
[ "$(metric "$S_ADMIN" '^meshguard_http2_connections_total\\{direction="inbound"\\}')" -ge 1 ] ||
  fail "the server proxy saw no HTTP/2 connection from the client proxy"
pass "the proxies speak HTTP/2 to each other (ALPN h2)"

# 3. h2load: many concurrent streams on one client connection, one mTLS connection between the
# proxies (the client proxy made exactly one TLS handshake for all of them).
before=$(metric "$C_ADMIN" '^meshguard_tls_handshakes_total\\{side="client"')
[ "$before" -ge 1 ] || fail "the client proxy counted no TLS handshake before h2load"
out=$(timeout 60 h2load -n 300 -c 1 -m 20 "http://127.0.0.1:$C_OUT/status/200" 2>&1 || true)
expect_contains "$out" "300 succeeded" "h2load: 300 requests, 20 concurrent streams, all succeeded"
expect_contains "$out" "300 2xx" "h2load: all 200"
after=$(metric "$C_ADMIN" '^meshguard_tls_handshakes_total\\{side="client"')
expect_eq "$((after - before))" 0 "h2load's streams share the one mTLS connection already open"
out=$(timeout 60 h2load -n 100 -c 2 -m 10 "http://127.0.0.1:$C_OUT/status/418" 2>&1 || true)
expect_contains "$out" "100 4xx" "h2load: every stream to a denied path is refused 403"

# 4. An HTTP/1.1 client to an h2c app, and the policy still applies behind it.
expect_contains "$(curl -s --max-time 10 --http1.1 "http://127.0.0.1:$F_IN/details/7")" '"id": 7' "HTTP/1.1 client → proxy → h2c app"
expect_eq "$(http_status "http://127.0.0.1:$F_IN/status/418" --http1.1)" 403 "HTTP/1.1 client → h2c app: the app's 403 relayed"
body=$(curl -s --max-time 10 --http1.1 -d 'hello-h1-to-h2' "http://127.0.0.1:$F_IN/anything")
expect_contains "$body" 'hello-h1-to-h2' "HTTP/1.1 request body relayed as HTTP/2 DATA"

# 5. Metrics: request_protocol on istio_requests_total.
[ "$(metric "$S_ADMIN" '^istio_requests_total\\{.*request_protocol="http".*response_code="403"')" -ge 1 ] ||
  fail "istio_requests_total has no 403 series"
pass "istio_requests_total counts the HTTP/2 streams"

# 6. Mesh h2UpgradePolicy: DO_NOT_UPGRADE (Istio's meshConfig field): a client proxy under it
# carries the app's HTTP/1.1 requests to the server proxy as HTTP/1.1; an h2c request stays HTTP/2.
mkdir -p "$WORK/client2-policies"
cat >"$WORK/client2-policies/mesh.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {h2UpgradePolicy: DO_NOT_UPGRADE}
YAML
run_proxy client2 C2_OUT='outbound[0]' <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
policyDir: $WORK/client2-policies
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_STRICT", identities: ["$DETAILS"], protocol: http}
workers: 1
YAML
h2_in() { metric "$S_ADMIN" '^meshguard_http2_connections_total\\{direction="inbound"\\}'; }
before=$(h2_in)
for _ in 1 2 3; do
  expect_eq "$(http_status "http://127.0.0.1:$C2_OUT/status/200")" 200 "DO_NOT_UPGRADE: HTTP/1.1 from the app answered"
done
expect_eq "$(h2_in)" "$before" "DO_NOT_UPGRADE: no HTTP/2 connection between the proxies for HTTP/1.1 requests"
expect_eq "$(h2_status "http://127.0.0.1:$C2_OUT/status/200")" "200 2" "DO_NOT_UPGRADE: an h2c request from the app"
expect_eq "$(h2_in)" "$((before + 1))" "DO_NOT_UPGRADE: an HTTP/2 request still travels as HTTP/2"
echo "PASS http2"
