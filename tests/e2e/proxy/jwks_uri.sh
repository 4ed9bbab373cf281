#!/usr/bin/env bash
# RequestAuthentication with jwksUri in the proxy: a JWKS server on 127.0.0.1 (python3's
# http.server over a temp dir), tokens signed with the openssl CLI. A valid token → 200, a
# tampered one → 401, a token whose key is not published → 401; a rule whose jwksUri cannot be
# fetched fails closed (401); the server rotates its key set and a policy reload picks it up
# (old key → 401, new key → 200); /config_dump shows the jwksUri state.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is required (scripts/install-deps.sh)"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
mk_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/$1.pem" 2>/dev/null; }
# jwk_of KEY KID: the public JWK (RSA n from the modulus, e = 65537).
jwk_of() {
  local n
  n=$(openssl rsa -in "$WORK/$1.pem" -noout -modulus | cut -d= -f2 |
    python3 -c 'import sys,binascii,base64; print(base64.urlsafe_b64encode(binascii.unhexlify(sys.stdin.read().strip())).decode().rstrip("="))')
  printf '{"kty":"RSA","kid":"%s","alg":"RS256","use":"sig","n":"%s","e":"AQAB"}' "$2" "$n"
}
# mk_token KEY KID ISSUER SUB: an RS256 token valid until 2100.
mk_token() {
  local header payload sig
  header=$(printf '{"alg":"RS256","kid":"%s","typ":"JWT"}' "$2" | b64url)
  payload=$(printf '{"iss":"%s","sub":"%s","exp":4102444800}' "$3" "$4" | b64url)
  sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -sign "$WORK/$1.pem" -binary | b64url)
  echo "$header.$payload.$sig"
}

mk_key k1
mk_key k2
TOKEN1=$(mk_token k1 k1 e2e-issuer alice)
TOKEN2=$(mk_token k2 k2 e2e-issuer bob)
# Same header and payload as TOKEN1, signature of another key: must never verify.
TAMPERED="$(cut -d. -f1,2 <<<"$TOKEN1").$(cut -d. -f3 <<<"$TOKEN2")"
OTHER=$(mk_token k1 k1 unreachable-issuer carol)

mkdir -p "$WORK/jwks"
printf '{"keys":[%s]}' "$(jwk_of k1 k1)" | put_file "$WORK/jwks" jwks.json
start jwks python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$WORK/jwks"
JWKS_PID=$LAST_PID
JWKS_PORT=$(wait_for_line "$WORK/jwks.out" 'port [0-9]+' | sed -E 's/.* port ([0-9]+).*/\1/')
[ -n "$JWKS_PORT" ] || fail "no JWKS server port"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$JWKS_PORT/jwks.json")" '"kid":"k1"' "JWKS server serves k1"

start_app app APP
mkdir -p "$WORK/policies"
{
  policy_head RequestAuthentication jwt-remote "app: details"
  cat <<YAML
  jwtRules:
  - issuer: e2e-issuer
    jwksUri: http://127.0.0.1:$JWKS_PORT/jwks.json
  - issuer: unreachable-issuer
    jwksUri: http://127.0.0.1:1/jwks.json
    timeout: 1s
---
YAML
  policy_head AuthorizationPolicy require-jwt "app: details"
  echo '  rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]'
} >"$WORK/policies/jwt.yaml"
run_details_proxy "$APP"

# The keys are fetched in the background right after start-up.
wait_status "$BASE/details/1" 200 -H "Authorization: Bearer $TOKEN1"
pass "valid token (key k1 from jwksUri) → 200"
wait_for_line "$WORK/jwks.err" 'GET /jwks.json' >/dev/null
pass "the proxy fetched the JWKS from the loopback server"
expect_eq "$(http_status "$BASE/details/1" -H "Authorization: Bearer $TAMPERED")" 401 "tampered token → 401"
expect_contains "$(curl -s --max-time 10 -H "Authorization: Bearer $TAMPERED" "$BASE/details/1")" "Jwt verification fails" "401 body"
expect_eq "$(http_status "$BASE/details/1" -H "Authorization: Bearer $TOKEN2")" 401 "token signed with the unpublished k2 → 401"
expect_eq "$(http_status "$BASE/details/1" -H "Authorization: Bearer $OTHER")" 401 "issuer whose jwksUri is unreachable → 401 (fail closed)"
expect_eq "$(http_status "$BASE/details/1")" 403 "no token → 403 (require-jwt)"
expect_eq "$(grep -c '^request GET /details/1' "$WORK/app.out")" 1 "only the valid request reached the app"

dump=$(curl -s --max-time 10 "http://127.0.0.1:$ADMIN/config_dump")
[ "$(jq -r --arg u "http://127.0.0.1:$JWKS_PORT/jwks.json" '.policy.jwksUri[] | select(.uri==$u) | .keys' <<<"$dump")" = Available ] ||
  fail "config_dump does not show the fetched keys: $(jq -c .policy.jwksUri <<<"$dump")"
pass "config_dump: jwksUri keys Available"
unreachable=$(jq -r '.policy.jwksUri[] | select(.uri=="http://127.0.0.1:1/jwks.json")' <<<"$dump")
[ "$(jq -r .keys <<<"$unreachable")" = Unavailable ] || fail "unreachable jwksUri not Unavailable: $unreachable"
pass "config_dump: unreachable jwksUri Unavailable"

# Rotation: the server now publishes k2 only; a policy reload re-fetches every jwksUri.
fetches_before=$(grep -c 'GET /jwks.json' "$WORK/jwks.err")
printf '{"keys":[%s]}' "$(jwk_of k2 k2)" | put_file "$WORK/jwks" jwks.json
{ cat "$WORK/policies/jwt.yaml"; echo "# rotated"; } | put_file "$WORK/policies" jwt.yaml
wait_status "$BASE/details/2" 200 -H "Authorization: Bearer $TOKEN2"
pass "after the reload: the rotated key k2 → 200"
expect_eq "$(http_status "$BASE/details/3" -H "Authorization: Bearer $TOKEN1")" 401 "after the reload: the retired key k1 → 401"
[ "$(grep -c 'GET /jwks.json' "$WORK/jwks.err")" -gt "$fetches_before" ] || fail "no new JWKS fetch after the reload"
pass "the reload re-fetched the JWKS"
wait_for_line "$WORK/proxy.err" 'policy reloaded: version 2' >/dev/null
expect_not_contains "$(cat "$WORK/app.out")" "/details/3" "the request with the retired key never reached the app"

# The fetch happens off the request path: with the JWKS server gone, requests are still answered
# at once from the keys already held (fail static), and a reload does not block them.
kill -TERM "$JWKS_PID" 2>/dev/null || true
{ cat "$WORK/policies/jwt.yaml"; echo "# again"; } | put_file "$WORK/policies" jwt.yaml
wait_for_line "$WORK/proxy.err" 'policy reloaded: version 3' >/dev/null
expect_eq "$(http_status "$BASE/details/4" -H "Authorization: Bearer $TOKEN2")" 200 "JWKS server down after a reload: last good keys still verify"
echo "PASS jwks_uri"
