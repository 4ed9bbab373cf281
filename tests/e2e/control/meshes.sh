#!/usr/bin/env bash
# Several meshes on one control plane (docs/MESHES.md): a workload of the default mesh (trust
# domain a.example) calls a proxy of mesh-b (trust domain b.example, its own CA). Before
# federation the mTLS handshake fails (each proxy trusts its mesh's roots only); once each mesh
# federates with the other, the call is allowed only where a mesh-b policy names the caller's
# principal with its trust domain, and denied elsewhere (namespaces, `*/ns/...`, no policy).
# `get meshes` lists both, with their CAs and connected workloads. `--mesh mesh-b ca rotate`
# rotates mesh-b's CA online (called off while its proxy does not ACK; kept across a restart),
# never the default mesh's.
source "$(dirname "$0")/lib.sh"

# The default mesh gets a trust domain of its own: in policies `cluster.local` means "this mesh",
# so another mesh can only name a federated mesh whose trust domain is something else.
CONTROL_ARGS=(--trust-domain a.example)
start_control
start_app app APP

# A second mesh with its own trust domain: the control plane generates its CA.
cat >"$WORK/mesh-b.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: mesh-b}
spec:
  trustDomain: b.example
YAML
ctl apply -f "$WORK/mesh-b.yaml" >/dev/null || fail "apply Mesh mesh-b"
rc=0
err=$(printf 'apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: mesh-c}\nspec: {trustDomain: b.example}\n' |
  ctl apply -f - 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a second mesh with mesh-b's trust domain was accepted"
expect_contains "$err" "policy.mesh_trust_domain_taken" "two meshes cannot share a trust domain"

# details in mesh-b (token for mesh-b), sleep in the default mesh calling it.
ctl --mesh mesh-b token create --namespace default --service-account details --ttl 10m >"$WORK/details.token" ||
  fail "token create --mesh mesh-b"
cat >"$WORK/details.yaml" <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
accessLog: $WORK/details-access.log
workers: 1
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0, address: 127.0.0.1}
YAML
start_proxy details
DETAILS_ID=spiffe://b.example/ns/default/sa/details
expect_contains "$(openssl x509 -in "$WORK/details-state/cert-chain.pem" -noout -ext subjectAltName)" "URI:$DETAILS_ID" \
  "mesh-b's proxy got an SVID of trust domain b.example"
openssl verify -CAfile "$DATA/meshes/mesh-b/ca/root-cert.pem" "$WORK/details-state/cert-chain.pem" >/dev/null ||
  fail "the SVID is not signed by mesh-b's CA"
if openssl verify -CAfile "$DATA/ca/root-cert.pem" "$WORK/details-state/cert-chain.pem" >/dev/null 2>&1; then
  fail "mesh-b's SVID chains to the default mesh's CA"
fi
pass "mesh-b's SVID is issued by mesh-b's own CA, not the default one"
[ "$(stat -c %a "$DATA/meshes/mesh-b/ca/ca-key.pem")" = 600 ] || fail "mesh-b's CA key is not 0600"
cmp -s "$WORK/details-state/root-cert.pem" "$DATA/meshes/mesh-b/ca/root-cert.pem" ||
  fail "mesh-b's proxy trusts other roots than mesh-b's"
pass "mesh-b's proxy trust bundle is mesh-b's roots only"

start_workload sleep sleep "$APP" "outbound:
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$details_IN\", identities: [\"$DETAILS_ID\"], protocol: http}"
URL="http://127.0.0.1:$sleep_OUT"

# Not federated: the handshake fails (sleep does not trust b.example's roots, details does not
# trust a.example's), the app never sees the request.
got=$(http_status "$URL/status/200")
[ "$got" != 200 ] || fail "a default-mesh workload reached mesh-b's proxy without federation"
pass "default mesh → mesh-b refused without federation (HTTP $got)"
wait_for_line "$WORK/sleep-access.log" 'tls_handshake_failed|server_certificate_rejected' >/dev/null
pass "the client proxy reports the failed mTLS handshake"
[ ! -s "$WORK/details-access.log" ] || ! grep -q '"path":"/status/200"' "$WORK/details-access.log" ||
  fail "mesh-b's proxy accepted the request"

out=$(ctl get meshes)
expect_contains "$out" "b.example" "get meshes lists mesh-b and its trust domain"
expect_contains "$out" "a.example" "get meshes lists the default mesh"
row_b=$(grep '^mesh-b ' <<<"$out")
row_default=$(grep '^default ' <<<"$out")
[ "$(awk '{print $(NF-1)}' <<<"$row_b")" = 1 ] || fail "mesh-b: 1 workload connected expected: $row_b"
[ "$(awk '{print $(NF-1)}' <<<"$row_default")" = 1 ] || fail "default: 1 workload connected expected: $row_default"
pass "get meshes: one connected workload in each ($(tr -s ' ' <<<"$row_b"))"
expect_eq "$(ctl --mesh mesh-b get meshes | grep -c '^default ' || true)" 0 "--mesh mesh-b get meshes shows mesh-b only"

