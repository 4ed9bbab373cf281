#!/usr/bin/env bash
# A real gRPC C++ client and server (meshtest.proto) through a client proxy (outbound protocol
# grpc) and a server proxy (inbound protocol grpc, mTLS STRICT) speaking HTTP/2 to each other, with
# a RequestAuthentication and an AuthorizationPolicy on gRPC paths: an allowed method is OK (unary,
# and a bidirectional stream whose two directions flow at once), trailers relayed; a denied method
# is PERMISSION_DENIED; a bad token UNAUTHENTICATED; no token UNAUTHENTICATED (the ALLOW would
# match with a token: the call lacks a credential, not a permission — gRPC's status-code rules;
# an HTTP caller gets Istio's 403), but a method no token would allow stays PERMISSION_DENIED
# without a token too; metrics carry
# request_protocol="grpc" and grpc_response_status; a long-lived stream the policy stops allowing
# is reset at the reload (judged again, as a WebSocket is).
# Usage: grpc_mesh.sh PROXY SERVER CLIENT
source "$(dirname "$0")/../proxy/lib.sh"
source "$(dirname "$0")/../proxy/certs.sh"
CLIENT_BIN="$3"
DEMO="$(cd "$(dirname "$0")/../../../examples/demo" && pwd)"
TOKEN=$(tr -d '\n' <"$DEMO/demo-token.jwt")

make_mesh_svids
start grpcserver "$APP_BIN" --listen 127.0.0.1:0
GRPC_APP=$(port_of "$WORK/grpcserver.out" '^listening on 127\.0\.0\.1:[0-9]+$')

mkdir -p "$WORK/policies"
cp "$DEMO/jwt-example.yaml" "$WORK/policies/"
cat >"$WORK/policies/grpc-allow.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: grpc-allow, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]}}]
    to: [{operation: {paths: ["/meshtest.Echo/Unary", "/meshtest.Echo/Chat"]}}]
YAML

run_proxy server S_IN='inbound[0]' S_PLAIN='inbound[1]' S_ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $GRPC_APP, protocol: grpc, mtlsMode: STRICT}
  - {port: 0, address: 127.0.0.1, appPort: $GRPC_APP, protocol: grpc, mtlsMode: PERMISSIVE}
admin: {port: 0}
accessLog: $WORK/server-access.log
policyDir: $WORK/policies
workers: 1
YAML

run_proxy client C_OUT='outbound[0]' <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_IN", identities: ["$DETAILS"], protocol: grpc}
accessLog: $WORK/client-access.log
workers: 1
YAML

call() { timeout 30 "$CLIENT_BIN" --target "127.0.0.1:$C_OUT" "$@" 2>&1 || true; }

out=$(call --method unary --token "$TOKEN" --text mesh)
expect_contains "$out" "reply=echo:mesh" "unary through both proxies: the app's answer"
expect_contains "$out" "trailer=unary-done" "the app's trailer relayed"
expect_contains "$out" "status=0 OK" "unary allowed: OK"

out=$(call --method chat --token "$TOKEN" --text ping --count 5)
expect_contains "$out" "reply=echo:ping0" "bidirectional stream: first reply"
expect_contains "$out" "reply=echo:ping4" "bidirectional stream: ping-pong to the fifth reply"
expect_contains "$out" "status=0 OK" "bidirectional stream allowed: OK"

out=$(call --method forbidden --token "$TOKEN")
expect_contains "$out" "status=7 PERMISSION_DENIED" "a method the policy does not allow: PERMISSION_DENIED"
expect_not_contains "$out" "forbidden-reached" "the denied call never reached the app"

out=$(call --method unary --token not.a.jwt)
expect_contains "$out" "status=16 UNAUTHENTICATED" "a bad token: UNAUTHENTICATED"
expect_contains "$out" "Jwt" "grpc-message says why"

out=$(call --method unary)
expect_contains "$out" "status=16 UNAUTHENTICATED" "no token where a token would allow: UNAUTHENTICATED"
expect_contains "$out" "Jwt is missing" "grpc-message: the token is missing"

