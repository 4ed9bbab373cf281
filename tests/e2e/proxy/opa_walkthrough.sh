#!/usr/bin/env bash
# ASM's OPA walkthrough through a real proxy: productpage's OPAPolicy (the authz_check case
# opa-walkthrough-allow, unchanged) allows GET /productpage only to a caller whose HS256 JWT
# carries a role allowed that path. Then, on the same proxy: a policy reading the payload
# RequestAuthentication verified (jwt_authn metadata), an object result's response headers on a
# denial and on an allow, a dry-run OPAPolicy that is logged and counted but never enforced, and
# the access log and metrics naming each OPAPolicy with its outcome.
source "$(dirname "$0")/lib.sh"
CASES="$(cd "$(dirname "$0")/../authz_check/cases" && pwd)"
DEMO="$(cd "$(dirname "$0")/../../../examples/demo" && pwd)"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
# hs256 SECRET PAYLOAD: a compact HS256 JWS.
hs256() {
  local header payload sig
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '%s' "$2" | b64url)
  sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -mac HMAC -macopt "key:$1" -binary | b64url)
  echo "$header.$payload.$sig"
}
SECRET=meshguard-walkthrough-secret
GUEST=$(hs256 "$SECRET" '{"sub":"alice","role":"guest","exp":4102444800}')
ADMIN_TOKEN=$(hs256 "$SECRET" '{"sub":"bob","role":"admin","exp":4102444800}')
FORGED=$(hs256 not-the-secret '{"sub":"mallory","role":"admin","exp":4102444800}')

start_app app APP
mkdir -p "$WORK/policies"
cp "$CASES/opa-walkthrough-allow/policies/productpage-opa.yaml" "$WORK/policies/"
run_proxy proxy IN='inbound[0]' ADMIN=admin <<YAML
workload: {name: productpage, namespace: default, serviceAccount: bookinfo-productpage, labels: {app: productpage}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0}
accessLog: $WORK/access.log
policyDir: $WORK/policies
YAML
BASE="http://127.0.0.1:$IN"
METRICS="http://127.0.0.1:$ADMIN/metrics"

# The sample app has no /productpage: an allowed request gets the app's 404, a denied one the
# proxy's 403.
expect_eq "$(http_status "$BASE/productpage" -H "Authorization: Bearer $GUEST")" 404 \
  "guest token, GET /productpage: allowed (reaches the app)"
expect_eq "$(http_status "$BASE/productpage")" 403 "no token: denied (the decision is false)"
expect_eq "$(http_status "$BASE/productpage" -H "Authorization: Bearer $FORGED")" 403 \
  "token signed with another key: denied"
expect_eq "$(http_status "$BASE/productpage" -X POST -H "Authorization: Bearer $GUEST")" 403 \
  "guest token, POST /productpage: denied"
expect_eq "$(http_status "$BASE/api/v1/products" -H "Authorization: Bearer $GUEST")" 403 \
  "guest token, GET /api/v1/products: denied (not in the guest role)"
expect_eq "$(http_status "$BASE/api/v1/products" -H "Authorization: Bearer $ADMIN_TOKEN")" 404 \
  "admin token, GET /api/v1/products: allowed"
wait_for_count "$WORK/access.log" '"path":"/api/v1/products"' 2
line=$(grep '"path":"/api/v1/products"' "$WORK/access.log" | head -n1)
expect_contains "$line" '"opa":{"default/productpage-opa":{"outcome":"denied","dry_run":false}}' \
  "access log: the OPAPolicy and its outcome (denied)"
