#!/usr/bin/env bash
# The built-in CA shared by replicas on etcd (docs/ETCD.md): three replicas started with the
# issue's bare command line (--store etcd://... --data-dir DIR, no --plug-in-ca) at once agree on
# one CA kept in etcd — the same bundle everywhere, a certificate issued by replica 1 verifies
# against replica 3's bundle, mesh requests succeed — and keep nothing shared in their data dirs.
# With --seal-key the CA's key is sealed in etcd; a replica with another seal key, without it, with
# a readable seal-key file, or plugging in its own CA is refused with a sentence naming the flag.
# Skipped (exit 77) without etcd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd_lib.sh"

start_etcd_cluster

# refused NAME MESSAGE-PATTERN FLAGS...: a replica started with FLAGS exits non-zero on its own
# (bounded: 60 s) with a message matching MESSAGE-PATTERN, and writes nothing to its data dir.
refused() {
  local name="$1" pattern="$2" rc=0
  shift 2
  timeout 60 "$CONTROL_BIN" --data-dir "$WORK/$name" --listen 127.0.0.1:0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  [ "$rc" != 0 ] || fail "$name: the replica started"
  [ "$rc" != 124 ] || fail "$name: the replica hung (no answer within 60 s): $(tail -3 "$WORK/$name.err")"
  grep -qiE "$pattern" "$WORK/$name.err" || fail "$name: no clear error (want /$pattern/): $(tail -5 "$WORK/$name.err")"
  ! grep -q '^listening grpc ' "$WORK/$name.out" || fail "$name: the replica listened"
  [ -z "$(ls -A "$WORK/$name" 2>/dev/null)" ] || fail "$name: wrote to its data dir: $(ls "$WORK/$name")"
  pass "$name refused: $(grep -iE "$pattern" "$WORK/$name.err" | head -1)"
}

# 1. The contract's bare command line, three replicas started together (they race to create the CA).
REPLICA_CA_FLAGS=()
for n in 1 2 3; do
  start "replica$n" "$CONTROL_BIN" --store "$STORE" --data-dir "$WORK/replica$n" --listen 127.0.0.1:0 --debounce-ms 20
  printf -v "R${n}_PID" '%s' "$LAST_PID"
done
for n in 1 2 3; do printf -v "R$n" '127.0.0.1:%s' "$(port_of "$WORK/replica$n.out" '^listening grpc ')"; done
pass "three replicas started with the bare contract (--store etcd://... --data-dir DIR)"
expect_eq "$(grep -l 'created the built-in CA at /meshguard/shared/ca' "$WORK"/replica?.err | wc -l)" 1 \
  "exactly one replica created the CA"
for n in 1 2 3; do
  grep -q 'WARNING: the CA.s private key is kept in etcd in clear' "$WORK/replica$n.err" ||
    fail "replica $n did not warn that the CA key is in clear"
  expect_eq "$(ls "$WORK/replica$n" | tr '\n' ' ')" "admin control " "replica $n's data dir holds only its own identities"
done
for n in 2 3; do
  cmp -s "$WORK/replica1/control/root-cert.pem" "$WORK/replica$n/control/root-cert.pem" ||
    fail "replica $n serves another bundle than replica 1"
done
pass "the three replicas share one CA (the same bundle)"
stored=$(etcd_get /meshguard/shared/ca)
expect_contains "$stored" "PRIVATE KEY" "without --seal-key the CA key is in etcd in clear (warned)"

MESH_CA_BUNDLE="$WORK/replica1/control/root-cert.pem"
start_mesh_via "$R1,$R2,$R3"
grep -q "bootstrapped" "$WORK/details.err" || fail "details did not bootstrap"
# The proxies took their certificates from replica 1 (first in their list); replica 3's bundle
# verifies them, and every proxy was pushed the one bundle.
openssl verify -CAfile "$WORK/replica3/control/root-cert.pem" "$WORK/details-state/cert-chain.pem" >/dev/null ||
  fail "a certificate issued through replica 1 does not verify against replica 3's bundle"
