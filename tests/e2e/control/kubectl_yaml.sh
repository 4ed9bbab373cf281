#!/usr/bin/env bash
# Istio YAML as people apply it with kubectl, through `meshguardctl apply` to a live control plane
# and through the offline `analyze` / `authz check` on the same files: a file that mixes the
# security kinds with VirtualService, Service, ... documents applies the security and routing kinds
# and warns once about the rest, while an unknown security kind still refuses the whole apply; of two
# documents with one name the later wins; -n/--namespace places documents written without a
# namespace (a mesh-wide STRICT PeerAuthentication applied with -n istio-system is mesh-wide).
source "$(dirname "$0")/lib.sh"

start_control

# request_json FILE NS [PRINCIPAL]: a GET to workload app=httpbin in namespace NS (plaintext
# without PRINCIPAL).
request_json() {
  jq -n --arg ns "$2" --arg p "${3:-}" '{
    destination: {namespace: $ns, labels: {app: "httpbin"}, port: 8000},
    source: (if $p == "" then {ip: "10.0.0.1"} else {ip: "10.0.0.1", principal: $p} end),
    request: {method: "GET", path: "/headers", host: "httpbin:8000"}}' >"$1"
}
# status_of CHECK_ARGS...: the status `authz check` decides.
status_of() { ctl authz check "$@" 2>/dev/null | jq -r .status; }

