#!/usr/bin/env bash
# CUSTOM AuthorizationPolicies calling extension providers from a real proxy: the test server
# (server.cpp) answers over Envoy's HTTP protocol and over gRPC (envoy.service.auth.v3). Allow
# (with header mutations on the forwarded request), deny (the provider's status, body and
# allowed headers), provider timeout (statusOnError; failOpen both ways), provider down, an error
# answer, and a request no CUSTOM rule matches (no call: the server counts them). Every decision
# names the provider in the access log and in meshguard_ext_authz_requests_total.
source "$(dirname "$0")/../proxy/lib.sh"
source "$(dirname "$0")/ext_authz_lib.sh"
SERVER_BIN="$3"

start_app app APP
mkdir -p "$WORK/policies"
start_authz_server "$SERVER_BIN"
# A port nothing listens on: bound, then closed.
DOWN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

{
  cat <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  extensionProviders:
YAML
  http_provider http-authz ""
  http_provider http-open "      failOpen: true"
  http_provider http-503 '      statusOnError: "503"'
  cat <<YAML
  - name: http-down
    envoyExtAuthzHttp: {service: 127.0.0.1, port: $DOWN, timeout: 1s, statusOnError: "502"}
  - name: grpc-authz
    envoyExtAuthzGrpc: {service: 127.0.0.1, port: $GRPC_AUTHZ, timeout: 1s}
  - name: grpc-open
    envoyExtAuthzGrpc: {service: 127.0.0.1, port: $GRPC_AUTHZ, timeout: 1s, failOpen: true}
  - name: http-body
    envoyExtAuthzHttp:
      service: 127.0.0.1
      port: $HTTP_AUTHZ
      timeout: 1s
      includeRequestHeadersInCheck: ["x-ext-authz"]
      includeRequestBodyInCheck: {maxRequestBytes: 16}
  - name: http-partial
    envoyExtAuthzHttp:
      service: 127.0.0.1
      port: $HTTP_AUTHZ
      timeout: 1s
      includeRequestHeadersInCheck: ["x-ext-authz"]
      includeRequestBodyInCheck: {maxRequestBytes: 8, allowPartialMessage: true}
  - name: grpc-body
    envoyExtAuthzGrpc:
      service: 127.0.0.1
      port: $GRPC_AUTHZ
      timeout: 1s
      includeRequestBodyInCheck: {maxRequestBytes: 64, packAsBytes: true}
  - name: grpc-down
    envoyExtAuthzGrpc: {service: 127.0.0.1, port: $DOWN, timeout: 1s, statusOnError: "503"}
YAML
} >"$WORK/policies/mesh.yaml"

{
  custom ext-http http-authz /anything/http/
  custom ext-open http-open /anything/open/
  custom ext-503 http-503 /anything/503/
  custom ext-down http-down /anything/down/
  custom ext-grpc grpc-authz /anything/grpc/
  custom ext-grpc-open grpc-open /anything/grpc-open/
  custom ext-grpc-down grpc-down /anything/grpc-down/
  custom ext-body http-body /anything/body/
  custom ext-partial http-partial /anything/partial/
  custom ext-grpc-body grpc-body /anything/grpc-body/
  # DENY after CUSTOM: a provider's allow does not get past it.
  cat <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-secret, namespace: default}
spec:
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/anything/http/secret"]}
YAML
} >"$WORK/policies/custom.yaml"
run_details_proxy "$APP"

# No CUSTOM rule matches /ip: the providers are not asked.
expect_eq "$(http_status "$BASE/ip" -H 'x-ext-authz: deny')" 200 "a request no CUSTOM rule matches is allowed"
expect_eq "$(authz_count)" "http 0 grpc 0" "...and no provider was asked"

# --- HTTP provider ---
body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' -H 'x-incl-one: 1' -H 'x-other: 2' \
  -H 'Authorization: Bearer abc' -H 'x-ext-authz-user: mallory' "$BASE/anything/http/a?q=1")
