#!/usr/bin/env bash
# CUSTOM with an HTTP provider that is a mesh workload (issue 14: "mTLS when it is a mesh
# workload"): the provider's `service` names a registry service, so the asking proxy reaches it as
# any call into the mesh — over mTLS with its own SVID, the endpoint's identity checked against
# the service's (secure naming) — and the provider's own proxy (STRICT) sees the caller's
# principal and applies its policy. An endpoint presenting another service account's certificate
# is never asked (statusOnError). A provider outside the registry is still called in plaintext.
# The same for a gRPC provider (an mTLS channel whose verifier checks the URI SAN).
#
# curl → details proxy (PERMISSIVE inbound, CUSTOM) ══mTLS══► ext-authz proxy (productpage SVID,
# STRICT, ALLOW only details) → test provider; the impostor proxy (reviews SVID) stands behind
# the "fake-authz" service that claims productpage.
source "$(dirname "$0")/../proxy/lib.sh"
source "$(dirname "$0")/../proxy/certs.sh"
source "$(dirname "$0")/ext_authz_lib.sh"
SERVER_BIN="$3"

make_mesh_svids
REVIEWS=spiffe://cluster.local/ns/default/sa/reviews
make_svid "$WORK" reviews mesh "$REVIEWS"
start_app app APP
start_authz_server "$SERVER_BIN"

# provider_proxy NAME SVID: STRICT HTTP and gRPC inbounds to the test provider, allowing only
# details' principal; its access log $WORK/NAME-access.log; sets NAME_IN and NAME_GRPC.
provider_proxy() {
  mkdir -p "$WORK/$1-policies"
  cat >"$WORK/$1-policies/allow.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-details, namespace: default}
spec:
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/details"]}}]}]
YAML
  run_proxy "$1" "${1}_IN=inbound[0]" "${1}_GRPC=inbound[1]" <<YAML
workload: {name: $1, namespace: default, serviceAccount: $2}
$(tls_yaml "$2")
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $HTTP_AUTHZ, protocol: http, mtlsMode: STRICT}
  - {port: 0, address: 127.0.0.1, appPort: $GRPC_AUTHZ, protocol: grpc, mtlsMode: STRICT}
accessLog: $WORK/$1-access.log
policyDir: $WORK/$1-policies
workers: 1
YAML
}
provider_proxy authzp productpage
provider_proxy impostor reviews

# service NAME HTTP-PORT GRPC-PORT: a Service (ports 8000 http, 9000 grpc) whose one endpoint
# (service account productpage) is 127.0.0.1 with those endpoint ports.
service() {
  cat <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  selector: {app: $1}
  ports: [{name: http, port: 8000, protocol: http}, {name: grpc, port: 9000, protocol: grpc}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: $1, namespace: default}
spec:
  endpoints:
  - {workload: $1-0, address: 127.0.0.1, serviceAccount: productpage, ports: [{port: 8000, endpointPort: $2}, {port: 9000, endpointPort: $3}]}
---
YAML
}

mkdir -p "$WORK/policies"
{
  service ext-authz "$authzp_IN" "$authzp_GRPC"
  service fake-authz "$impostor_IN" "$impostor_GRPC"
  cat <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  extensionProviders:
  - name: mesh-authz
    envoyExtAuthzHttp:
      service: ext-authz.default.svc.cluster.local
      port: 8000
      pathPrefix: /check
      timeout: 2s
      includeRequestHeadersInCheck: ["x-ext-authz"]
      headersToUpstreamOnAllow: ["x-ext-authz-check-result"]
  - name: short-name
    envoyExtAuthzHttp: {service: ext-authz, port: 8000, timeout: 2s, includeRequestHeadersInCheck: ["x-ext-authz"]}
  - name: fake-authz
    envoyExtAuthzHttp: {service: fake-authz.default, port: 8000, timeout: 2s, includeRequestHeadersInCheck: ["x-ext-authz"]}
  - name: plain
    envoyExtAuthzHttp: {service: 127.0.0.1, port: $HTTP_AUTHZ, timeout: 2s, includeRequestHeadersInCheck: ["x-ext-authz"]}
  - name: mesh-grpc
    envoyExtAuthzGrpc: {service: ext-authz.default.svc.cluster.local, port: 9000, timeout: 2s}
  - name: fake-grpc
    envoyExtAuthzGrpc: {service: fake-authz.default, port: 9000, timeout: 2s}
---
YAML
  custom mesh mesh-authz /anything/mesh/
  custom short short-name /anything/short/
  custom fake fake-authz /anything/fake/
  custom plain plain /anything/plain/
  custom mgrpc mesh-grpc /anything/mgrpc/
  custom fgrpc fake-grpc /anything/fgrpc/
} >"$WORK/policies/custom.yaml"

