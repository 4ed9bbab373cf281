#!/usr/bin/env bash
# CUSTOM at the edge (issue 20): an AuthorizationPolicy with action CUSTOM selecting the ingress
# gateway (labels istio: ingressgateway) hands the decision on the matching requests to an
# extensionProviders entry — the test provider (server.cpp) over Envoy's HTTP protocol and over
# gRPC. Its allow lets the request through the gateway into the mesh with the provider's headers
# (the backend sees them); its deny is the client's answer, and the backend never sees the
# request; on HTTPS (SIMPLE) and plain HTTP gateway listeners alike. A request no CUSTOM rule
# matches asks nobody; a CUSTOM policy selecting other labels does not apply at the gateway.
source "$(dirname "$0")/../proxy/lib.sh"
source "$(dirname "$0")/../proxy/certs.sh"
source "$(dirname "$0")/../proxy/gateway_lib.sh"
source "$(dirname "$0")/ext_authz_lib.sh"
SERVER_BIN="$3"

make_gateway_mesh
start_backends
start_authz_server "$SERVER_BIN"

make_edge_cert example-cert edge1 '*.example.com'
make_edge_cert partner-cert partner 'api.partner.test'
SNI_PORT=$(free_port)
gateway_routes_yaml >"$WORK/gw-policies/routes.yaml"
{
  cat <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  extensionProviders:
YAML
  http_provider http-authz ""
  cat <<YAML
  - name: grpc-authz
    envoyExtAuthzGrpc: {service: 127.0.0.1, port: $GRPC_AUTHZ, timeout: 1s}
YAML
} >"$WORK/gw-policies/mesh.yaml"
{
  custom ext-http http-authz /anything/http/ istio-system "istio: ingressgateway"
  custom ext-grpc grpc-authz /anything/grpc/ istio-system "istio: ingressgateway"
  # Selects the ratings workload, not the gateway: never asked here.
  custom ext-ratings http-authz /anything/ default "app: ratings"
} >"$WORK/gw-policies/custom.yaml"
run_gateway ""

# 1. HTTP provider, HTTPS listener: allow → through the gateway to ratings with the provider's headers.
out=$(edge_curl shop.example.com "$HTTPS" /anything/http/a edge1 -H 'x-ext-authz: allow' -H 'x-ext-authz-user: mallory')
expect_contains "$out" '"path":"/anything/http/a"' "provider allows: the request reaches ratings through the gateway"
expect_contains "$out" '"x-ext-authz-check-result":"allowed"' "the provider's headersToUpstreamOnAllow reach the backend"
expect_contains "$out" '"x-ext-authz-user":"alice"' "a client's header is replaced by the provider's"
check=$(tail -n 40 "$WORK/authz/http.log")
expect_contains "$check" 'GET /check/anything/http/a HTTP/1.1' "the check carries the edge request's method and path"
expect_contains "$check" 'shop.example.com' "the check carries the edge request's Host"

# deny → the provider's status, body and listed header; ratings never sees it.
hdrs=$(curl -s --http1.1 -D - -o "$WORK/deny.body" --max-time 10 --cacert "$WORK/edge1-ca.pem" \
  --resolve "shop.example.com:$HTTPS:127.0.0.1" -H 'x-ext-authz: deny' "https://shop.example.com:$HTTPS/anything/http/b")
expect_contains "$hdrs" 'HTTP/1.1 401' "provider denies: its status at the edge"
expect_contains "$hdrs" 'x-ext-authz-check-result: denied' "provider denies: its headersToDownstreamOnDeny header"
expect_eq "$(cat "$WORK/deny.body")" "denied by the http provider" "provider denies: its body"
expect_eq "$(edge_status shop.example.com "$HTTPS" /anything/http/c edge1)" 403 "no x-ext-authz header: the provider's 403"
expect_not_contains "$(cat "$WORK/ratings.out")" "/anything/http/b" "a denied request never reaches the backend"
expect_not_contains "$(cat "$WORK/ratings.out")" "/anything/http/c" "...nor one the provider answered 403"

# 2. The plain HTTP listener: the same decisions.
plain() { http_status "http://127.0.0.1:$HTTP$1" -H 'Host: shop.example.com' "${@:2}"; }
expect_eq "$(plain /anything/http/d -H 'x-ext-authz: allow')" 200 "plain HTTP listener: the provider's allow"
expect_eq "$(plain /anything/http/e -H 'x-ext-authz: deny')" 401 "plain HTTP listener: the provider's deny"

# 3. gRPC provider.
out=$(edge_curl shop.example.com "$HTTPS" /anything/grpc/5 edge1 -H 'x-ext-authz: allow')
expect_contains "$out" '"path":"/anything/grpc/5"' "gRPC provider allows: ratings answers through the gateway"
expect_eq "$(edge_status shop.example.com "$HTTPS" /anything/grpc/6 edge1 -H 'x-ext-authz: deny')" 403 \
  "gRPC provider denies: 403 at the edge"
req=$(cat "$WORK/authz/grpc.log")
expect_contains "$req" 'path: "/anything/grpc/5"' "the gRPC check carries the edge request's path"
expect_contains "$req" 'address: "127.0.0.1"' "the gRPC check carries the client's address"

# 4. No CUSTOM rule for the gateway matches: nobody is asked (ext-ratings selects other labels).
before=$(authz_count)
expect_eq "$(edge_status shop.example.com "$HTTPS" /anything/free edge1 -H 'x-ext-authz: deny')" 200 \
  "a path no gateway CUSTOM rule matches is not sent to a provider"
expect_eq "$(authz_count)" "$before" "...and the provider was not asked ($before)"

# 5. The gateway's access log names the provider and its outcome.
line=$(grep '"/anything/http/b"' "$WORK/gw-access.log" | head -n1)
expect_contains "$line" '"ext_authz":{"provider":"http-authz","outcome":"denied"' "access log: provider and outcome at the gateway"
expect_contains "$line" '"status":401' "access log: the provider's status"
