#!/usr/bin/env bash
# Issue 18 item 6: `meshguardctl proxy-config secret WORKLOAD` (leaf chain, trust bundle, serials in
# upper-case hex, RFC 3339 validity, issuing root, state) and `proxy-config policies WORKLOAD` (the
# snapshot in force, its store revision and ACK state), read from the proxy's own /config_dump —
# found through the control plane, or with --admin directly; /config_dump includes the trust bundle.
source "$(dirname "$0")/lib.sh"

start_control
start_details_and_sleep
RFC3339='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
root_fp=$(openssl x509 -in "$DATA/ca/root-cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')

out=$(ctl proxy-config secret details) || fail "proxy-config secret: $out"
echo "$out"
expect_contains "$out" "identity: $DETAILS_ID   state: Available" "secret: identity and state"
serial=$(ctl workload list -o json | jq -r '.[] | select(.name == "details") | .certSerial')
echo "$out" | grep -qE "^default +Cert Chain +Available +true +$serial +$RFC3339 +$RFC3339$" ||
  fail "secret: no Cert Chain row with serial $serial and RFC 3339 validity"
pass "secret: the leaf row (serial $serial as workload list shows it, RFC 3339 validity)"
echo "$out" | grep -qE "^ROOTCA +Root CA \(issuing\) +- +true +[0-9A-F]+ +$RFC3339 +$RFC3339$" || fail "secret: no issuing root row"
pass "secret: the issuing root row"

json=$(ctl proxy-config secret default/details -o json) || fail "secret -o json: $json"
expect_eq "$(echo "$json" | jq -r '.chain[0].serial')" "$serial" "secret -o json: leaf serial"
[[ "$serial" =~ ^[0-9A-F]+$ ]] || fail "serial $serial is not upper-case hex"
pass "serials are upper-case hex"
expect_eq "$(echo "$json" | jq -r '.issuingRoot.fingerprint')" "$root_fp" "secret -o json: the issuing root is the CA's root"
expect_eq "$(echo "$json" | jq -r '.trustBundle.roots | length')" 1 "secret -o json: one root in the bundle"
expect_eq "$(echo "$json" | jq -r '.trustBundle.trustDomain')" cluster.local "secret -o json: trust domain"
expect_eq "$(echo "$json" | jq -r '.chain[0].notAfter' | grep -cE "^$RFC3339$")" 1 "secret -o json: validity in RFC 3339"
expect_eq "$(ctl proxy-config secret details.default -o json | jq -r '.chain[0].serial')" "$serial" "WORKLOAD as NAME.NAMESPACE"
# Straight from the admin endpoint (no control plane involved).
expect_eq "$(env -u MESHGUARD_ADMIN_DIR "$CTL_BIN" proxy-config secret --admin "127.0.0.1:$details_ADMIN" -o json | jq -r '.chain[0].serial')" \
  "$serial" "--admin HOST:PORT reads the proxy directly"
dump=$(curl -s --max-time 5 "http://127.0.0.1:$details_ADMIN/config_dump")
expect_eq "$(echo "$dump" | jq -r '.certificate.trustBundle.roots[0].fingerprint')" "$root_fp" "/config_dump includes the trust bundle"

# A CA rotation: the bundle holds both roots; the chain is still issued by the old one.
ctl ca rotate --wait 20 >"$WORK/rotate.out" 2>&1 || fail "ca rotate: $(cat "$WORK/rotate.out")"
json=$(ctl proxy-config secret details -o json)
expect_eq "$(echo "$json" | jq -r '.trustBundle.roots | length')" 2 "after rotation: two roots in the bundle"
expect_eq "$(echo "$json" | jq -r '.issuingRoot.fingerprint')" "$root_fp" "after rotation: the leaf is still issued by the old root"
expect_eq "$(ctl proxy-config secret details | grep -c '^ROOTCA')" 2 "after rotation: two ROOTCA rows"

# policies: the snapshot in force, its revision and ACK state.
deny_paths deny-admin "app: details" "/admin/*" >"$WORK/deny.yaml"
rev=$(ctl apply -f "$WORK/deny.yaml" --wait=20s | sed -nE 's/^revision ([0-9]+)$/\1/p')
[ -n "$rev" ] || fail "apply --wait printed no revision"
out=$(ctl proxy-config policies details) || fail "proxy-config policies: $out"
echo "$out"
echo "$out" | grep -qE "^snapshot: +revision $rev, version [0-9a-f]{16}, received $RFC3339$" || fail "policies: no snapshot line with revision $rev"
pass "policies: the snapshot in force and its revision $rev"
expect_contains "$out" "ack state:  SYNCED (ACKed; the store is at revision $rev)" "policies: ACK state"
echo "$out" | grep -qE "^AuthorizationPolicy +default/deny-admin +yes +" || fail "policies: deny-admin not listed as applying"
pass "policies: lists deny-admin as applying"
json=$(ctl proxy-config policies details -o json)
expect_eq "$(echo "$json" | jq -r '.controlPlane.revision')" "$rev" "policies -o json: revision"
expect_eq "$(echo "$json" | jq -r '.ack.sync')" SYNCED "policies -o json: ack.sync"
expect_eq "$(echo "$json" | jq -r '.ack.ackedVersion')" "$(echo "$json" | jq -r '.controlPlane.version')" "policies -o json: the ACKed version is the one in force"
out=$(ctl proxy-config policies sleep)
expect_contains "$out" "ack state:  SYNCED" "policies: sleep (not selected) is SYNCED too"
expect_not_contains "$out" "deny-admin" "policies: sleep's snapshot lacks details' policy"

rc=0
out=$(ctl proxy-config secret nosuch 2>&1) || rc=$?
expect_eq "$rc" 1 "an unknown workload exits 1"
expect_contains "$out" "workload default/nosuch not found" "an unknown workload is one clear line"
rc=0
out=$(env -u MESHGUARD_ADMIN_DIR "$CTL_BIN" proxy-config policies --admin 127.0.0.1:1 2>&1) || rc=$?
expect_eq "$rc" 1 "an unreachable admin endpoint exits 1"
expect_contains "$out" "cannot connect to the proxy's admin endpoint 127.0.0.1:1" "an unreachable admin endpoint is one clear line"
echo "PASS: proxy_config"