expect_contains "$line" '"action":"CUSTOM"' "access log: the CUSTOM slot"
line=$(grep '"path":"/api/v1/products"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"opa":{"default/productpage-opa":{"outcome":"allowed","dry_run":false}}' \
  "access log: the OPAPolicy and its outcome (allowed)"
expect_contains "$line" 'allowed by OPAPolicy default/productpage-opa' "access log: the reason names it"
metrics=$(curl -s --max-time 10 "$METRICS")
expect_contains "$metrics" 'meshguard_opa_decisions_total{policy="default/productpage-opa",outcome="allowed",dry_run="false"} 2' \
  "metrics: 2 allowed by the OPAPolicy"
expect_contains "$metrics" 'meshguard_opa_decisions_total{policy="default/productpage-opa",outcome="denied",dry_run="false"} 4' \
  "metrics: 4 denied by the OPAPolicy"

# The verified payload where jwt_authn puts it: RequestAuthentication (Istio's demo issuer) plus
# an OPAPolicy reading metadataContext; an object result with response headers both ways; and a
# dry-run OPAPolicy that would deny everything but GET.
rm "$WORK/policies/productpage-opa.yaml"
sed 's/app: details/app: productpage/' "$DEMO/jwt-example.yaml" >"$WORK/policies/jwt.yaml"
TOKEN=$(tr -d '\n' <"$DEMO/demo-token.jwt")
cat >"$WORK/policies/.opa.yaml.tmp" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: OPAPolicy
metadata: {name: claims, namespace: default}
spec:
  policy: |
    package envoy.authz

    payload := input.attributes.metadataContext.filterMetadata["envoy.filters.http.jwt_authn"].payload

    default allow := {"allowed": false, "http_status": 401, "body": "{\"error\":\"no foo claim\"}",
                      "headers": {"content-type": "application/json", "www-authenticate": "Bearer"}}

    allow := {"allowed": true, "headers": {"x-foo-claim": payload.foo},
              "request_headers_to_remove": ["x-remove-me"],
              "response_headers_to_add": {"x-opa-decision": "allowed"}} if payload.foo == "bar"
---
apiVersion: meshguard.io/v1alpha1
kind: OPAPolicy
metadata:
  name: get-only
  namespace: default
  annotations: {istio.io/dry-run: "true"}
spec:
  policy: |
    package envoy.authz

    allow if input.attributes.request.http.method == "GET"
YAML
mv -f "$WORK/policies/.opa.yaml.tmp" "$WORK/policies/opa.yaml"
wait_status "$BASE/headers" 401
pass "policies reloaded: no token → the policy's 401"
resp=$(curl -s -i --max-time 10 "$BASE/headers")
expect_contains "$resp" '{"error":"no foo claim"}' "denial: the policy's body"
expect_contains "$resp" 'content-type: application/json' "denial: the policy's content-type replaces text/plain"
expect_not_contains "$resp" 'text/plain' "denial: no default content-type"
expect_contains "$resp" 'www-authenticate: Bearer' "denial: the policy's headers"
resp=$(curl -s -i --max-time 10 -H "Authorization: Bearer $TOKEN" -H 'x-remove-me: 1' "$BASE/headers")
expect_contains "$resp" 'HTTP/1.1 200' "verified token with foo=bar: allowed"
expect_contains "$resp" '"x-foo-claim": "bar"' "allow: the policy's header set upstream from the verified payload"
expect_not_contains "$resp" 'x-remove-me' "allow: request_headers_to_remove removed it before the app"
expect_contains "$resp" 'x-opa-decision: allowed' "allow: response_headers_to_add on the app's response"
# The dry-run policy would deny a POST; it is not enforced.
expect_eq "$(http_status "$BASE/anything" -X POST -H "Authorization: Bearer $TOKEN")" 200 \
  "dry-run OPAPolicy that would deny a POST: not enforced"
wait_for_line "$WORK/access.log" '"method":"POST"' >/dev/null
line=$(grep '"method":"POST"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"default/get-only":{"outcome":"undefined","dry_run":true}' \
  "access log: the dry-run OPAPolicy and its outcome"
expect_contains "$line" '"dry_run":false,"dry_run_policy":"default/get-only"' \
  "access log: the shadow outcome (would have denied) names it"
metrics=$(curl -s --max-time 10 "$METRICS")
expect_contains "$metrics" 'meshguard_opa_decisions_total{policy="default/get-only",outcome="undefined",dry_run="true"} 1' \
  "metrics: the dry-run OPAPolicy's outcome counted"
expect_contains "$metrics" 'meshguard_authz_decisions_total{action="DRY_RUN",policy="default/get-only",result="denied",dry_run="true"}' \
  "metrics: the shadow denial counted"
echo "PASS opa_walkthrough"
