#!/usr/bin/env bash
# client → inbound proxy (plaintext, DISABLE) with policyDir → app: the shared policy engine
# enforces a DENY path rule, RequestAuthentication (JWT) and a require-JWT ALLOW; a bad policy
# file refuses start-up with file:line.
source "$(dirname "$0")/lib.sh"
DEMO="$(cd "$(dirname "$0")/../../../examples/demo" && pwd)"

start_app app APP

# A policy directory with a malformed YAML file: the proxy exits non-zero with file:line.
mkdir -p "$WORK/badpolicies"
broken_policy >"$WORK/badpolicies/broken.yaml"
cat >"$WORK/badproxy.yaml" <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: DISABLE}
policyDir: $WORK/badpolicies
YAML
if timeout 10 "$PROXY_BIN" --config "$WORK/badproxy.yaml" >"$WORK/badproxy.out" 2>&1; then
  fail "a policy directory with a bad file was accepted"
fi
expect_contains "$(cat "$WORK/badproxy.out")" "broken.yaml:" "bad policy file rejected with its file name"
grep -qE 'broken\.yaml:[0-9]+' "$WORK/badproxy.out" || fail "no file:line in: $(cat "$WORK/badproxy.out")"
pass "bad policy file rejected with file:line"

mkdir -p "$WORK/policies"
cp "$DEMO/deny-path.yaml" "$DEMO/jwt-example.yaml" "$DEMO/require-jwt.yaml" "$WORK/policies/"
run_details_proxy "$APP"
TOKEN=$(tr -d '\n' <"$DEMO/demo-token.jwt")

expect_eq "$(http_status "$BASE/details/1")" 403 "no token → 403 (require-jwt ALLOW does not match)"
expect_contains "$(curl -s --max-time 10 "$BASE/details/1")" "RBAC: access denied" "403 body"
expect_eq "$(http_status "$BASE/details/1" -H 'Authorization: Bearer badtoken')" 401 "bad token → 401"
expect_contains "$(curl -s --max-time 10 -H 'Authorization: Bearer badtoken' "$BASE/details/1")" "Jwt verification fails" "401 body"
expect_not_contains "$(cat "$WORK/app.out")" "/details/1" "denied requests never reached the app"
expect_eq "$(http_status "$BASE/details/42" -H "Authorization: Bearer $TOKEN")" 200 "demo token → 200"
wait_for_line "$WORK/app.out" '^request GET /details/42' >/dev/null
pass "the app saw the authorized request"
expect_eq "$(http_status "$BASE/admin/x" -H "Authorization: Bearer $TOKEN")" 403 "/admin/x with token → 403 (DENY)"
expect_not_contains "$(cat "$WORK/app.out")" "/admin/x" "the denied /admin/x never reached the app"
# Path tricks: judged on the normalized path, and the app is sent exactly that path.
expect_eq "$(http_status "$BASE/details/../admin/y" --path-as-is -H "Authorization: Bearer $TOKEN")" 403 "/details/../admin/y → 403 (normalized to /admin/y)"
expect_not_contains "$(cat "$WORK/app.out")" "/admin/y" "the dot-segment trick never reached the app"
expect_eq "$(http_status "$BASE/admin/../details/77?q=1" --path-as-is -H "Authorization: Bearer $TOKEN")" 200 "/admin/../details/77 → 200"
wait_for_line "$WORK/app.out" '^request GET /details/77\?q=1$' >/dev/null
pass "the app received the normalized path /details/77?q=1"
# forwardOriginalToken defaults to false: the verified token does not reach the app.
echoed=$(curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" -H "X-Probe: kept" "$BASE/headers")
expect_contains "$echoed" 'kept' "allowed request reaches the app with its other headers"
expect_not_contains "$echoed" "$TOKEN" "the verified JWT is removed before the app (forwardOriginalToken: false)"

dump=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/config_dump")
expect_contains "$dump" '"authorizationPoliciesApplied": 2' "config_dump shows the applied policies"
expect_contains "$dump" "$WORK/policies" "config_dump shows the policy dir"
# JWT outputs (outputPayloadToHeader / outputClaimToHeaders) are set on the forwarded request;
# a client cannot supply them itself; a token in the access_token query parameter is removed.
mkdir -p "$WORK/jwtout"
sed -e 's/^  - issuer: "testing@secure.istio.io"$/&\n    outputPayloadToHeader: x-jwt-payload\n    outputClaimToHeaders: [{header: x-jwt-foo, claim: foo}, {header: x-jwt-missing, claim: nope}]/' \
  "$DEMO/jwt-example.yaml" >"$WORK/jwtout/jwt.yaml"
grep -q outputPayloadToHeader "$WORK/jwtout/jwt.yaml" || fail "could not derive the outputs policy from jwt-example.yaml"
run_proxy proxy2 IN2='inbound[0]' < <(sed -e "s|policyDir: .*|policyDir: $WORK/jwtout|" \
  -e "s|accessLog: .*|accessLog: $WORK/access2.log|" "$WORK/proxy.yaml")
echoed=$(curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" -H "X-Jwt-Missing: forged" "http://127.0.0.1:$IN2/headers")
expect_contains "$echoed" '"x-jwt-foo": "bar"' "outputClaimToHeaders: claim foo → x-jwt-foo"
payload=$(cut -d. -f2 <<<"$TOKEN")
expect_contains "$echoed" "\"x-jwt-payload\": \"$payload\"" "outputPayloadToHeader: the verified payload"
expect_not_contains "$echoed" "forged" "an output header the client sent is dropped (claim absent from the token)"
expect_not_contains "$echoed" "$TOKEN" "the token header is removed"
echoed=$(curl -s --max-time 10 -H "X-Jwt-Payload: forged" -H "X-Jwt-Foo: forged" "http://127.0.0.1:$IN2/headers")
expect_not_contains "$echoed" "forged" "no token: client-supplied output headers are dropped"
expect_eq "$(http_status "http://127.0.0.1:$IN2/anything?x=1&access_token=$TOKEN&y=2")" 200 "token in access_token parameter → 200"
wait_for_line "$WORK/app.out" '^request GET /anything\?x=1&y=2$' >/dev/null
pass "the access_token parameter is removed before the app"
echo "PASS policy"
