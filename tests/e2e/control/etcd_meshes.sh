#!/usr/bin/env bash
# Other meshes on replicas on etcd (docs/ETCD.md, docs/MESHES.md): a Mesh applied through replica
# 1 gets its built-in CA kept in etcd (<prefix>shared/meshes/<name>/ca, its key sealed under
# --seal-key), and a workload of that mesh bootstrapping through replica 2 gets a certificate of
# that mesh's trust domain, signed by that CA, with that mesh's roots as its bundle. Replica 2
# refuses changing the mesh's trust domain (its CA is fixed), and `--mesh payments ca rotate` (not
# built on etcd; the default mesh's CA is not rotated instead). Skipped (exit 77) without etcd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd_lib.sh"

start_etcd_cluster
openssl rand -base64 32 >"$WORK/seal.key" && chmod 600 "$WORK/seal.key"
REPLICA_CA_FLAGS=(--seal-key "$WORK/seal.key")
start_replica 1
start_replica 2
pass "two replicas with the built-in CA sealed in etcd"
DATA="$WORK/plug"  # start_proxy's --ca-bundle: the control plane's roots
mkdir -p "$DATA/ca" && cp "$WORK/replica1/control/root-cert.pem" "$DATA/ca/root-cert.pem"

cat >"$WORK/payments.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: payments}
spec:
  trustDomain: payments.example
YAML
out=$(on 1 apply -f "$WORK/payments.yaml" 2>&1) || fail "apply Mesh payments through replica 1: $out"
pass "Mesh payments applied through replica 1 (not refused on etcd)"

KEY=/meshguard/shared/meshes/payments/ca
stored=""
for _ in $(seq 1 200); do
  stored=$(etcd_get "$KEY")
  [ -n "$stored" ] && break
  sleep 0.05
done
[ -n "$stored" ] || fail "no CA for mesh payments at $KEY"
expect_eq "$(jq -r .trustDomain <<<"$stored")" payments.example "the mesh's CA in etcd is for its trust domain"
expect_not_contains "$stored" "PRIVATE KEY" "the mesh CA's key is not in etcd in clear"
expect_contains "$(jq -r .current.caKey <<<"$stored")" "mg-sealed-v1:" "the mesh CA's key is sealed under --seal-key"
jq -j .current.rootCert <<<"$stored" >"$WORK/payments-root.pem"

wait_listed 2 "name: payments" meshes payments
on 2 --mesh payments token create --namespace default --service-account ledger --ttl 10m >"$WORK/ledger.token" ||
  fail "token create --mesh payments through replica 2"
start_app app APP
cat >"$WORK/ledger.yaml" <<YAML
workload: {name: ledger, namespace: default, serviceAccount: ledger, labels: {app: ledger}}
workers: 1
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
admin: {port: 0, address: 127.0.0.1}
YAML
CP_ADDR="$R2"
start_proxy ledger
ID=spiffe://payments.example/ns/default/sa/ledger
grep -q "bootstrapped $ID" "$WORK/ledger.err" || fail "ledger did not bootstrap as $ID: $(tail -5 "$WORK/ledger.err")"
expect_contains "$(openssl x509 -in "$WORK/ledger-state/cert-chain.pem" -noout -ext subjectAltName)" "URI:$ID" \
  "a workload of mesh payments bootstrapped through replica 2 got an SVID of payments.example"
openssl verify -CAfile "$WORK/payments-root.pem" "$WORK/ledger-state/cert-chain.pem" >/dev/null ||
  fail "the SVID is not signed by the mesh CA kept in etcd"
if openssl verify -CAfile "$WORK/replica1/control/root-cert.pem" "$WORK/ledger-state/cert-chain.pem" >/dev/null 2>&1; then
  fail "the payments SVID chains to the default mesh's CA"
fi
pass "signed by the CA replica 1 created in etcd, not the default one"
cmp -s "$WORK/ledger-state/root-cert.pem" "$WORK/payments-root.pem" ||
  fail "the payments proxy trusts other roots than the mesh's"
pass "the payments proxy's trust bundle is the mesh's roots"
for n in 1 2; do
  [ ! -e "$WORK/replica$n/meshes" ] || fail "replica $n kept a mesh CA in its data dir: $(ls -R "$WORK/replica$n/meshes")"
done
pass "no mesh CA in the replicas' data dirs"

# Online rotation of another mesh's CA is not built on etcd: refused, naming the mesh, and the
# default mesh's CA is not rotated in its place.
default_root() { on 2 get meshes | awk '$1 == "default" {print $3}'; }
root_before=$(default_root)
[ -n "$root_before" ] || fail "get meshes shows no root serial for the default mesh"
rc=0
err=$(on 2 --mesh payments ca rotate --wait 5 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "ca rotate --mesh payments succeeded on etcd"
expect_contains "$err" "mesh payments: its CA cannot be rotated online" "ca rotate --mesh payments is refused on etcd, naming the mesh"
expect_eq "$(default_root)" "$root_before" "... and the default mesh's root is unchanged"

# The mesh's trust domain is fixed by its CA, whichever replica is asked.
sed 's/payments.example/other.example/' "$WORK/payments.yaml" >"$WORK/payments-other.yaml"
rc=0
err=$(on 2 apply -f "$WORK/payments-other.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "replica 2 took another trust domain for mesh payments"
expect_contains "$err" "control.mesh_trust_domain_changed" "replica 2 refuses changing the mesh's trust domain"
