#!/usr/bin/env bash
# Policies at the edge (issue 20): AuthorizationPolicies and RequestAuthentication selecting the
# ingress gateway's labels are enforced on its listeners by the same enforcement step as any
# inbound port. Istio's authz-ingress task applied as written (httpbin-gateway.yaml, then the
# ingress-policy ALLOW by ipBlocks, then with the client's address, then a DENY); remoteIpBlocks
# from X-Forwarded-For with numTrustedProxies: 1 (the right-most entry counts, a spoofed left-most
# one does not); JWT 401/403 and an OPAPolicy at the edge; the PROXY protocol's client address as
# the direct peer; an ISTIO_MUTUAL listener that knows its mesh caller's principal.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/gateway_lib.sh"

make_gateway_mesh
HTTPBIN_ID=spiffe://cluster.local/ns/foo/sa/httpbin
make_svid "$WORK" httpbin mesh "$HTTPBIN_ID"
mkdir -p "$WORK/httpbin-policies"
start_app httpbin app
run_proxy httpbin-proxy HTTPBIN_IN='inbound[0]' <<YAML
workload: {name: httpbin, namespace: foo, serviceAccount: httpbin, labels: {app: httpbin}}
$(tls_yaml httpbin)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app, protocol: http, mtlsMode: STRICT}
accessLog: $WORK/httpbin-access.log
policyDir: $WORK/httpbin-policies
YAML

# Istio's samples/httpbin/httpbin-gateway.yaml (port 80 → 0 here: kernel-chosen) and the
# registry's view of samples/httpbin/httpbin.yaml's Service (port 8000) with its one endpoint.
cat >"$WORK/gw-policies/httpbin-gateway.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
  namespace: foo
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 0
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: foo
spec:
  hosts:
  - "*"
  gateways:
  - httpbin-gateway
  http:
  - route:
    - destination:
        host: httpbin
        port:
          number: 8000
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: httpbin, namespace: foo}
spec:
  endpoints:
  - {workload: httpbin-v1, address: 127.0.0.1, serviceAccount: httpbin, ports: [{port: 8000, endpointPort: $HTTPBIN_IN}]}
YAML

# gw: the ingress gateway with Istio's labels; numTrustedProxies: 1 (a balancer in front).
run_proxy gw GW='gateway[0]' <<YAML
workload: {name: istio-ingressgateway, namespace: istio-system, serviceAccount: istio-ingressgateway-service-account,
           labels: {app: istio-ingressgateway, istio: ingressgateway}, address: 127.0.0.1}
$(tls_yaml gateway)
accessLog: $WORK/gw-access.log
policyDir: $WORK/gw-policies
gateway: {credentialsDir: $WORK/creds, numTrustedProxies: 1}
YAML
URL="http://127.0.0.1:$GW/headers"
expect_eq "$(http_status "$URL")" 200 "authz-ingress: httpbin through the gateway, no policy → 200"

# ingress_policy ACTION BLOCKS_FIELD "CIDRS": the task's ingress-policy (istio-system, selector
# app: istio-ingressgateway), put in place atomically.
ingress_policy() {
  put_file "$WORK/gw-policies" ingress-policy.yaml <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ingress-policy
  namespace: istio-system
spec:
  selector:
    matchLabels:
      app: istio-ingressgateway
  action: $1
  rules:
  - from:
    - source:
        $2: [$3]
YAML
}

# A mesh-wide STRICT PeerAuthentication (the root namespace's) is for sidecars: the gateway's
# listeners still take their clients from outside the mesh. Written before the policy below, so
# the reload that shows that policy has it too.
put_file "$WORK/gw-policies" mesh-strict.yaml <<YAML
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
YAML

