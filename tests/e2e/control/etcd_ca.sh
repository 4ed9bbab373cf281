#!/usr/bin/env bash
# The built-in CA shared by replicas on etcd (docs/ETCD.md): three replicas started with the
# issue's bare command line (--store etcd://... --data-dir DIR, no --plug-in-ca) at once agree on
# one CA kept in etcd — the same bundle everywhere, a certificate issued by replica 1 verifies
# against replica 3's bundle, mesh requests succeed — and keep nothing shared in their data dirs.
# With --seal-key the CA's key is sealed in etcd; a replica with another seal key, without it, with
# a readable seal-key file, or plugging in its own CA is refused with a sentence naming the flag.
# Then `ca rotate`, led through an etcd election, while replicas are killed: a replica serving
# proxies killed in phase 1 → the rotation completes (every proxy holds the new root, every
# surviving replica signs with the new CA); the leader killed in phase 1 → another replica rolls
# it back (the old bundle is pushed back, the old CA still signs); no request between proxies
# fails throughout. Skipped (exit 77) without etcd.
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
CP_ADDR="$R3,$R1,$R2"
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

# 3. CA rotation led through etcd, replicas killed during phase 1, under load.
# signs_with ADDR NAME FP: a new workload NAME bootstrapped through the replica at ADDR gets a
# certificate that verifies against the CA certificate FP alone.
signs_with() {
  local addr="$1" name="$2" fp="$3"
  CP_ADDR="$addr" MESHGUARD_SERVER="$addr" start_workload "$name" "$name" "$APP"
  awk -v want="$fp" '
    /BEGIN CERTIFICATE/ {buf = ""} {buf = buf $0 "\n"}
    /END CERTIFICATE/ {print buf > ("'"$WORK"'/" NR ".crt")}' "$WORK/$name-state/root-cert.pem"
  for f in "$WORK"/*.crt; do
    if [ "$(fingerprints "$f")" = "$fp" ]; then
      openssl verify -CAfile "$f" "$WORK/$name-state/cert-chain.pem" >/dev/null 2>&1 && { rm -f "$WORK"/*.crt; return 0; }
    fi
  done
  rm -f "$WORK"/*.crt
  return 1
}

load_start "http://127.0.0.1:$sleep_OUT/details/1"
old_ca=$(shared_ca_cert current)
[ -n "$old_ca" ] || fail "no current CA in etcd"

# 3a. Phase 1 held open by a proxy that does not acknowledge (late, on replica 3, paused); replica
# 1, serving details and sleep, is killed; they move to replica 2 and take the new bundle there;
# once late acknowledges, the leader (replica 2) completes the rotation.
kill -STOP "$late_PID"
(rc=0; on 2 ca rotate --wait 90 >"$WORK/rotate-a.out" 2>&1 || rc=$?; echo "$rc" >"$WORK/rotate-a.rc") &
ROTATE_A=$!
wait_shared pending set
new_ca=$(shared_ca_cert pending)
pass "rotation led by replica 2 in phase 1 (new CA $new_ca)"
expect_contains "$(etcd_get /meshguard/election/ca)" "#" "the election key names the leading replica"
rc=0
busy=$(on 3 ca rotate --wait 5 2>&1) || rc=$?
expect_contains "$busy" "a CA rotation is in progress, led by replica" "a second rotation through replica 3 is refused, the leader named"
kill -KILL "$R1_PID"
wait "$R1_PID" 2>/dev/null || true
pass "replica 1 (serving details and sleep) killed (-9) in phase 1"
for _ in $(seq 1 300); do
  bundle_has details "$new_ca" && bundle_has sleep "$new_ca" && break
  sleep 0.1
done
bundle_has details "$new_ca" && bundle_has sleep "$new_ca" || fail "the proxies moved off replica 1 never got the new bundle"
[ -n "$(shared_ca_cert pending)" ] || fail "the rotation completed while late had not acknowledged"
pass "phase 1 waits for late (paused); details and sleep, now on replica 2, hold the new bundle"
kill -CONT "$late_PID"
for _ in $(seq 1 900); do
  [ -e "$WORK/rotate-a.rc" ] && break
  sleep 0.1
done
wait "$ROTATE_A" 2>/dev/null || true
expect_eq "$(cat "$WORK/rotate-a.rc" 2>/dev/null)" 0 "ca rotate through replica 2 completed: $(cat "$WORK/rotate-a.out")"
expect_eq "$(shared_ca_cert current)" "$new_ca" "etcd: the new CA is the current one"
expect_eq "$(shared_ca_cert pending)" "" "etcd: nothing pending"
expect_eq "$(etcd_get /meshguard/election/ca)" "" "etcd: the leader resigned"
for w in details sleep late; do
  bundle_has "$w" "$new_ca" && bundle_has "$w" "$old_ca" || fail "$w's bundle lacks the new or the old root"
done
pass "every proxy's bundle holds the new root (and the old one)"
signs_with "$R2" after-a2 "$new_ca" || fail "replica 2 does not sign with the new CA"
signs_with "$R3" after-a3 "$new_ca" || fail "replica 3 does not sign with the new CA"
pass "both surviving replicas sign with the new CA"

# 3b. The leader (replica 3) killed in phase 1: its lease expires, replica 2 rolls the rotation
# back, and pushes the bundle without the abandoned root.
kill -STOP "$late_PID"
(rc=0; on 3 ca rotate --wait 90 >"$WORK/rotate-b.out" 2>&1 || rc=$?; echo "$rc" >"$WORK/rotate-b.rc") &
ROTATE_B=$!
wait_shared pending set
abandoned_ca=$(shared_ca_cert pending)
for _ in $(seq 1 300); do
  bundle_has details "$abandoned_ca" && break
  sleep 0.1
done
bundle_has details "$abandoned_ca" || fail "the abandoned rotation's bundle never reached details"
kill -KILL "$R3_PID"
wait "$R3_PID" 2>/dev/null || true
pass "the leader, replica 3, killed (-9) in phase 1"
wait_shared pending unset
grep -q "rolled back: its leader is gone" "$WORK/replica2.err" || fail "replica 2 did not say it rolled the rotation back"
expect_eq "$(shared_ca_cert current)" "$new_ca" "etcd: the rotation rolled back, the CA unchanged"
pass "replica 2 rolled back the rotation of the dead leader"
kill -CONT "$late_PID"
expect_bundle_back "$abandoned_ca" "$new_ca" details sleep
pass "the old bundle is back on the proxies"
signs_with "$R2" after-b2 "$new_ca" || fail "replica 2 does not sign with the current CA after the rollback"
pass "replica 2 still signs with the current CA"
wait "$ROTATE_B" 2>/dev/null || true

load_stop "no request between proxies failed during both rotations and the kills"
