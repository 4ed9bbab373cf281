#!/usr/bin/env bash
# `meshguardctl authz check` as issue 18 item 5 asks: --workload NS/NAME takes the destination's
# namespace, labels and service account from a Workload (in the -f files, or without -f from the
# control plane's store, with the stored policies); --explain lists every policy considered and
# why; exit 0 for any decision, 3 for DENY with --fail-on-deny, 1 for bad input.
source "$(dirname "$0")/lib.sh"

start_control

cat >"$WORK/policies.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Workload
metadata: {name: details, namespace: default}
spec: {serviceAccount: details, labels: {app: details, version: v1}, ports: [9080]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-get, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]
    to: [{operation: {methods: [GET]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-only, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: foo-strict, namespace: foo}
spec: {mtls: {mode: STRICT}}
YAML
# No destination labels: --workload brings them.
cat >"$WORK/get.json" <<'JSON'
{"source": {"principal": "cluster.local/ns/default/sa/sleep"},
 "request": {"method": "GET", "path": "/details/1", "host": "details:9080"}}
JSON
sed 's/"GET"/"POST"/' "$WORK/get.json" >"$WORK/post.json"

# --- from the files -----------------------------------------------------------------------------
out=$(ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/get.json")
expect_eq "$(echo "$out" | jq -r '.decision + " " + .policy')" "ALLOW default/details-get" "--workload from -f: labels and port from the Workload"
rc=0
out=$(ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/post.json") || rc=$?
expect_eq "$rc:$(echo "$out" | jq -r .decision)" "0:DENY" "DENY exits 0 by default"
rc=0
ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/post.json" --fail-on-deny >/dev/null || rc=$?
expect_eq "$rc" 3 "--fail-on-deny: DENY exits 3"
ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/get.json" --fail-on-deny >/dev/null ||
  fail "--fail-on-deny: ALLOW exits 0"
rc=0
err=$(ctl authz check -f "$WORK/policies.yaml" --workload default/nope --request "$WORK/get.json" 2>&1) || rc=$?
expect_eq "$rc" 1 "unknown workload: exit 1"
expect_contains "$err" "no Workload default/nope in the -f files" "unknown workload: says where it looked"
jq '.destination = {namespace: "foo"}' "$WORK/get.json" >"$WORK/other-ns.json"
rc=0
err=$(ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/other-ns.json" 2>&1) || rc=$?
expect_eq "$rc" 1 "a request naming another namespace: refused"
expect_contains "$err" "differs from --workload default/details" "a conflicting destination: says which field"

# --- --explain ----------------------------------------------------------------------------------
ex=$(ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/post.json" --explain)
expect_contains "$ex" "default/details-get" "--explain: the applied policy"
expect_contains "$ex" "rule 0: no" "--explain: why its rule did not match"
expect_contains "$ex" "default/reviews-only — selector app=reviews does not match the workload's labels" "--explain: a policy not applied, and why"
expect_contains "$ex" "PeerAuthentication  foo/foo-strict — namespace foo is not the workload's (default)" "--explain: every kind"
expect_contains "$ex" "decision:        DENY" "--explain: the decision"
j=$(ctl authz check -f "$WORK/policies.yaml" --workload default/details --request "$WORK/post.json" --explain -o json)
expect_eq "$(echo "$j" | jq -r '.explain[] | select(.policy == "default/details-get") | .rules[0].matched')" false "--explain -o json: rule match"
expect_eq "$(echo "$j" | jq -r '.explain[] | select(.policy == "default/reviews-only") | .applies')" false "--explain -o json: not applied"
expect_eq "$(echo "$j" | jq -r '.explain | length')" 3 "--explain -o json: every policy considered"

# --- from the control plane's store -------------------------------------------------------------
ctl apply -f "$WORK/policies.yaml" >/dev/null
out=$(ctl authz check --workload default/details --request "$WORK/get.json")
expect_eq "$(echo "$out" | jq -r '.decision + " " + .policy')" "ALLOW default/details-get" "--workload without -f: the store's resources"
expect_eq "$(ctl authz check --workload default/details --request - <"$WORK/post.json" | jq -r .decision)" DENY "--workload, store, --request -"
rc=0
err=$(ctl authz check --workload default/ratings --request "$WORK/get.json" 2>&1) || rc=$?
expect_eq "$rc" 1 "store: unknown workload exits 1"
expect_contains "$err" "in the control plane's store" "store: says where it looked"
rc=0
err=$(ctl authz check --request "$WORK/get.json" 2>&1) || rc=$?
expect_eq "$rc" 1 "neither -f nor --workload: exit 1"
expect_contains "$err" "-f FILE is required" "neither -f nor --workload: says what is needed"