# `--mesh NAME ca rotate` is about NAME's CA, never the default mesh's: an unknown mesh is
# NOT_FOUND, and the default mesh's root (get meshes, data_dir/ca) stays as it was.
default_root() { ctl get meshes | awk '$1 == "default" {print $3}'; }
root_before=$(default_root)
[ -n "$root_before" ] || fail "get meshes shows no root serial for the default mesh"
cp "$DATA/ca/root-cert.pem" "$WORK/default-root-before.pem"
rc=0
err=$(ctl --mesh no-such-mesh ca rotate --wait 5 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "ca rotate --mesh no-such-mesh succeeded"
expect_contains "$err" "mesh no-such-mesh does not exist" "ca rotate of an unknown mesh: not found"
expect_eq "$(default_root)" "$root_before" "ca rotate of an unknown mesh leaves the default mesh's root"
# A Mesh applied a moment ago can be rotated at once. (The race this guards — the model not yet
# rebuilt, once answered "does not exist" — is rarely met at this test's 20 ms debounce; it was
# reproduced by hand at the default debounce; with the retry 3 of 3 such rotations succeeded.)
printf 'apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: mesh-d}\nspec: {trustDomain: d.example}\n' |
  ctl apply -f - >/dev/null || fail "apply mesh-d"
out=$(ctl --mesh mesh-d ca rotate --wait 5 2>&1) || fail "ca rotate right after apply of mesh-d: $out"
expect_contains "$out" "rotated: new root" "ca rotate of a mesh just applied"
expect_eq "$(default_root)" "$root_before" "ca rotate of mesh-d leaves the default mesh's root"

# Federation both ways (each side's proxies verify the other's certificates).
cat >"$WORK/federate.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  trustDomain: a.example
  federatesWith: [mesh-b]
---
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: mesh-b}
spec:
  trustDomain: b.example
  federatesWith: [default]
YAML
ctl apply -f "$WORK/federate.yaml" >/dev/null || fail "apply federation"
for f in details-state sleep-state; do
  for _ in $(seq 1 200); do
    [ -s "$WORK/$f/federated-bundles.pem" ] && break
    sleep 0.05
  done
  [ -s "$WORK/$f/federated-bundles.pem" ] || fail "$f: no federated bundle pushed"
done
expect_contains "$(cat "$WORK/details-state/federated-bundles.pem")" "# trust domain: a.example" \
  "mesh-b's proxy is pushed the default mesh's bundle"

# Federated, but no mesh-b policy names the caller: denied (a federated peer is never allowed by default).
wait_status "$URL/status/200" 403
pass "federated: handshake succeeds, but no policy names the foreign principal → 403"

# A mesh-b policy: the foreign principal named with its trust domain for /status/*; namespaces-only
# and any-trust-domain patterns for other paths do not admit it.
cat >"$WORK/allow.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-default-mesh, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - from: [{source: {principals: ["a.example/ns/default/sa/sleep"]}}]
    to: [{operation: {paths: ["/status/*"]}}]
  - from: [{source: {namespaces: ["default"]}}]
    to: [{operation: {paths: ["/ip"]}}]
  - from: [{source: {principals: ["*/ns/default/sa/sleep"]}}]
    to: [{operation: {paths: ["/headers"]}}]
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {paths: ["/user-agent"]}}]
YAML
ctl --mesh mesh-b apply -f "$WORK/allow.yaml" >/dev/null || fail "apply the mesh-b policy"
wait_status "$URL/status/200" 200
pass "allowed where a mesh-b policy names a.example/ns/default/sa/sleep"
expect_eq "$(http_status "$URL/ip")" 403 "denied where the rule says only namespaces: [default]"
expect_eq "$(http_status "$URL/headers")" 403 "denied where the rule says */ns/default/sa/sleep"
expect_eq "$(http_status "$URL/user-agent")" 403 "denied where the rule says cluster.local/... (mesh-b itself)"
expect_eq "$(http_status "$URL/details/1")" 403 "denied where no rule matches"