# 1. The task: ipBlocks is the direct peer (127.0.0.1 here).
ingress_policy ALLOW ipBlocks '"1.2.3.4", "5.6.7.0/24"'
wait_status "$URL" 403
pass "authz-ingress: ALLOW ipBlocks without the client's address → 403"
ingress_policy ALLOW ipBlocks '"1.2.3.4", "5.6.7.0/24", "127.0.0.1"'
wait_status "$URL" 200
pass "authz-ingress: the client's address added → 200 (a mesh-wide STRICT PeerAuthentication in force)"
ingress_policy DENY ipBlocks '"127.0.0.1"'
wait_status "$URL" 403
pass "authz-ingress: DENY ipBlocks with the client's address → 403"

# 2. remoteIpBlocks with numTrustedProxies: 1: the right-most X-Forwarded-For entry (what the
# trusted balancer appended) is the client; a left-most entry the client wrote is not.
ingress_policy ALLOW remoteIpBlocks '"203.0.113.0/24"'
wait_status "$URL" 200 -H 'X-Forwarded-For: 203.0.113.7'
pass "remoteIpBlocks: the right-most XFF entry allowed → 200"
expect_eq "$(http_status "$URL")" 403 "remoteIpBlocks: no X-Forwarded-For, the peer 127.0.0.1 → 403"
expect_eq "$(http_status "$URL" -H 'X-Forwarded-For: 203.0.113.7, 198.51.100.9')" 403 \
  "remoteIpBlocks: a spoofed left-most entry does not count → 403"
out=$(curl -s --max-time 10 -H 'X-Forwarded-For: 203.0.113.7' "$URL" | compact)
expect_contains "$out" '"x-forwarded-for":"203.0.113.7, 127.0.0.1"' "the backend sees the peer appended to X-Forwarded-For"
expect_contains "$out" "URI=$GATEWAY_ID" "httpbin's proxy was called with the gateway's SVID"

# 3. JWT at the edge: a token that does not verify → 401, no token where one is required → 403.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt.pem" 2>/dev/null
n=$(openssl rsa -in "$WORK/jwt.pem" -noout -modulus | cut -d= -f2 | xxd -r -p | b64url)
header=$(printf '{"alg":"RS256","kid":"k1","typ":"JWT"}' | b64url)
payload=$(printf '{"iss":"edge-issuer","sub":"alice","exp":4102444800}' | b64url)
TOKEN="$header.$payload.$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$WORK/jwt.pem" -binary | b64url)"
put_file "$WORK/gw-policies" jwt.yaml <<YAML
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt-edge, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: edge-issuer
    jwks: '{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","n":"$n","e":"AQAB"}]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  rules: [{from: [{source: {requestPrincipals: ["edge-issuer/*"]}}]}]
YAML
rm -f "$WORK/gw-policies/ingress-policy.yaml"
wait_status "$URL" 200 -H "Authorization: Bearer $TOKEN"
pass "JWT at the edge: a valid token → 200"
expect_eq "$(http_status "$URL")" 403 "JWT at the edge: no token → 403"
expect_eq "$(http_status "$URL" -H "Authorization: Bearer ${TOKEN%?}x")" 401 "JWT at the edge: a tampered token → 401"
rm -f "$WORK/gw-policies/jwt.yaml"
wait_status "$URL" 200

# OPAPolicy at the edge (the istio-system namespace's: the gateway's): its status and body, and
# an allowed request's header mutation reaching the backend.
put_file "$WORK/gw-policies" opa.yaml <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: OPAPolicy
metadata: {name: edge-opa, namespace: istio-system}
spec:
  policy: |
    package envoy.authz

    default allow := {"allowed": false, "http_status": 451, "body": "denied at the edge"}

    allow := {"allowed": true, "headers": {"x-edge-checked": "yes"}} if {
      input.attributes.request.http.headers["x-partner"] == "acme"
    }
YAML
wait_status "$URL" 451
pass "OPAPolicy at the edge: denied with its http_status"
expect_eq "$(curl -s --max-time 10 "$URL")" "denied at the edge" "OPAPolicy at the edge: its body"
expect_contains "$(curl -s --max-time 10 -H 'x-partner: acme' "$URL" | compact)" '"x-edge-checked":"yes"' \
  "OPAPolicy at the edge: an allowed request carries its header to the backend"
