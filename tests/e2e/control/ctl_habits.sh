#!/usr/bin/env bash
# meshguardctl as a kubectl/istioctl user drives it (issue 18 item 3): every kind by its name,
# plural, short name and KIND.GROUP; TYPE/NAME and TYPE,TYPE; -l selectors; -o wide|name|yaml|json|
# jsonpath; describe (the workloads a policy selects, the policies a workload gets); diff -f;
# apply --dry-run=server|client; re-applying changes nothing; delete -f / --all / -l; -f - for
# apply, analyze and authz check; analyze of the live store with -o json. Only the control plane runs: no proxy is needed.
source "$(dirname "$0")/lib.sh"

start_control

cat >"$WORK/base.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-details, namespace: default, labels: {team: a}}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default, labels: {team: b}}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  jwtRules: [{issuer: "https://issuer.example", jwksUri: "https://issuer.example/jwks"}]
---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: details, namespace: default}
spec: {serviceAccount: details, labels: {app: details}, ports: [9080]}
---
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: reviews, namespace: default}
spec: {serviceAccount: reviews, labels: {app: reviews}, ports: [9080]}
---
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {trustDomain: cluster.local}
---
apiVersion: meshguard.io/v1alpha1
kind: OPAPolicy
metadata: {name: opa-details, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  policy: |
    package envoy.authz
    default allow := true
YAML
cat >"$WORK/foo.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: foo}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-more, namespace: foo}
spec: {}
YAML

# --- apply, unchanged re-apply, -f - ------------------------------------------------------------
out=$(ctl apply -f "$WORK/base.yaml")
expect_contains "$out" "authorizationpolicy/default/allow-details created" "apply: created"
rev=$(echo "$out" | sed -n 's/^revision //p')
out=$(ctl apply -f - <"$WORK/base.yaml")
expect_contains "$out" "authorizationpolicy/default/allow-details unchanged" "apply -f - again: unchanged"
expect_not_contains "$out" "configured" "apply again: nothing configured"
expect_eq "$(echo "$out" | sed -n 's/^revision //p')" "$rev" "apply again: the revision does not move"
store_rev=$(ctl apply -f "$WORK/foo.yaml" | sed -n 's/^revision //p')

# --- every kind by every name -------------------------------------------------------------------
for names in "AuthorizationPolicy authorizationpolicy authorizationpolicies ap authorizationpolicy.security.istio.io authorizationpolicies.security.istio.io AuthorizationPolicy.v1.security.istio.io|allow-details" \
             "PeerAuthentication peerauthentication peerauthentications pa peerauthentication.security.istio.io peerauthentications.v1beta1.security.istio.io|strict" \
             "RequestAuthentication requestauthentications ra requestauthentication.security.istio.io|jwt" \
             "Workload workloads wl workload.meshguard.io workloads.v1alpha1.meshguard.io|details" \
             "Mesh mesh meshes mesh.meshguard.io|default" \
             "OPAPolicy opapolicy opapolicies opa opapolicy.meshguard.io opapolicies.meshguard.io|opa-details"; do
  name=${names#*|}
  for t in ${names%|*}; do
    expect_contains "$(ctl get "$t" -o name)" "/$name" "get $t"
    expect_eq "$(ctl get "$t/$name" -o jsonpath='{.metadata.name}')" "$name" "get $t/$name"
  done
done
rc=0
err=$(ctl get sidecars 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "an unknown type was accepted"
expect_contains "$err" 'unknown resource type "sidecars"' "unknown type: one clear line"

# --- TYPE,TYPE; TYPE/NAME; -A; -l ---------------------------------------------------------------
expect_eq "$(ctl get pa,ap -o name | tr '\n' ' ')" \
  "peerauthentication.security.istio.io/strict authorizationpolicy.security.istio.io/allow-details " "get pa,ap -o name"
expect_eq "$(ctl get ap -A -o name | sort | tr '\n' ' ')" \
  "authorizationpolicy.security.istio.io/allow-details authorizationpolicy.security.istio.io/deny-all authorizationpolicy.security.istio.io/deny-more " "get ap -A"
expect_eq "$(ctl get all -A -l team=a -o name)" "authorizationpolicy.security.istio.io/allow-details" "-l team=a"
expect_eq "$(ctl get all -l 'team in (a,b)' -o name | wc -l)" 2 "-l team in (a,b)"
expect_eq "$(ctl get ap -A -l '!team' -o name | wc -l)" 2 "-l !team"
rc=0
err=$(ctl get ap -l 'team in (a' 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "a bad selector was accepted"
expect_contains "$err" "label selector" "bad selector: a clear line"
rc=0
err=$(ctl get ap/nope 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "get of a missing name succeeded"
expect_eq "$err" 'meshguardctl: authorizationpolicies "nope" not found in namespace default' "get missing: kubectl's line"
expect_eq "$(ctl get ap -n empty 2>&1)" "No resources found in empty namespace." "empty namespace"

# --- output formats -----------------------------------------------------------------------------
json=$(ctl get ap allow-details -o json)
expect_eq "$(echo "$json" | jq -r '.kind + " " + .metadata.namespace + "/" + .metadata.name')" \
  "AuthorizationPolicy default/allow-details" "-o json of one: the object"
expect_eq "$(echo "$json" | jq -r '.spec.selector.matchLabels.app')" details "-o json: structured spec, not YAML text"
expect_eq "$(echo "$json" | jq -r '.metadata.resourceVersion')" "$rev" "-o json: resourceVersion is the store revision"
list=$(ctl get all -o json)
expect_eq "$(echo "$list" | jq -r '.kind')" List "-o json of many: a List"
expect_eq "$(echo "$list" | jq -r '[.items[].kind] | unique | length')" 6 "-o json: every kind"
expect_eq "$(ctl get ap -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}' | sort | tr '\n' ' ')" \
  "default/allow-details foo/deny-all foo/deny-more " "-o jsonpath with range"
expect_eq "$(ctl get wl -o jsonpath='{.items[*].spec.serviceAccount}')" "details reviews" "-o jsonpath [*]"
yaml=$(ctl get ap -n foo -o yaml)
expect_eq "$(echo "$yaml" | grep -c '^---')" 1 "-o yaml: one --- between two documents"
[ "$(echo "$yaml" | head -1)" != "---" ] || fail "-o yaml starts with ---"
echo "$yaml" | ctl apply -f - | grep -q "unchanged" || fail "-o yaml does not re-apply as unchanged"
pass "-o yaml re-applies unchanged"
wide=$(ctl get ap,pa -o wide)
expect_contains "$(echo "$wide" | head -1)" "LABELS" "-o wide: more columns"
expect_contains "$wide" "app=details" "-o wide: the selector"
expect_contains "$wide" "mtls=STRICT" "-o wide: the summary"

# --- describe -----------------------------------------------------------------------------------
d=$(ctl describe ap/allow-details)
expect_contains "$d" "Selected workloads:" "describe: selected workloads"
expect_eq "$(echo "$d" | sed -n '/^Selected workloads:/,/^Not selected:/p' | grep -c ' details ')" 1 "describe: details is selected"
expect_contains "$(echo "$d" | sed -n '/^Not selected:/,/^Recent/p')" "reviews" "describe: reviews is not"
expect_contains "$d" "does not match the workload's labels" "describe: why not"
expect_contains "$d" "action: ALLOW" "describe: the document"
d=$(ctl describe workload details)
expect_contains "$d" "AuthorizationPolicy   default/allow-details" "describe workload: its policies"
expect_contains "$d" "OPAPolicy" "describe workload: its OPAPolicy"
expect_not_contains "$d" "default/jwt" "describe workload: not another workload's RequestAuthentication"
expect_contains "$d" "mTLS mode:    STRICT (PeerAuthentication default/strict)" "describe workload: its mTLS mode"

# --- diff -f and dry runs -----------------------------------------------------------------------
sed 's/methods: \[GET\]/methods: [GET, HEAD]/' "$WORK/base.yaml" >"$WORK/changed.yaml"
rc=0
ctl diff -f "$WORK/base.yaml" >"$WORK/diff0.out" || rc=$?
expect_eq "$rc:$(wc -c <"$WORK/diff0.out")" "0:0" "diff of the applied file: exit 0, no output"
rc=0
ctl diff -f "$WORK/changed.yaml" >"$WORK/diff1.out" || rc=$?
expect_eq "$rc" 1 "diff of a changed file: exit 1"
expect_contains "$(cat "$WORK/diff1.out")" "+  rules: [{to: [{operation: {methods: [GET, HEAD]}}]}]" "diff: the new line"
expect_contains "$(cat "$WORK/diff1.out")" "-  rules: [{to: [{operation: {methods: [GET]}}]}]" "diff: the old line"
out=$(ctl apply -f "$WORK/changed.yaml" --dry-run=server)
expect_contains "$out" "authorizationpolicy/default/allow-details configured (server dry run)" "dry-run=server: configured"
expect_contains "$out" "revision $store_rev (nothing stored)" "dry-run=server: the store's revision"
expect_contains "$(ctl get ap allow-details -o yaml)" "methods: [GET]}" "dry-run=server: nothing stored"
# What only the control plane can check: a CUSTOM policy naming no provider of the stored Mesh.
printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ext, namespace: default}\nspec:\n  action: CUSTOM\n  provider: {name: nope}\n  rules: [{}]\n' >"$WORK/custom.yaml"
ctl apply -f "$WORK/custom.yaml" --dry-run=client | grep -q "valid (client dry run)" || fail "dry-run=client"
rc=0
err=$(ctl apply -f "$WORK/custom.yaml" --dry-run=server 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "dry-run=server accepted a CUSTOM policy without provider"
expect_contains "$err" "nope" "dry-run=server: the control plane's validation"
rc=0
ctl get ap ext >/dev/null 2>&1 || rc=$?
expect_eq "$rc" 1 "dry-run: nothing stored"

# --- analyze and authz check read -f - ----------------------------------------------------------
expect_eq "$(ctl analyze -f - <"$WORK/base.yaml" 2>&1 | grep -c 'no findings\|MG0')" 1 "analyze -f -"
expect_eq "$(ctl analyze -o json | jq -r '[.[].code] | unique | join(" ")')" "MG0001 MG0003" "analyze without -f: the live store, -o json"
expect_eq "$(ctl analyze -o json | jq -r '.[] | select(.code == "MG0001") | .resource + " " + .severity')" \
  "default/jwt warning" "analyze -o json: resource and severity"
printf '{"destination": {"namespace": "default", "labels": {"app": "details"}, "port": 9080},
 "source": {"principal": "cluster.local/ns/default/sa/sleep"},
 "request": {"method": "GET", "path": "/", "host": "details"}}' >"$WORK/req.json"
expect_eq "$(ctl authz check -f "$WORK/base.yaml" --request - <"$WORK/req.json" | jq -r .decision)" ALLOW "authz check --request -"
expect_eq "$(ctl authz check -f - --request "$WORK/req.json" <"$WORK/base.yaml" | jq -r .decision)" ALLOW "authz check -f -"

# --- delete -------------------------------------------------------------------------------------
printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: gone, namespace: default}\nspec: {}\n' >"$WORK/gone.yaml"
ctl apply -f "$WORK/gone.yaml" >/dev/null
expect_contains "$(ctl delete -f "$WORK/gone.yaml")" "authorizationpolicy/default/gone deleted" "delete -f"
rc=0
err=$(ctl delete -f "$WORK/gone.yaml" 2>&1) || rc=$?
expect_eq "$rc" 1 "delete -f again: exit 1"
expect_contains "$err" "authorizationpolicy/default/gone not found" "delete -f again: not found"
ctl delete -f "$WORK/gone.yaml" --ignore-not-found >/dev/null || fail "--ignore-not-found"
# Several documents in one file: one store transaction, all or nothing. One of them missing →
# nothing deleted (exit 1, the missing one named); --ignore-not-found deletes the others; one
# revision for all of them.
for n in m1 m2 m3; do
  printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: %s, namespace: default}\nspec: {}\n---\n' "$n"
done >"$WORK/multi.yaml"
rev=$(ctl apply -f "$WORK/multi.yaml" | sed -n 's/^revision \([0-9]*\)$/\1/p')
[ -n "$rev" ] || fail "apply of multi.yaml printed no revision"
ctl delete ap m1 >/dev/null
rc=0
err=$(ctl delete -f "$WORK/multi.yaml" 2>&1) || rc=$?
expect_eq "$rc" 1 "delete -f with one document missing: exit 1"
expect_contains "$err" "authorizationpolicy/default/m1 not found" "delete -f: the missing one named"
expect_contains "$err" "nothing was deleted" "delete -f: says nothing was deleted"
expect_eq "$(ctl get ap m2 m3 -o name | sort | tr '\n' ' ')" "authorizationpolicy.security.istio.io/m2 authorizationpolicy.security.istio.io/m3 " \
  "delete -f with one missing: the others are still there (all or nothing)"
out=$(ctl delete -f "$WORK/multi.yaml" --ignore-not-found)
expect_contains "$out" "authorizationpolicy/default/m2 deleted" "delete -f --ignore-not-found: m2"
expect_contains "$out" "authorizationpolicy/default/m3 deleted" "delete -f --ignore-not-found: m3"
expect_eq "$(grep -c '^revision ' <<<"$out")" 1 "delete -f: one revision line"
expect_contains "$out" "revision $((rev + 2))" "delete -f: one revision bump for both (apply, delete m1, delete -f)"
out=$(ctl delete ap --all -n foo)
expect_contains "$out" "authorizationpolicy/foo/deny-all deleted" "delete --all -n foo"
expect_contains "$out" "authorizationpolicy/foo/deny-more deleted" "delete --all -n foo: both"
expect_eq "$(ctl get ap -n foo 2>&1)" "No resources found in foo namespace." "delete --all: nothing left"
expect_contains "$(ctl delete pa -l team=b)" "peerauthentication/default/strict deleted" "delete -l"
expect_contains "$(ctl delete wl/reviews)" "workload/default/reviews deleted" "delete TYPE/NAME"
rc=0
err=$(ctl delete ap 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "delete of a bare type deleted something"
expect_contains "$err" "--all" "delete of a bare type: says how"
