#!/usr/bin/env bash
# A mesh backed by an operator's CA (docs/MESHES.md, Mesh.spec.ca.pluginDir, Kuma's "provided" CA /
# Istio's cacerts): mesh payments is applied with pluginDir naming an intermediate of the
# operator's root; its workloads get SVIDs of payments' trust domain signed by that intermediate,
# are sent the operator's roots as their bundle, and call each other; nothing of the CA is written
# to the data dir. A pluginDir whose key others can read, whose CA names another trust domain, or
# that does not exist is refused at apply with the code --plug-in-ca gives; switching a mesh
# between built-in and plugged in (either way), or to another pluginDir, is refused
# (control.mesh_ca_changed) and nothing changes; `--mesh payments ca rotate` is refused as the
# default mesh's plugged-in CA is. Deleting a built-in mesh moves its CA aside: applied again, the
# name gets a new CA (or a plugged-in one). A restart reads the directory again.
source "$(dirname "$0")/lib.sh"

CONTROL_ARGS=(--trust-domain a.example)
start_control
start_app app APP
make_cacerts "$WORK/pay-cacerts" pay.example
make_cacerts "$WORK/other-cacerts" other.example

# mesh_yaml NAME TD [PLUGIN_DIR]: a Mesh document.
mesh_yaml() {
  printf 'apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: %s}\nspec:\n  trustDomain: %s\n' "$1" "$2"
  [ -z "${3:-}" ] || printf '  ca: {pluginDir: %s}\n' "$3"
}
# refused_apply WHAT PATTERN: stdin applied is refused with an error matching PATTERN (grep -E).
refused_apply() {
  local what="$1" pattern="$2" rc=0 err
  err=$(ctl apply -f - 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "$what: accepted"
  grep -qE -- "$pattern" <<<"$err" || fail "$what: want /$pattern/, got: $err"
  pass "$what: $err"
}

mesh_yaml payments pay.example "$WORK/pay-cacerts" >"$WORK/payments.yaml"
ctl apply -f "$WORK/payments.yaml" >/dev/null || fail "apply Mesh payments with ca.pluginDir"
pass "Mesh payments applied with ca.pluginDir $WORK/pay-cacerts"

# ledger and teller in mesh payments, teller calling ledger over mTLS.
LEDGER_ID=spiffe://pay.example/ns/default/sa/ledger
MESHGUARD_MESH=payments start_workload ledger ledger "$APP"
MESHGUARD_MESH=payments start_workload teller teller "$APP" "outbound:
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$ledger_IN\", identities: [\"$LEDGER_ID\"], protocol: http}"
expect_contains "$(openssl x509 -in "$WORK/ledger-state/cert-chain.pem" -noout -ext subjectAltName)" "URI:$LEDGER_ID" \
  "ledger got an SVID of payments' trust domain"
openssl verify -CAfile "$WORK/pay-cacerts/root-cert.pem" -untrusted "$WORK/ledger-state/cert-chain.pem" \
  "$WORK/ledger-state/cert-chain.pem" >/dev/null || fail "ledger's SVID does not chain to the operator's root"
openssl verify -partial_chain -CAfile "$WORK/pay-cacerts/ca-cert.pem" "$WORK/ledger-state/cert-chain.pem" >/dev/null ||
  fail "ledger's SVID is not issued by the plugged-in intermediate"
if openssl verify -CAfile "$DATA/ca/root-cert.pem" "$WORK/ledger-state/cert-chain.pem" >/dev/null 2>&1; then
  fail "ledger's SVID chains to the default mesh's CA"
fi
pass "ledger's SVID is issued by the plugged-in intermediate, under the operator's root"
cmp -s "$WORK/ledger-state/root-cert.pem" "$WORK/pay-cacerts/root-cert.pem" ||
  fail "ledger's bundle is not the operator's roots"
pass "ledger's trust bundle is the plugged-in CA's root-cert.pem"
URL="http://127.0.0.1:$teller_OUT"
wait_status "$URL/status/200" 200
pass "teller → ledger within mesh payments (mTLS with the plugged-in CA)"
[ ! -e "$DATA/meshes/payments" ] || fail "a CA of payments was written to the data dir: $(ls -R "$DATA/meshes/payments")"
pass "nothing of payments' CA in the data dir"

# Online rotation: refused, as for the default mesh's plugged-in CA; nothing changes.
rc=0
err=$(ctl --mesh payments ca rotate --wait 5 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "ca rotate --mesh payments succeeded on a plugged-in CA"
expect_contains "$err" "mesh payments: the CA is plugged in" "ca rotate --mesh payments is refused"
expect_contains "$err" "rotate it where it is issued, then restart with it" "... saying what to do instead"
cmp -s "$WORK/ledger-state/root-cert.pem" "$WORK/pay-cacerts/root-cert.pem" || fail "refused, yet ledger's bundle changed"

# The CA's source is fixed: another directory, or built-in, is refused.
cp -a "$WORK/pay-cacerts" "$WORK/pay-cacerts-copy"
mesh_yaml payments pay.example "$WORK/pay-cacerts-copy" | refused_apply "payments moved to another pluginDir" \
  "control.mesh_ca_changed.*plugged in from $WORK/pay-cacerts"
mesh_yaml payments pay.example | refused_apply "payments switched to a built-in CA" "control.mesh_ca_changed"
[ ! -e "$DATA/meshes/payments" ] || fail "a refused switch wrote a built-in CA for payments"
mesh_yaml payments other.example "$WORK/pay-cacerts" | refused_apply "payments given another trust domain" \
  "control.mesh_trust_domain_changed"
# A built-in mesh cannot be switched to a plugged-in CA.
mesh_yaml builtin b.example | ctl apply -f - >/dev/null || fail "apply Mesh builtin"
wait_file "$DATA/meshes/builtin/ca/ca-key.pem" "Mesh builtin got no built-in CA"
mesh_yaml builtin b.example "$WORK/other-cacerts" | refused_apply "a built-in mesh switched to a plugged-in CA" \
  "control.mesh_ca_changed.*built-in CA"

# A pluginDir --plug-in-ca would refuse is refused, with its code, naming the mesh.
mesh_yaml ops other.example "$WORK/pay-cacerts" | refused_apply "a pluginDir of another trust domain" \
  "ca.trust_domain_mismatch.*mesh ops: ca.pluginDir"
chmod 644 "$WORK/other-cacerts/ca-key.pem"
mesh_yaml ops other.example "$WORK/other-cacerts" | refused_apply "a pluginDir whose key others can read" \
  "key.permissions.*chmod 600"
chmod 600 "$WORK/other-cacerts/ca-key.pem"
mesh_yaml ops other.example "$WORK/no-such-dir" | refused_apply "a pluginDir that does not exist" "mesh ops: ca.pluginDir"
mesh_yaml ops other.example relative/dir | refused_apply "a relative pluginDir" "ca.pluginDir must be an absolute"
mesh_yaml default a.example "$WORK/pay-cacerts" | refused_apply "a pluginDir on the default mesh" \
  "ca.pluginDir is for meshes other than the default"
expect_eq "$(ctl get meshes | grep -c '^ops ' || true)" 0 "no Mesh ops was stored"

# Deleting a Mesh retires its CA: a built-in one is moved aside (kept, never erased), so the name
# applied again gets a new CA — and may now be plugged in.
cp "$DATA/meshes/builtin/ca/root-cert.pem" "$WORK/builtin-old-root.pem"
ctl delete mesh builtin >/dev/null || fail "delete Mesh builtin"
[ ! -e "$DATA/meshes/builtin" ] || fail "the deleted mesh's CA is still in place: $(ls -R "$DATA/meshes/builtin")"
aside=$(ls -d "$DATA"/meshes/builtin.retired-* 2>/dev/null | head -1)
[ -n "$aside" ] || fail "the deleted mesh's CA was not kept: $(ls "$DATA/meshes")"
cmp -s "$aside/ca/root-cert.pem" "$WORK/builtin-old-root.pem" || fail "$aside is not the deleted mesh's CA"
expect_eq "$(stat -c %a "$aside/ca/ca-key.pem")" 600 "the retired CA's key stays 0600"
grep -q "mesh builtin deleted: its CA is kept aside at $aside" "$WORK/control.err" || fail "the retirement is not logged"
pass "deleting Mesh builtin moved its CA aside to $aside"
mesh_yaml builtin b.example | ctl apply -f - >/dev/null || fail "apply Mesh builtin again"
wait_file "$DATA/meshes/builtin/ca/root-cert.pem" "Mesh builtin applied again got no CA"
! cmp -s "$DATA/meshes/builtin/ca/root-cert.pem" "$WORK/builtin-old-root.pem" ||
  fail "Mesh builtin applied again signs with the deleted mesh's CA"
pass "Mesh builtin applied again has a new CA, not the deleted one's"
ctl delete mesh builtin >/dev/null || fail "delete Mesh builtin again"
mesh_yaml builtin other.example "$WORK/other-cacerts" | ctl apply -f - >/dev/null ||
  fail "Mesh builtin, deleted, applied again with a plugged-in CA"
expect_eq "$(ls -d "$DATA"/meshes/builtin.retired-* | wc -l)" 2 "both retired CAs of builtin are kept"
pass "deleted, Mesh builtin is applied again with a plugged-in CA"

# A restart reads the directory again: a workload bootstrapped after it is signed by the same CA.
CP_PORT=${CP_ADDR##*:}
kill -TERM "$CP_PID" 2>/dev/null || true
wait "$CP_PID" 2>/dev/null || true
start_control "$CP_PORT"
MESHGUARD_MESH=payments start_workload auditor auditor "$APP"
openssl verify -CAfile "$WORK/pay-cacerts/root-cert.pem" -untrusted "$WORK/auditor-state/cert-chain.pem" \
  "$WORK/auditor-state/cert-chain.pem" >/dev/null || fail "after a restart payments does not sign with the plugged-in CA"
grep -q "mesh payments: signing with the CA plugged in from $WORK/pay-cacerts" "$WORK/control.err" ||
  fail "the restarted control plane does not say it read payments' CA"
pass "after a restart payments signs with the CA read again from its pluginDir"
wait_status "$URL/status/200" 200
pass "teller → ledger after the restart"
echo "meshes_plugin: all checks passed"