rm -f "$WORK/gw-policies/opa.yaml"
wait_status "$URL" 200

# 4. The PROXY protocol: its client address is the direct peer (ipBlocks) and what X-Forwarded-For
# gets appended. A second gateway behind a PROXY-protocol balancer, on the same documents.
run_proxy gw2 GW2='gateway[0]' <<YAML
workload: {name: istio-ingressgateway, namespace: istio-system, serviceAccount: istio-ingressgateway-service-account,
           labels: {app: istio-ingressgateway, istio: ingressgateway}, address: 127.0.0.1}
$(tls_yaml gateway)
accessLog: $WORK/gw2-access.log
policyDir: $WORK/gw-policies
gateway: {credentialsDir: $WORK/creds, proxyProtocol: true}
YAML
ingress_policy ALLOW ipBlocks '"192.0.2.0/24"'
proxied() {
  printf 'PROXY TCP4 %s 198.51.100.1 51000 80\r\nGET /headers HTTP/1.1\r\nHost: httpbin\r\nConnection: close\r\n\r\n' "$1" >"$WORK/proxied.req"
  raw_exchange "$GW2" "$WORK/proxied.req" 2>/dev/null
}
for _ in $(seq 1 100); do
  [ "$(proxied 203.0.113.9 | head -n1 | tr -d '\r')" = "HTTP/1.1 403 Forbidden" ] && break
  sleep 0.1
done
expect_eq "$(proxied 203.0.113.9 | head -n1 | tr -d '\r')" "HTTP/1.1 403 Forbidden" "PROXY header from 203.0.113.9 → 403 by ipBlocks"
out=$(proxied 192.0.2.7)
expect_eq "$(head -n1 <<<"$out" | tr -d '\r')" "HTTP/1.1 200 OK" "PROXY header from 192.0.2.7 → allowed by ipBlocks"
expect_contains "$(compact <<<"$out")" '"x-forwarded-for":"192.0.2.7"' "X-Forwarded-For names the PROXY header's client"
rm -f "$WORK/gw-policies/ingress-policy.yaml"

# 5. ISTIO_MUTUAL: a listener that takes the mesh's mTLS; the caller's principal decides.
put_file "$WORK/gw-policies" mutual.yaml <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mesh-gateway, namespace: istio-system}
spec:
  selector: {istio: meshgateway}
  servers:
  - port: {number: 0, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: ISTIO_MUTUAL}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: via-mesh, namespace: foo}
spec:
  hosts: ["*"]
  gateways: [istio-system/mesh-gateway]
  http: [{route: [{destination: {host: httpbin, port: {number: 8000}}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-details, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: meshgateway}}
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/details"]}}]}]
YAML
run_proxy gw3 GW3='gateway[0]' <<YAML
workload: {name: mesh-gateway, namespace: istio-system, serviceAccount: istio-ingressgateway-service-account,
           labels: {istio: meshgateway}, address: 127.0.0.1}
$(tls_yaml gateway)
accessLog: $WORK/gw3-access.log
policyDir: $WORK/gw-policies
gateway: {credentialsDir: $WORK/creds}
YAML
mesh_call() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 -k --cert "$WORK/$1.pem" --key "$WORK/$1.key" \
    "https://127.0.0.1:$GW3/headers" || true
}
expect_eq "$(mesh_call details)" 200 "ISTIO_MUTUAL: details' SVID is allowed by principal"
expect_eq "$(mesh_call other)" 403 "ISTIO_MUTUAL: another workload's SVID → 403"
expect_eq "$(http_status "https://127.0.0.1:$GW3/headers" -k)" 000 "ISTIO_MUTUAL: no client certificate → no connection"
expect_contains "$(grep '"status":200' "$WORK/gw3-access.log")" '"principal":"spiffe://cluster.local/ns/default/sa/details"' \
  "the gateway's access log names its mesh caller"
echo "PASS gateway_edge"