# Online rotation of mesh-b's CA while sleep calls details: mesh-b's bundle (new + old roots)
# reaches mesh-b's proxy and, as a federated bundle, the proxy of the default mesh (which
# federates with mesh-b: it verifies mesh-b's certificates) — both are waited for — then the new
# root signs mesh-b's certificates. The default mesh's CA does not change.
mesh_root() { ctl get meshes | awk -v m="$1" '$1 == m {print $3}'; }
b_root_before=$(mesh_root mesh-b)
cp "$DATA/meshes/mesh-b/ca/root-cert.pem" "$WORK/b-root-before.pem"
# rotate_b_called_off NAME WHY: with proxy NAME (default/NAME) stopped, a rotation of mesh-b's CA
# is called off naming it, and mesh-b still signs with its old root.
rotate_b_called_off() {
  local pid_var="$1_PID" rc=0 out
  kill -STOP "${!pid_var}"
  out=$(ctl --mesh mesh-b ca rotate --wait 2 2>&1) || rc=$?
  kill -CONT "${!pid_var}"
  [ "$rc" != 0 ] || fail "ca rotate --mesh mesh-b succeeded though $1 was stopped"
  expect_contains "$out" "rotation called off, the old bundle is restored: not acknowledged by default/$1" "$2"
  expect_eq "$(mesh_root mesh-b)" "$b_root_before" "called off: mesh-b still signs with its old root"
}
# First called off: mesh-b's proxy, stopped, does not ACK the new bundle in time; nothing changes.
rotate_b_called_off details "a rotation of mesh-b's CA not ACKed by mesh-b's proxy is called off, naming it"
cmp -s "$DATA/meshes/mesh-b/ca/root-cert.pem" "$WORK/b-root-before.pem" || fail "called off, yet meshes/mesh-b/ca changed"
for _ in $(seq 1 200); do
  cmp -s "$WORK/details-state/root-cert.pem" "$WORK/b-root-before.pem" && break
  sleep 0.05
done
cmp -s "$WORK/details-state/root-cert.pem" "$WORK/b-root-before.pem" || fail "called off: mesh-b's old bundle was not pushed back"
pass "called off: mesh-b's proxy is given its old bundle back"
# Called off too when the federating mesh's proxy does not ACK mesh-b's new bundle: once the new
# root signed, it could not verify mesh-b's new certificates.
rotate_b_called_off sleep "a rotation of mesh-b's CA not ACKed by a federating mesh's proxy is called off, naming it"
wait_status "$URL/status/200" 200
ctl --mesh mesh-b ca rotate --wait 20 >"$WORK/rotate-b.out" 2>&1 &
ROTATOR=$!
failed=0 total=0
while { kill -0 "$ROTATOR" 2>/dev/null || [ "$total" -lt 20 ]; } && [ "$total" -lt 400 ]; do
  code=$(http_status "$URL/status/200")
  total=$((total + 1))
  [ "$code" = 200 ] || failed=$((failed + 1))
done
rc=0
wait "$ROTATOR" || rc=$?
[ "$rc" = 0 ] || fail "ca rotate --mesh mesh-b: $(cat "$WORK/rotate-b.out")"
expect_contains "$(cat "$WORK/rotate-b.out")" "2 connected proxies hold the new trust bundle" \
  "ca rotate --mesh mesh-b waited for mesh-b's proxy and the federating mesh's"
expect_eq "$failed" 0 "sleep → details kept working during mesh-b's rotation ($total requests)"
b_root_after=$(mesh_root mesh-b)
[ -n "$b_root_after" ] && [ "$b_root_after" != "$b_root_before" ] ||
  fail "get meshes: mesh-b's root serial did not change ($b_root_before → $b_root_after)"
pass "mesh-b signs with a new root ($b_root_before → $b_root_after)"
expect_eq "$(default_root)" "$root_before" "ca rotate --mesh mesh-b leaves the default mesh's root (get meshes)"
cmp -s "$DATA/ca/root-cert.pem" "$WORK/default-root-before.pem" || fail "ca rotate --mesh mesh-b rotated data_dir/ca"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' "$WORK/details-state/root-cert.pem")" 2 \
  "mesh-b's proxy holds mesh-b's new and old roots"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' "$DATA/meshes/mesh-b/ca/root-cert.pem")" 2 \
  "data_dir/meshes/mesh-b/ca keeps the old root in the bundle"
ls -d "$DATA"/meshes/mesh-b/ca.previous-* >/dev/null 2>&1 || fail "the old mesh-b CA was not kept as ca.previous-*"
expect_eq "$(openssl x509 -in "$DATA/meshes/mesh-b/ca/ca-cert.pem" -noout -serial | cut -d= -f2 | tr A-F a-f)" \
  "$(tr A-F a-f <<<"$b_root_after")" "data_dir/meshes/mesh-b/ca is the new root get meshes shows"
expect_eq "$(http_status "$URL/status/200")" 200 "sleep → details after the rotation"

# A certificate issued now for mesh-b chains to its new root, not to the old one alone.
ctl --mesh mesh-b token create --namespace default --service-account reviews --ttl 10m >"$WORK/reviews.token" ||
  fail "token create --mesh mesh-b reviews"