run_proxy proxy IN='inbound[0]' ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: PERMISSIVE}
admin: {port: 0}
accessLog: $WORK/access.log
policyDir: $WORK/policies
workers: 1
YAML
BASE="http://127.0.0.1:$IN"

body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' "$BASE/anything/mesh/a")
expect_contains "$body" '"x-ext-authz-check-result": "allowed"' "a provider in the mesh allows: its header reaches the app"
line=$(wait_for_line "$WORK/authzp-access.log" '"path":"/check/anything/mesh/a"')
expect_contains "$line" '"principal":"spiffe://cluster.local/ns/default/sa/details"' \
  "the provider's proxy saw the check over mTLS, from the asking workload's principal"
expect_eq "$(http_status "$BASE/anything/mesh/b" -H 'x-ext-authz: deny')" 401 "a provider in the mesh denies with its status"
expect_eq "$(http_status "$BASE/anything/short/c" -H 'x-ext-authz: allow')" 200 "the service's short name in the proxy's namespace"
# An HTTP/2 client (h2c) goes through the same check.
expect_eq "$(http_status "$BASE/anything/mesh/h2" --http2-prior-knowledge -H 'x-ext-authz: deny')" 401 "an h2c request is checked too (denied)"
body=$(curl -s --max-time 10 --http2-prior-knowledge -H 'x-ext-authz: allow' "$BASE/anything/mesh/h2")
expect_contains "$body" '"x-ext-authz-check-result": "allowed"' "an h2c request is checked too (allowed, header added)"
for i in 1 2 3; do http_status "$BASE/anything/mesh/k$i" -H 'x-ext-authz: allow' >/dev/null; done
pass "sequential checks over the pooled mTLS connection"

# Secure naming: the fake-authz endpoint presents reviews' certificate where productpage's is due.
expect_eq "$(http_status "$BASE/anything/fake/x" -H 'x-ext-authz: allow')" 403 \
  "an endpoint with another identity is refused: statusOnError (403)"
line=$(wait_for_line "$WORK/access.log" '"path":"/anything/fake/x"')
expect_contains "$line" '"outcome":"error"' "access log: the check failed"
if grep -q '/anything/fake' "$WORK/impostor-access.log" 2>/dev/null; then
  fail "the impostor received a check: $(cat "$WORK/impostor-access.log")"
fi
pass "the impostor was never sent the check"

# A provider named by address is outside the registry: plaintext, as before.
expect_eq "$(http_status "$BASE/anything/plain/p" -H 'x-ext-authz: allow')" 200 "a provider outside the registry: plaintext"

# --- gRPC provider in the mesh ---
body=$(curl -s --max-time 10 -H 'x-ext-authz: allow' "$BASE/anything/mgrpc/a")
expect_contains "$body" '"x-ext-authz-check-result": "allowed-by-grpc"' "a gRPC provider in the mesh allows"
line=$(wait_for_line "$WORK/authzp-access.log" '"path":"/envoy.service.auth.v3.Authorization/Check"')
expect_contains "$line" '"principal":"spiffe://cluster.local/ns/default/sa/details"' \
  "the gRPC check reached the provider's proxy over mTLS, from the asking workload's principal"
expect_eq "$(http_status "$BASE/anything/mgrpc/b" -H 'x-ext-authz: deny')" 403 "a gRPC provider in the mesh denies"
expect_eq "$(http_status "$BASE/anything/fgrpc/x" -H 'x-ext-authz: allow')" 403 \
  "a gRPC endpoint with another identity is refused: statusOnError (403)"
line=$(wait_for_line "$WORK/access.log" '"path":"/anything/fgrpc/x"')
expect_contains "$line" 'secure naming' "access log: why (secure naming)"
if grep -q 'Authorization/Check' "$WORK/impostor-access.log" 2>/dev/null; then
  fail "the impostor received a gRPC check: $(cat "$WORK/impostor-access.log")"
fi
pass "the impostor was never sent the gRPC check"

# HTTP: mesh 2 (a, b) + h2c 2 + short 1 + pooled 3 + plain 1; gRPC: 2; never the impostor's.
expect_eq "$(authz_count)" "http 9 grpc 2" "every check reached the provider once, none through the impostor"
echo "PASS: ext_authz_mesh"