out=$(call --method chat --count 2)
expect_contains "$out" "status=16 UNAUTHENTICATED" "a stream without a token is refused before it starts: UNAUTHENTICATED"

out=$(call --method forbidden)
expect_contains "$out" "status=7 PERMISSION_DENIED" "no token on a method no token would open: still PERMISSION_DENIED"

metrics=$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")
expect_contains "$metrics" 'request_protocol="grpc",response_code="200",response_flags="-",connection_security_policy="mutual_tls",grpc_response_status="7"' "istio_requests_total: denied calls with grpc_response_status 7"
expect_contains "$metrics" 'request_protocol="grpc",response_code="200",response_flags="-",connection_security_policy="mutual_tls",grpc_response_status="0"' "istio_requests_total: OK calls with grpc_response_status 0"
expect_contains "$metrics" 'grpc_response_status="16"' "istio_requests_total: grpc_response_status 16"
expect_contains "$(grep '/meshtest.Echo/Forbidden' "$WORK/server-access.log")" '"grpc_status":"7"' "access log: the gRPC status of a denied call"
expect_contains "$(grep '/meshtest.Echo/Forbidden' "$WORK/server-access.log")" 'ALLOW policies apply to the workload but none matched' "access log: why it was denied"
expect_contains "$(grep '/meshtest.Echo/Unary' "$WORK/server-access.log" | grep '"grpc_status":"0"')" '"policy":"default/grpc-allow"' "access log: the policy that allowed a call"

# An HTTP/1.1 client to the h2c gRPC app: the call goes up as HTTP/2, and the app's trailers come
# back in the last chunk of the chunked HTTP/1.1 response. Body: one gRPC frame of Msg{text: "hi"}.
printf 'POST /meshtest.Echo/Unary HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\nTE: trailers\r\nAuthorization: Bearer %s\r\nContent-Length: 9\r\nConnection: close\r\n\r\n\x00\x00\x00\x00\x04\x0a\x02hi' \
  "$TOKEN" >"$WORK/h1-grpc-request"
h1=$(raw_exchange "$S_PLAIN" "$WORK/h1-grpc-request" | tr -d '\0')
expect_contains "$h1" "HTTP/1.1 200" "HTTP/1.1 client → h2c gRPC app: 200"
expect_contains "$h1" "echo:hi" "HTTP/1.1 client → h2c gRPC app: the app's message"
expect_contains "$h1" $'\r\n0\r\ngrpc-status: 0\r\n' "the app's HTTP/2 trailers relayed in the last chunk"
expect_contains "$h1" $'x-echo-trailer: unary-done\r\n' "every relayable trailer field"

# A long-lived stream, then a reload that denies its method: the stream is judged again and reset;
# new streams are refused at once.
start chat "$CLIENT_BIN" --target "127.0.0.1:$C_OUT" --method chat --token "$TOKEN" --text slow --count 100 \
  --interval-ms 100 --deadline-ms 30000
wait_for_line "$WORK/chat.out" '^reply=echo:slow1$' >/dev/null
cat >"$WORK/policies/.deny-chat.tmp" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-chat, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/meshtest.Echo/Chat"]}}]}]
YAML
mv "$WORK/policies/.deny-chat.tmp" "$WORK/policies/deny-chat.yaml"
status_line=$(wait_for_line "$WORK/chat.out" '^status=')
expect_not_contains "$status_line" "status=0 OK" "a live stream the reloaded policy denies does not finish OK ($status_line)"
expect_not_contains "$(cat "$WORK/chat.out")" "reply=echo:slow99" "it was cut short"
expect_contains "$(grep connection_closed_by_policy "$WORK/server-access.log")" '"protocol":"http2"' "access log: the stream closed by the reload"
expect_contains "$(grep connection_closed_by_policy "$WORK/server-access.log")" '"policy":"default/deny-chat"' "access log: the policy that closed it"
out=$(call --method chat --token "$TOKEN" --count 2)
expect_contains "$out" "status=7 PERMISSION_DENIED" "a new stream after the reload: PERMISSION_DENIED"
out=$(call --method unary --token "$TOKEN")
expect_contains "$out" "status=0 OK" "the unary method is still allowed"