# --- mixed files -----------------------------------------------------------------------------
cat >"$WORK/mixed.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: foo
spec:
  ports: [{name: http, port: 8000}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec: {hosts: [httpbin], http: [{route: [{destination: {host: httpbin}}]}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: foo}
spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: foo}
spec: {replicas: 1}
YAML
out=$(ctl apply -f "$WORK/mixed.yaml" 2>"$WORK/apply.stderr") || fail "mixed file refused: $(cat "$WORK/apply.stderr")"
expect_contains "$out" "authorizationpolicy/foo/allow-nothing created" "mixed file: the AuthorizationPolicy is applied"
warning=$(cat "$WORK/apply.stderr")
expect_eq "$(wc -l <"$WORK/apply.stderr")" 1 "mixed file: one warning line"
expect_contains "$warning" "warning: skipped 2 documents of kinds meshguard does not enforce: Service foo/httpbin ($WORK/mixed.yaml:1), Deployment foo/httpbin ($WORK/mixed.yaml:19)" \
  "mixed file: the warning names every skipped document with file:line"
# Istio's routing kinds (VirtualService here) are stored beside the security kinds (gateways use them).
expect_contains "$out" "virtualservice/default/httpbin created" "mixed file: the VirtualService is applied"
expect_eq "$(ctl get all -A -o json | jq -c '[.items[] | .kind + "/" + .metadata.namespace + "/" + .metadata.name]')" \
  '["AuthorizationPolicy/foo/allow-nothing","VirtualService//httpbin"]' "mixed file: the security and routing kinds are stored"
expect_contains "$(ctl get vs -o wide)" "hosts=httpbin" "get vs: the VirtualService's hosts"
expect_not_contains "$(ctl get ap allow-nothing -n foo -o yaml)" "VirtualService" "the stored document is the policy's own"
# The same file offline: the same warning, the same resources.
expect_contains "$(ctl analyze -f "$WORK/mixed.yaml" 2>&1 >/dev/null)" "warning: skipped 2 documents" "analyze: same warning"
request_json "$WORK/foo.json" foo cluster.local/ns/foo/sa/sleep
check_err=$(ctl authz check -f "$WORK/mixed.yaml" --request "$WORK/foo.json" 2>&1 >/dev/null)
expect_contains "$check_err" "warning: skipped 2 documents" "authz check: same warning"
expect_eq "$(status_of -f "$WORK/mixed.yaml" --request "$WORK/foo.json")" 403 "authz check: the mixed file's policy decides"

# An unknown kind of a security group is refused, and with it the whole apply.
{
  cat "$WORK/mixed.yaml"
  printf -- '---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: foo}\n'
  printf 'spec: {mtls: {mode: STRICT}}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolcy\n'
  printf 'metadata: {name: typo, namespace: foo}\nspec: {}\n'
} >"$WORK/typo.yaml"
rc=0
err=$(ctl apply -f "$WORK/typo.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "an unknown security.istio.io kind was applied"
expect_contains "$err" "$WORK/typo.yaml:29: unknown kind \"AuthorizationPolcy\" in security.istio.io/v1" "typo: file:line"
[ -z "$(ctl get pa -A -o json | jq -r '.items[].metadata.name')" ] || fail "typo: the file's PeerAuthentication was applied"
pass "typo: nothing of the file is applied"
for cmd in analyze "authz check --request $WORK/foo.json"; do
  rc=0
  # shellcheck disable=SC2086
  err=$(ctl $cmd -f "$WORK/typo.yaml" 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "$cmd accepted the unknown kind"
  expect_contains "$err" "typo.yaml:29: unknown kind" "$cmd refuses the unknown kind"
done


# --- same names ------------------------------------------------------------------------------
# foo/gate is ALLOW in the first file and in the first document of the second, DENY in the last:
# the last one wins everywhere (a DENY of /headers → 403; the earlier ALLOW would give 200).
gate() {
  printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: gate, namespace: foo}\n'
  printf 'spec:\n  selector: {matchLabels: {app: httpbin}}\n  action: %s\n  rules: [{to: [{operation: {paths: [/headers]}}]}]\n' "$1"
}
gate ALLOW >"$WORK/gate1.yaml"
{ gate ALLOW; echo ---; gate DENY; } >"$WORK/gate2.yaml"
ctl delete ap allow-nothing -n foo >/dev/null
ctl delete vs httpbin >/dev/null
out=$(ctl apply -f "$WORK/gate1.yaml" -f "$WORK/gate2.yaml") || fail "apply with a name twice refused"
expect_contains "$out" "authorizationpolicy/foo/gate created" "same name: applied once"
expect_contains "$(ctl get ap gate -n foo -o yaml)" "action: DENY" "same name: the later document is stored"
expect_eq "$(ctl get all -A -o json | jq '.items | length')" 1 "same name: one resource"
ctl get all -A -o yaml >"$WORK/held.yaml"
expect_eq "$(status_of -f "$WORK/held.yaml" --request "$WORK/foo.json")" 403 "same name: the mesh denies (held resources)"
expect_eq "$(status_of -f "$WORK/gate1.yaml" -f "$WORK/gate2.yaml" --request "$WORK/foo.json")" 403 \
  "same name: authz check on the same files decides as the mesh"
expect_eq "$(status_of -f "$WORK/gate2.yaml" -f "$WORK/gate1.yaml" --request "$WORK/foo.json")" 200 \
  "same name: files in the other order, the ALLOW is later and wins"
analysis=$(ctl analyze -f "$WORK/gate1.yaml" -f "$WORK/gate2.yaml")
expect_contains "$analysis" "MG0007 warning foo/gate: AuthorizationPolicy defined twice: $WORK/gate1.yaml:1 is replaced by $WORK/gate2.yaml:9 (the later document wins)" \
  "analyze: the first file's document is replaced (both locations)"
expect_contains "$analysis" "$WORK/gate2.yaml:1 is replaced by $WORK/gate2.yaml:9" "analyze: the same file's earlier document too"


# --- -n/--namespace --------------------------------------------------------------------------
ctl delete ap gate -n foo >/dev/null
cat >"$WORK/strict.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: STRICT
YAML
request_json "$WORK/foo-plain.json" foo
request_json "$WORK/default-plain.json" default
start_app app APP
start_workload details details "$APP"
expect_eq "$(http_status "http://127.0.0.1:$details_IN/status/200")" 200 "before: plaintext to details (ns default) passes"

out=$(ctl apply -n istio-system -f "$WORK/strict.yaml") || fail "apply -n istio-system refused"
expect_contains "$out" "peerauthentication/istio-system/default created" "-n istio-system: stored in istio-system"
expect_contains "$(ctl get pa default -n istio-system -o yaml)" "namespace: istio-system" "the stored document names its namespace"
ctl get all -A -o yaml >"$WORK/held.yaml"
expect_eq "$(status_of -f "$WORK/held.yaml" --request "$WORK/foo-plain.json")" 0 \
  "-n istio-system: mesh-wide STRICT (authz check on the held resources: plaintext to ns foo → 0)"
expect_eq "$(status_of -n istio-system -f "$WORK/strict.yaml" --request "$WORK/foo-plain.json")" 0 \
  "authz check -n istio-system on the file: the same decision"
wait_refused "$details_IN" || fail "-n istio-system: the proxy still accepts plaintext"
pass "-n istio-system: the proxy enforces mesh-wide STRICT"
ctl delete pa default -n istio-system >/dev/null

out=$(ctl apply -f "$WORK/strict.yaml") || fail "apply without -n refused"
expect_contains "$out" "peerauthentication/default/default created" "without -n: stored in default"
ctl get all -A -o yaml >"$WORK/held.yaml"
expect_eq "$(status_of -f "$WORK/held.yaml" --request "$WORK/foo-plain.json")" 200 "without -n: not mesh-wide (ns foo plaintext → 200)"
expect_eq "$(status_of -f "$WORK/held.yaml" --request "$WORK/default-plain.json")" 0 "without -n: STRICT for ns default"
expect_eq "$(status_of -f "$WORK/strict.yaml" --request "$WORK/foo-plain.json")" 200 "authz check without -n: the same"
ctl delete pa default -n default >/dev/null

# A document naming another namespace than -n is refused (kubectl's rule), with file:line, and
# nothing of the apply lands.
rc=0
err=$(ctl apply -n bar -f "$WORK/strict.yaml" -f "$WORK/gate1.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a namespace mismatch was applied"
expect_contains "$err" "$WORK/gate1.yaml:3: the namespace from the provided object (\"foo\") does not match the namespace given with -n/--namespace (\"bar\")" \
  "mismatch: file:line and both namespaces"
expect_eq "$(ctl get all -A -o json | jq '.items | length')" 0 "mismatch: nothing applied"
for cmd in analyze "authz check --request $WORK/foo.json"; do
  rc=0
  # shellcheck disable=SC2086
  err=$(ctl $cmd -n bar -f "$WORK/gate1.yaml" 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "$cmd accepted the namespace mismatch"
  expect_contains "$err" "gate1.yaml:3: the namespace from the provided object" "$cmd refuses the mismatch"
done
rc=0
err=$(ctl apply -n 'Not/A-Namespace' -f "$WORK/strict.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a bad -n was accepted"
expect_contains "$err" "is not a namespace name" "a bad -n is refused"

echo "kubectl_yaml: all passed"