expect_contains "$body" '"x-ext-authz-check-result": "allowed"' "http allow: headersToUpstreamOnAllow set on the forwarded request"
expect_contains "$body" '"x-ext-authz-user": "alice"' "http allow: a header the client sent is replaced by the provider's"
expect_not_contains "$body" 'must-not-reach-the-app' "http allow: a header not in headersToUpstreamOnAllow is not forwarded"
check=$(tail -n 40 "$WORK/authz/http.log")
expect_contains "$check" 'GET /check/anything/http/a?q=1 HTTP/1.1' "http check: original method, pathPrefix + path and query"
expect_contains "$check" 'x-ext-authz: allow' "http check: an includeRequestHeadersInCheck header"
expect_contains "$check" 'x-incl-one: 1' "http check: a prefix pattern's header"
expect_contains "$check" 'Authorization: Bearer abc' "http check: Authorization"
expect_contains "$check" 'x-added-by-mesh: meshguard' "http check: includeAdditionalHeadersInCheck"
expect_contains "$check" 'Content-Length: 0' "http check: Content-Length 0, no body"
expect_not_contains "$check" 'x-other' "http check: other headers are not sent"

hdrs=$(curl -s -D - -o "$WORK/deny.body" --max-time 10 -H 'x-ext-authz: deny' "$BASE/anything/http/b")
expect_contains "$hdrs" 'HTTP/1.1 401' "http deny: the provider's status"
expect_contains "$hdrs" 'x-ext-authz-check-result: denied' "http deny: a headersToDownstreamOnDeny header"
expect_contains "$hdrs" 'www-authenticate: Bearer realm="test"' "http deny: WWW-Authenticate always passes"
expect_not_contains "$hdrs" 'must-not-reach-the-client' "http deny: an unlisted header does not"
expect_eq "$(cat "$WORK/deny.body")" "denied by the http provider" "http deny: the provider's body"
expect_eq "$(http_status "$BASE/anything/http/c")" 403 "http: the provider's 403"
expect_eq "$(http_status "$BASE/anything/http/secret" -H 'x-ext-authz: allow')" 403 \
  "DENY policy still applies after the provider allowed"

# Timeouts and errors (the server waits 3 s; timeout 1 s).
expect_eq "$(http_status "$BASE/anything/http/t" -H 'x-ext-authz: slow')" 403 "http timeout: statusOnError default 403"
expect_eq "$(http_status "$BASE/anything/503/t" -H 'x-ext-authz: slow')" 503 "http timeout: statusOnError 503"
expect_eq "$(http_status "$BASE/anything/open/t" -H 'x-ext-authz: slow')" 200 "http timeout: failOpen allows"
expect_eq "$(http_status "$BASE/anything/503/e" -H 'x-ext-authz: error')" 503 "http 5xx answer: an error (statusOnError)"
expect_eq "$(http_status "$BASE/anything/open/d" -H 'x-ext-authz: deny')" 401 "failOpen does not turn a denial into an allow"
expect_eq "$(http_status "$BASE/anything/down/x" -H 'x-ext-authz: allow')" 502 "http provider down: statusOnError 502"

# Keep-alive: many checks, few connections (the server logs one line per check, not per connection).
for i in 1 2 3 4 5; do http_status "$BASE/anything/http/k$i" -H 'x-ext-authz: allow' >/dev/null; done
pass "sequential checks over the pooled connection"

# --- gRPC provider ---
body=$(curl -s --max-time 10 -D "$WORK/grpc.hdrs" -H 'x-ext-authz: allow' -H 'x-remove-me: 1' \
  -H 'x-ext-authz-check-result: client' "$BASE/anything/grpc/a?x=y")
expect_contains "$body" '"x-ext-authz-check-result": "allowed-by-grpc"' "grpc allow: append false replaces the client's header"
expect_contains "$body" '"x-ext-authz-user": "bob"' "grpc allow: a header added"
expect_not_contains "$body" 'x-remove-me' "grpc allow: headers_to_remove"
expect_contains "$(cat "$WORK/grpc.hdrs")" 'x-ext-authz-response: yes' "grpc allow: response_headers_to_add on the client's response"
req=$(cat "$WORK/authz/grpc.log")
expect_contains "$req" 'path: "/anything/grpc/a?x=y"' "grpc check: path with query"
expect_contains "$req" 'method: "GET"' "grpc check: method"
expect_contains "$req" 'key: ":authority"' "grpc check: pseudo-headers in the header map"
expect_contains "$req" 'key: "x-ext-authz"' "grpc check: request headers"
expect_contains "$req" 'address: "127.0.0.1"' "grpc check: the source address"

