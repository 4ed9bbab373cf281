#!/usr/bin/env bash
# Other meshes on replicas on etcd (docs/ETCD.md, docs/MESHES.md): a Mesh applied through replica
# 1 gets its built-in CA kept in etcd (<prefix>shared/meshes/<name>/ca, its key sealed under
# --seal-key), and a workload of that mesh bootstrapping through replica 2 gets a certificate of
# that mesh's trust domain, signed by that CA, with that mesh's roots as its bundle. A mesh whose
# CA is plugged in (spec.ca.pluginDir) is read by each replica from its directory, nothing of it in
# etcd, and its rotation refused. `--mesh payments ca rotate` is led through etcd on payments' own
# keys, with requests between two payments proxies on replicas 2 and 3 throughout (none may fail):
# called off while a payments proxy does not acknowledge; completed while a default-mesh proxy is
# paused (only payments' proxies are waited for; the default CA is untouched); rolled back by
# another replica when its leader is killed in phase 1. Replica 2 refuses changing the mesh's trust
# domain (its CA is fixed). Skipped (exit 77) without etcd.
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

# A mesh whose CA is plugged in (spec.ca.pluginDir): every replica reads the directory itself;
# nothing of it goes to etcd. A workload of it bootstraps through replica 3.
start_replica 3
export MESHGUARD_ADMIN_DIR="$WORK/replica1/admin"  # start_workload's meshguardctl (one CA: any replica's)
make_cacerts "$WORK/ops-cacerts" ops.example
printf 'apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: ops}\nspec:\n  trustDomain: ops.example\n  ca: {pluginDir: %s}\n' \
  "$WORK/ops-cacerts" >"$WORK/ops.yaml"
out=$(on 1 apply -f "$WORK/ops.yaml" 2>&1) || fail "apply Mesh ops (plugged in) through replica 1: $out"
wait_listed 3 "name: ops" meshes ops
MESHGUARD_MESH=ops CP_ADDR="$R3" MESHGUARD_SERVER="$R3" start_workload opsbot opsbot "$APP"
openssl verify -CAfile "$WORK/ops-cacerts/root-cert.pem" -untrusted "$WORK/opsbot-state/cert-chain.pem" \
  "$WORK/opsbot-state/cert-chain.pem" >/dev/null || fail "opsbot (through replica 3) is not signed by the plugged-in CA"
expect_contains "$(openssl x509 -in "$WORK/opsbot-state/cert-chain.pem" -noout -ext subjectAltName)" \
  "URI:spiffe://ops.example/ns/default/sa/opsbot" "a workload of plugged-in mesh ops bootstrapped through replica 3"
expect_eq "$(etcd_get /meshguard/shared/meshes/ops/ca)" "" "nothing of ops' plugged-in CA in etcd"
for n in 1 3; do
  grep -q "mesh ops: signing with the CA plugged in from $WORK/ops-cacerts" "$WORK/replica$n.err" ||
    fail "replica $n did not read ops' CA from its directory"
