#!/usr/bin/env bash
# OPAPolicy in a standalone proxy's policyDir: an allowed request reaches the app (with the
# policy's header set on it), a denied one gets the policy's status and body, and the access log
# names the OPAPolicy; a changed policy file gives the new decision within a bounded poll; a
# module that does not compile is refused with file:line:col and the last good policy stays.
source "$(dirname "$0")/lib.sh"

start_app app APP
mkdir -p "$WORK/policies"

# opa_policy NAME REGO: an OPAPolicy default/NAME for every workload of the namespace.
opa_policy() {
  printf 'apiVersion: meshguard.io/v1alpha1\nkind: OPAPolicy\nmetadata: {name: %s, namespace: default}\nspec:\n' "$1"
  echo "  policy: |"
  sed 's/^/    /' <<<"$2"
}

opa_policy opa-authz '
package envoy.authz

default allow := {"allowed": false, "http_status": 451, "body": "denied by opa"}

allow := {"allowed": true, "headers": {"x-opa-checked": "yes"}} if {
  input.attributes.request.http.method == "GET"
  input.parsed_path[0] == "status"
}

allow := {"allowed": true, "headers": {"x-opa-checked": "yes"}} if {
  input.attributes.request.http.headers["x-user"] == "alice"
}' | put_file "$WORK/policies" opa.yaml
run_details_proxy "$APP"

expect_eq "$(http_status "$BASE/status/200")" 200 "GET /status/200: allowed by the OPAPolicy"
body=$(curl -s --max-time 10 -H 'x-user: alice' "$BASE/headers")
expect_contains "$body" '"x-opa-checked"' "allowed request carries the policy's header upstream"
expect_eq "$(http_status "$BASE/ip")" 451 "GET /ip: denied with the policy's http_status"
expect_eq "$(curl -s --max-time 10 "$BASE/ip")" "denied by opa" "the denial carries the policy's body"
expect_eq "$(http_status "$BASE/status/200" -X POST)" 451 "POST /status/200: denied"
wait_for_line "$WORK/access.log" '"path":"/ip"' >/dev/null
line=$(grep '"path":"/ip"' "$WORK/access.log" | tail -n1)
expect_contains "$line" '"policy":"default/opa-authz"' "access log names the OPAPolicy"
expect_contains "$line" '"action":"CUSTOM"' "access log: the CUSTOM slot"
expect_contains "$line" 'OPAPolicy default/opa-authz' "access log: the reason names the OPAPolicy"

# A changed policy file: the new decision within a bounded poll (wait_status: ~10 s).
opa_policy opa-authz '
package envoy.authz

default allow := false

allow if input.attributes.request.http.path == "/ip"' | put_file "$WORK/policies" opa.yaml
wait_status "$BASE/status/200" 403
pass "policy changed: /status/200 now denied (boolean false: 403)"
expect_eq "$(http_status "$BASE/ip")" 200 "policy changed: /ip now allowed"

# A module that does not compile: refused with file:line:col, the last good policy kept.
opa_policy opa-authz '
package envoy.authz

allow if {
  input.attributes.request.http.path == who
}' | put_file "$WORK/policies" opa.yaml
wait_for_line "$WORK/proxy.err" 'policy reload failed, keeping version 2: .*opa\.yaml:10:7: OPAPolicy default/opa-authz: spec\.policy: rego_unsafe_var_error' >/dev/null
pass "broken module refused with file:line:col"
expect_eq "$(http_status "$BASE/ip")" 200 "broken module: the last good policy still allows /ip"
expect_eq "$(http_status "$BASE/status/200")" 403 "broken module: the last good policy still denies /status/200"

# An I/O built-in is refused the same way.
opa_policy opa-authz '
package envoy.authz

allow if http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200' |
  put_file "$WORK/policies" opa.yaml
wait_for_line "$WORK/proxy.err" 'policy reload failed, keeping version 2: .*opa\.yaml:[0-9]+:[0-9]+: .*http\.send' >/dev/null
pass "http.send refused at load"
expect_eq "$(http_status "$BASE/ip")" 200 "I/O built-in refused: the last good policy still in force"
echo "PASS opa"