sed -e 's/details/reviews/g' "$WORK/details.yaml" >"$WORK/reviews.yaml"
start_proxy reviews
openssl verify -CAfile "$DATA/meshes/mesh-b/ca/ca-cert.pem" "$WORK/reviews-state/cert-chain.pem" >/dev/null ||
  fail "a certificate issued after the rotation does not chain to mesh-b's new root"
if openssl verify -CAfile "$WORK/b-root-before.pem" "$WORK/reviews-state/cert-chain.pem" >/dev/null 2>&1; then
  fail "a certificate issued after the rotation chains to mesh-b's old root"
fi
pass "mesh-b's new certificates are signed by its new root"

# The policy belongs to mesh-b: listed there, not in the default mesh.
expect_contains "$(ctl --mesh mesh-b get ap -A -o name)" "from-default-mesh" "get --mesh mesh-b lists the policy"
expect_eq "$(ctl --mesh default get ap -A -o name | grep -c from-default-mesh || true)" 0 \
  "get --mesh default does not"
expect_contains "$(ctl get ap from-default-mesh -o yaml)" "meshguard.io/mesh: mesh-b" \
  "the stored document carries the mesh label --mesh wrote"

# diff --mesh compares what apply --mesh would store (the label written): no difference.
ctl --mesh mesh-b diff -f "$WORK/allow.yaml" >"$WORK/diff-b.out" ||
  fail "diff --mesh mesh-b of the applied file differs: $(cat "$WORK/diff-b.out")"
rc=0
ctl diff -f "$WORK/allow.yaml" >"$WORK/diff-default.out" || rc=$?
expect_eq "$rc" 1 "diff without --mesh: the file as written lacks the label"
grep -q '^-.*meshguard.io/mesh.*mesh-b' "$WORK/diff-default.out" ||
  fail "diff without --mesh does not show the stored label: $(cat "$WORK/diff-default.out")"
pass "diff --mesh compares the labelled documents"

# A watch of one mesh (get -w --mesh) sees that mesh's changes only: of a default-mesh policy
# created, a mesh-b policy created and deleted, it prints the two mesh-b events.
"$CTL_BIN" --mesh mesh-b get ap -A -w --watch-count 2 >"$WORK/watch-b.out" 2>"$WORK/watch-b.err" &
WATCHER=$!
PIDS+=("$WATCHER")
wait_for_line "$WORK/watch-b.out" '^-- revision [0-9]+, watching$' >/dev/null
for mesh in default mesh-b; do
  sed "s/from-default-mesh/watched-$mesh/" "$WORK/allow.yaml" >"$WORK/watched-$mesh.yaml"
  ctl --mesh "$mesh" apply -f "$WORK/watched-$mesh.yaml" >/dev/null || fail "apply watched-$mesh"
done
ctl --mesh mesh-b delete ap watched-mesh-b -n default >/dev/null || fail "delete watched-mesh-b"
for _ in $(seq 1 200); do kill -0 "$WATCHER" 2>/dev/null || break; sleep 0.05; done
kill -0 "$WATCHER" 2>/dev/null && fail "get -w --mesh mesh-b did not see two events: $(cat "$WORK/watch-b.out")"
events=$(grep '^revision ' "$WORK/watch-b.out")
expect_contains "$events" "authorizationpolicy/default/watched-mesh-b created" "get -w --mesh mesh-b: the mesh-b policy created"
expect_contains "$events" "authorizationpolicy/default/watched-mesh-b deleted" "get -w --mesh mesh-b: its deletion"
expect_eq "$(grep -c watched-default <<<"$events" || true)" 0 "get -w --mesh mesh-b: nothing of the default mesh"

# Per-mesh metrics.
metrics=$(curl -s "http://$CP_METRICS/metrics")
expect_contains "$metrics" 'meshguard_mesh_proxies_connected{mesh="mesh-b"} 2' "connected proxies per mesh (details, reviews)"
expect_contains "$metrics" 'meshguard_mesh_certificates_issued_total{mesh="mesh-b"}' "certificates issued per mesh"
expect_contains "$metrics" 'meshguard_mesh_pushes_total{mesh="default"}' "pushes per mesh"
expect_contains "$metrics" 'meshguard_mesh_ca_rotations_total{mesh="mesh-b",result="success"} 1' "CA rotations per mesh"
expect_contains "$metrics" 'meshguard_mesh_ca_rotations_total{mesh="mesh-b",result="abandoned"} 2' "... and those called off"

# A restart keeps mesh-b's rotated CA (data_dir/meshes/mesh-b/ca).
CP_PORT=${CP_ADDR##*:}
kill -TERM "$CP_PID" 2>/dev/null || true
wait "$CP_PID" 2>/dev/null || true
start_control "$CP_PORT"
expect_eq "$(mesh_root mesh-b)" "$b_root_after" "after a restart mesh-b signs with the rotated root"
expect_eq "$(default_root)" "$root_before" "after a restart the default mesh's root is the one it was"
echo "meshes: all checks passed"