done
pass "replicas 1 and 3 each read ops' CA from its directory"
rc=0
err=$(on 2 --mesh ops ca rotate --wait 5 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "ca rotate --mesh ops succeeded on a plugged-in CA"
expect_contains "$err" "mesh ops: the CA is plugged in" "ca rotate --mesh ops (plugged in) is refused on etcd"

# `--mesh payments ca rotate` on etcd: the default mesh's election-led two phases, on payments'
# own keys (shared/meshes/payments/ca, election/meshes/payments/ca, mesh-ca-acks/payments/),
# waiting only for payments' proxies on every live replica. teller (payments, replica 3) calls
# ledger (payments, replica 2) throughout; idle (default mesh, replica 1) is paused during the
# rotation and is not waited for; late (payments, replica 3) holds phase 1 open where asked.
default_root() { on 2 get meshes | awk '$1 == "default" {print $3}'; }
root_before=$(default_root)
[ -n "$root_before" ] || fail "get meshes shows no root serial for the default mesh"
default_ca_before=$(etcd_get /meshguard/shared/ca | jq -r .current.caCert)
LEDGER_ID=spiffe://payments.example/ns/default/sa/ledger
MESHGUARD_MESH=payments CP_ADDR="$R3" MESHGUARD_SERVER="$R3" start_workload teller teller "$APP" "outbound:
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$ledger_IN\", identities: [\"$LEDGER_ID\"], protocol: http}"
MESHGUARD_MESH=payments CP_ADDR="$R3" MESHGUARD_SERVER="$R3" start_workload late late "$APP"
CP_ADDR="$R1" MESHGUARD_SERVER="$R1" start_workload idle idle "$APP"
URL="http://127.0.0.1:$teller_OUT"
wait_status "$URL/status/200" 200
pass "teller (replica 3) → ledger (replica 2) within mesh payments"
PAY=/meshguard/shared/meshes/payments/ca
old_ca=$(shared_ca_cert current "$PAY")
[ -n "$old_ca" ] || fail "no current CA at $PAY"
etcd_get "$PAY" | jq -j .current.caCert >"$WORK/payments-old-ca.pem"

# a. Called off: ledger, paused, does not acknowledge; the leader (replica 1) writes the old CA back
# at the deadline, naming replica 2 (where ledger is).
kill -STOP "$ledger_PID"
rc=0
err=$(on 1 --mesh payments ca rotate --wait 3 2>&1) || rc=$?
kill -CONT "$ledger_PID"
[ "$rc" != 0 ] || fail "ca rotate --mesh payments completed though ledger was paused"
expect_contains "$err" "rotation called off, the old bundle is restored: not acknowledged by the proxies of replica(s) " \
  "a payments rotation not acknowledged by ledger is called off"
expect_contains "$err" ":${R2##*:}#" "... naming replica 2, where ledger is"
expect_eq "$(shared_ca_cert current "$PAY")" "$old_ca" "called off: payments' CA in etcd unchanged"
expect_eq "$(shared_ca_cert pending "$PAY")" "" "called off: nothing pending"
expect_eq "$(etcd_get /meshguard/election/meshes/payments/ca)" "" "called off: the leader resigned"
wait_status "$URL/status/200" 200

# b. Completed, under load, while idle (default mesh, replica 1) is paused: not waited for.
load_start "$URL/status/200"
kill -STOP "$idle_PID"
out=$(on 1 --mesh payments ca rotate --wait 60 2>&1) || fail "ca rotate --mesh payments through replica 1: $out"
kill -CONT "$idle_PID"
expect_contains "$out" "rotated: new root" "payments' rotation led by replica 1 completed (idle, of the default mesh, paused)"
new_ca=$(shared_ca_cert current "$PAY")
[ -n "$new_ca" ] && [ "$new_ca" != "$old_ca" ] || fail "etcd: payments' current CA did not change ($old_ca → $new_ca)"
expect_eq "$(shared_ca_cert pending "$PAY")" "" "etcd: nothing pending for payments"
expect_eq "$(etcd_get /meshguard/election/meshes/payments/ca)" "" "etcd: payments' leader resigned"
for w in ledger teller late; do
  bundle_has "$w" "$new_ca" && bundle_has "$w" "$old_ca" || fail "$w's bundle lacks payments' new or old root"
done
pass "every payments proxy (on replicas 2 and 3) holds payments' new and old roots"
expect_eq "$(default_root)" "$root_before" "the default mesh's root is unchanged (get meshes)"
expect_eq "$(etcd_get /meshguard/shared/ca | jq -r .current.caCert)" "$default_ca_before" "... and in etcd"
etcd_get "$PAY" | jq -j .current.caCert >"$WORK/payments-new-ca.pem"
for n in 2 3; do
  addr="R$n"
  MESHGUARD_MESH=payments CP_ADDR="${!addr}" MESHGUARD_SERVER="${!addr}" start_workload "after$n" "after$n" "$APP"
  openssl verify -CAfile "$WORK/payments-new-ca.pem" "$WORK/after$n-state/cert-chain.pem" >/dev/null ||
    fail "replica $n does not sign payments' certificates with the new CA"
  if openssl verify -CAfile "$WORK/payments-old-ca.pem" "$WORK/after$n-state/cert-chain.pem" >/dev/null 2>&1; then
    fail "replica $n still signs payments' certificates with the old CA"
  fi
done
pass "replicas 2 and 3 sign payments' certificates with its new CA"

# c. The leader (replica 1) killed in phase 1 (held open by late, paused): its lease expires and
# another replica rolls payments' rotation back; the proxies are given the bundle back.
kill -STOP "$late_PID"
(rc=0; on 1 --mesh payments ca rotate --wait 90 >"$WORK/rotate-c.out" 2>&1 || rc=$?; echo "$rc" >"$WORK/rotate-c.rc") &
ROTATE_C=$!
wait_shared pending set "$PAY"
abandoned_ca=$(shared_ca_cert pending "$PAY")
expect_contains "$(etcd_get /meshguard/election/meshes/payments/ca)" ":${R1##*:}#" "replica 1 leads payments' rotation"
rc=0
busy=$(on 2 --mesh payments ca rotate --wait 5 2>&1) || rc=$?
expect_contains "$busy" "a CA rotation is in progress, led by replica" "a second payments rotation through replica 2 is refused, the leader named"
for _ in $(seq 1 300); do
  bundle_has teller "$abandoned_ca" && break
  sleep 0.1
done
bundle_has teller "$abandoned_ca" || fail "the pending bundle never reached teller"
kill -KILL "$R1_PID"
wait "$R1_PID" 2>/dev/null || true
pass "the leader, replica 1, killed (-9) in phase 1"
wait_shared pending unset "$PAY"
grep -q "mesh payments: CA rotation led by replica .* rolled back: its leader is gone" "$WORK/replica2.err" "$WORK/replica3.err" ||
  fail "no replica said it rolled payments' rotation back"
expect_eq "$(shared_ca_cert current "$PAY")" "$new_ca" "etcd: rolled back, payments' CA unchanged"
kill -CONT "$late_PID"
expect_bundle_back "$abandoned_ca" "$new_ca" teller ledger
pass "payments' proxies are given the bundle without the abandoned root"
wait "$ROTATE_C" 2>/dev/null || true
load_stop "no request teller → ledger failed during payments' rotations and the leader's death"
expect_eq "$(etcd_get /meshguard/shared/ca | jq -r .current.caCert)" "$default_ca_before" "the default mesh's CA is unchanged throughout"

# The mesh's trust domain is fixed by its CA, whichever replica is asked.
sed 's/payments.example/other.example/' "$WORK/payments.yaml" >"$WORK/payments-other.yaml"
rc=0
err=$(on 2 apply -f "$WORK/payments-other.yaml" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "replica 2 took another trust domain for mesh payments"
expect_contains "$err" "control.mesh_trust_domain_changed" "replica 2 refuses changing the mesh's trust domain"

# Deleting Mesh payments (through replica 2) moves its CA aside in etcd (kept, not erased). Replica
# 2 then stops: replica 3, the only one left, held payments' old CA in memory; payments applied
# again through it gets a new CA, which replica 3 makes and signs with — not the old one.
payments_value=$(etcd_get "$PAY")
out=$(on 2 delete mesh payments 2>&1) || fail "delete Mesh payments through replica 2: $out"
expect_eq "$(etcd_get "$PAY")" "" "deleted: nothing left at $PAY"
aside=$(grep -o 'mesh payments deleted: its CA is kept aside at [^ ]*' "$WORK/replica2.err" | awk '{print $NF}' | tail -1)
expect_contains "$aside" "/meshguard/retired/meshes/payments/ca-" "replica 2 says where payments' CA went"
[ "$(etcd_get "$aside")" = "$payments_value" ] || fail "$aside does not hold payments' CA as it was"
pass "payments' CA kept aside at $aside"
kill -TERM "$R2_PID"
wait "$R2_PID" 2>/dev/null || true
out=$(on 3 apply -f "$WORK/payments.yaml" 2>&1) || fail "apply Mesh payments again through replica 3: $out"
for _ in $(seq 1 200); do
  [ -n "$(shared_ca_cert current "$PAY")" ] && break
  sleep 0.05
done
recreated_ca=$(shared_ca_cert current "$PAY")
[ -n "$recreated_ca" ] && [ "$recreated_ca" != "$new_ca" ] ||
  fail "payments applied again through replica 3: CA '$recreated_ca' (the deleted one: $new_ca)"
etcd_get "$PAY" | jq -j .current.caCert >"$WORK/payments-recreated-ca.pem"
wait_listed 3 "name: payments" meshes payments
MESHGUARD_MESH=payments CP_ADDR="$R3" MESHGUARD_SERVER="$R3" start_workload again3 again3 "$APP"
openssl verify -CAfile "$WORK/payments-recreated-ca.pem" "$WORK/again3-state/cert-chain.pem" >/dev/null ||
  fail "replica 3 does not sign for payments, applied again, with its new CA"
pass "payments applied again through replica 3 has a new CA, which replica 3 signs with"
echo "etcd_meshes: all checks passed"