pass "a certificate issued through replica 1 verifies against replica 3's bundle"
for w in details sleep; do
  cmp -s "$WORK/$w-state/root-cert.pem" "$WORK/replica3/control/root-cert.pem" || fail "$w holds another bundle"
done
pass "the proxies' bundles equal the replicas'"
# A proxy bootstrapped through replica 3 (first in its list) talks to one bootstrapped through replica 1.
CP_ADDR="$R3,$R1"
start_workload late late "$APP" "outbound:
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$details_IN\", identities: [\"$DETAILS_ID\"], protocol: http}"
expect_eq "$(http_status "http://127.0.0.1:$late_OUT/details/1")" 200 "a proxy of replica 3 calls a proxy of replica 1"

# 2. The same with --seal-key, on another prefix: the key is sealed in etcd.
head -c 48 /dev/urandom | base64 -w0 >"$WORK/seal.key"
chmod 600 "$WORK/seal.key"
head -c 48 /dev/urandom | base64 -w0 >"$WORK/other-seal.key"
chmod 600 "$WORK/other-seal.key"
REPLICA_CA_FLAGS=(--etcd-prefix /sealed/ --seal-key "$WORK/seal.key")
for n in 4 5; do
  start "replica$n" "$CONTROL_BIN" --store "$STORE" --data-dir "$WORK/replica$n" --listen 127.0.0.1:0 "${REPLICA_CA_FLAGS[@]}"
  printf -v "R$n" '127.0.0.1:%s' "$(port_of "$WORK/replica$n.out" '^listening grpc ')"
done
cmp -s "$WORK/replica4/control/root-cert.pem" "$WORK/replica5/control/root-cert.pem" || fail "sealed replicas: two CAs"
! cmp -s "$WORK/replica4/control/root-cert.pem" "$WORK/replica1/control/root-cert.pem" || fail "/sealed/ reused /meshguard/'s CA"
! grep -q WARNING "$WORK/replica4.err" || fail "a sealed replica warned: $(grep WARNING "$WORK/replica4.err")"
for key in ca token-key; do
  value=$(etcd_get "/sealed/shared/$key")
  [ -n "$value" ] || fail "no /sealed/shared/$key"
  expect_not_contains "$value" "PRIVATE KEY" "with --seal-key, /sealed/shared/$key holds no key in clear"
  expect_contains "$value" "mg-sealed-v1:" "with --seal-key, /sealed/shared/$key is sealed"
done
! grep -rq "$(cat "$WORK/seal.key")" "$WORK"/replica?.err "$WORK"/replica?.out || fail "the seal key was logged"

refused wrong-seal-key "control.sealed.*--seal-key" --store "$STORE" --etcd-prefix /sealed/ --seal-key "$WORK/other-seal.key"
refused no-seal-key "control.seal_key.*sealed: start this replica with --seal-key" --store "$STORE" --etcd-prefix /sealed/
refused seal-key-on-clear-ca "control.seal_key.*in clear" --store "$STORE" --seal-key "$WORK/seal.key"
chmod 644 "$WORK/other-seal.key"
refused readable-seal-key "control.seal_key.*--seal-key.*chmod 600" --store "$STORE" --etcd-prefix /sealed/ \
  --seal-key "$WORK/other-seal.key"
printf 'short\n' >"$WORK/short.key"
chmod 600 "$WORK/short.key"
refused short-seal-key "control.seal_key.*at least 32" --store "$STORE" --etcd-prefix /fresh/ --seal-key "$WORK/short.key"
"$CTL_BIN" ca init --dir "$WORK/cacerts" --trust-domain cluster.local >/dev/null || fail "ca init"
refused plug-in-on-shared-ca "control.shared_ca.*without --plug-in-ca" --store "$STORE" --plug-in-ca "$WORK/cacerts"
refused seal-key-with-plug-in "control.seal_key.*give one of them" --store "$STORE" --etcd-prefix /fresh/ \
  --plug-in-ca "$WORK/cacerts" --seal-key "$WORK/seal.key"
refused seal-key-without-etcd "control.seal_key.*needs --store etcd" --seal-key "$WORK/seal.key"
[ -z "$(etcd_get /fresh/shared/ca)" ] || fail "a refused replica stored a CA under /fresh/"