hdrs=$(curl -s -D - -o "$WORK/gdeny.body" --max-time 10 -H 'x-ext-authz: deny' "$BASE/anything/grpc/b")
expect_contains "$hdrs" 'HTTP/1.1 403' "grpc deny: denied_response's status"
expect_contains "$hdrs" 'x-ext-authz-check-result: denied-by-grpc' "grpc deny: denied_response's headers"
expect_eq "$(cat "$WORK/gdeny.body")" "denied by the grpc provider" "grpc deny: denied_response's body"
expect_eq "$(http_status "$BASE/anything/grpc/c")" 403 "grpc deny without denied_response: 403"
expect_eq "$(http_status "$BASE/anything/grpc/t" -H 'x-ext-authz: slow')" 403 "grpc timeout: statusOnError default 403"
expect_eq "$(http_status "$BASE/anything/grpc-open/t" -H 'x-ext-authz: slow')" 200 "grpc timeout: failOpen allows"
expect_eq "$(http_status "$BASE/anything/grpc/e" -H 'x-ext-authz: error')" 403 "grpc error status: statusOnError"
expect_eq "$(http_status "$BASE/anything/grpc-down/x" -H 'x-ext-authz: allow')" 503 "grpc provider down: statusOnError 503"

# Counted checks: HTTP 3 + 1 + 5 (keep-alive) + timeouts (3) + error + open-deny; gRPC 5 (not the down one).
expect_eq "$(authz_count)" "http 14 grpc 6" "each matching request asked its provider exactly once"

# Access log and metrics name the provider and the outcome.
wait_for_line "$WORK/access.log" '"path":"/anything/grpc-down/x"' >/dev/null
line=$(grep '"path":"/anything/http/b"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"ext_authz":{"provider":"http-authz","outcome":"denied","latency_us":' "access log: provider, outcome, latency"
expect_contains "$line" '"policy":"default/ext-http"' "access log: the CUSTOM policy"
expect_contains "$line" '"action":"CUSTOM"' "access log: CUSTOM"
line=$(grep '"path":"/anything/http/t"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"outcome":"timeout"' "access log: a timeout"
line=$(grep '"path":"/anything/grpc/a"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"outcome":"allowed"' "access log: gRPC allowed"
metrics=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics")
expect_contains "$metrics" 'meshguard_ext_authz_requests_total{provider="http-authz",outcome="denied"} 2' "metrics: http denials"
expect_contains "$metrics" 'meshguard_ext_authz_requests_total{provider="grpc-open",outcome="timeout"} 1' "metrics: grpc timeout"
expect_contains "$metrics" 'meshguard_ext_authz_requests_total{provider="grpc-down",outcome="error"} 1' "metrics: provider down"
expect_contains "$metrics" 'meshguard_ext_authz_duration_milliseconds_count{provider="grpc-authz"}' "metrics: latency histogram"
# includeRequestBodyInCheck: the body goes to the provider and, unchanged, on to the app.
: >"$WORK/authz/http.log"
body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' --data-binary 'hello' "$BASE/anything/body/a")
expect_contains "$body" '"data": "hello"' "body in check: the app still gets the body"
check=$(cat "$WORK/authz/http.log")
expect_contains "$check" 'Content-Length: 5' "body in check: the check's Content-Length is the body's"
expect_contains "$check" 'x-envoy-auth-partial-body: false' "body in check: not partial"
expect_contains "$check" $'\r\n\r\nhello' "body in check: the body follows the head"
body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' -H 'Transfer-Encoding: chunked' --data-binary 'chunky' "$BASE/anything/body/c")
expect_contains "$body" '"data": "chunky"' "body in check: a chunked body reaches the app"
expect_contains "$(cat "$WORK/authz/http.log")" $'\r\n\r\nchunky' "body in check: a chunked body is sent decoded"
expect_eq "$(http_status "$BASE/anything/body/big" -H 'x-ext-authz: allow' --data-binary '0123456789abcdefXYZ')" 413 \
  "body over maxRequestBytes without allowPartialMessage: 413"
: >"$WORK/authz/http.log"
body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' --data-binary '0123456789abcdef' "$BASE/anything/partial/p")
expect_contains "$body" '"data": "0123456789abcdef"' "partial body: the app gets all of it"
check=$(cat "$WORK/authz/http.log")
expect_contains "$check" 'x-envoy-auth-partial-body: true' "partial body: marked partial"
expect_contains "$check" $'\r\n\r\n01234567\n====' "partial body: the provider gets maxRequestBytes"
body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' --data-binary 'hello grpc' "$BASE/anything/grpc-body/g")
expect_contains "$body" '"data": "hello grpc"' "grpc body: the app gets the body"
expect_contains "$(cat "$WORK/authz/grpc.log")" 'raw_body: "hello grpc"' "grpc body: packAsBytes puts it in raw_body"
echo "PASS ext_authz"
