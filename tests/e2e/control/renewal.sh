#!/usr/bin/env bash
# Certificates with a 1-minute TTL (Mesh certificateTTL) renewed at half-life under steady load, and
# an online CA rotation (new bundle to every proxy first, then the new root signs): every request
# succeeds throughout, and the new certificates are the ones in use.
source "$(dirname "$0")/lib.sh"

start_control
cat >"$WORK/mesh.yaml" <<'YAML'
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  trustDomain: cluster.local
  certificateTTL: 1m
YAML
ctl apply -f "$WORK/mesh.yaml" >/dev/null || fail "apply Mesh"
start_details_and_sleep http tcp
listen_ports sleep TCP_OUT='outbound[1]'

serial() { openssl x509 -in "$WORK/$1-state/cert-chain.pem" -noout -serial | cut -d= -f2; }
lifetime() {
  local nb na
  nb=$(date -d "$(openssl x509 -in "$WORK/$1-state/cert-chain.pem" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$WORK/$1-state/cert-chain.pem" -noout -enddate | cut -d= -f2)" +%s)
  echo $((na - nb))
}
# notBefore is backdated 5 minutes for clock skew: a 1-minute TTL shows as 360 s.
expect_eq "$(lifetime details)" 360 "the Mesh's certificateTTL (1m) is what the CA issues"

# new_root_signed NAME: NAME's leaf verifies against the newest root alone (the bundle's first).
new_root_signed() {
  awk '/BEGIN CERTIFICATE/ {n++} n == 1 {print} /END CERTIFICATE/ && n == 1 {exit}' "$WORK/$1-state/root-cert.pem" >"$WORK/newest-root.pem"
  openssl verify -CAfile "$WORK/newest-root.pem" "$WORK/$1-state/cert-chain.pem" >/dev/null 2>&1
}

# Steady load (bounded: at most 1500 rounds, about 200 s), alternating pooled HTTP and fresh TCP
# connections: first until both proxies have renewed, then across an online CA rotation until both
# run on certificates from the new root.
failed=0
total=0
renewed=0
rotated=""
for i in $(seq 1 1500); do
  code=$(http_status "http://127.0.0.1:$sleep_OUT/details/$i")
  total=$((total + 1))
  [ "$code" = 200 ] || { failed=$((failed + 1)); echo "request $i via http route: $code" >&2; }
  code=$(http_status "http://127.0.0.1:$TCP_OUT/status/200")
  total=$((total + 1))
  [ "$code" = 200 ] || { failed=$((failed + 1)); echo "request $i via tcp route: $code" >&2; }
  if [ $((i % 10)) = 0 ]; then
    renewed=$(curl -s --max-time 5 "http://$CP_METRICS/metrics" |
      awk '/^meshguard_csr_total\{.*kind="renewal"/ {n += $2} END {print n + 0}')
    if [ -z "$rotated" ] && [ "$renewed" -ge 2 ]; then
      ctl ca rotate --wait 20 >"$WORK/rotate.out" 2>&1 || fail "ca rotate: $(cat "$WORK/rotate.out")"
      rotated=$total
    fi
    if [ -n "$rotated" ] && new_root_signed details && new_root_signed sleep; then break; fi
  fi
  sleep 0.1
done
echo "load: $total requests, $failed failed, $renewed renewals, rotation after request $rotated"
[ "$renewed" -ge 4 ] || fail "expected at least 4 renewals (2 per proxy), saw $renewed"
pass "both proxies renewed at half-life ($renewed renewals)"
expect_contains "$(cat "$WORK/rotate.out")" "2 connected proxies hold the new trust bundle" "online CA rotation: the new bundle reached both proxies first"
new_root_signed details || fail "details never got a certificate from the new root"
new_root_signed sleep || fail "sleep never got a certificate from the new root"
pass "both proxies run on certificates from the new root"
expect_eq "$(grep -c 'BEGIN CERTIFICATE' "$WORK/details-state/root-cert.pem")" 2 "the pushed bundle holds the new and the old root"
expect_eq "$failed" 0 "zero failed requests across renewals and the CA rotation ($total requests)"
# The server presents the renewed certificate on new handshakes.
presented=$(openssl s_client -connect "127.0.0.1:$details_IN" -cert "$WORK/sleep-state/cert-chain.pem" \
  -key "$WORK/sleep-state/key.pem" -CAfile "$WORK/sleep-state/root-cert.pem" </dev/null 2>/dev/null |
  openssl x509 -noout -serial | cut -d= -f2)
on_disk=$(serial details)
[ "$presented" = "$on_disk" ] || {
  # A renewal may land between the two reads; one more try settles it.
  sleep 1
  on_disk=$(serial details)
  presented=$(openssl s_client -connect "127.0.0.1:$details_IN" -cert "$WORK/sleep-state/cert-chain.pem" \
    -key "$WORK/sleep-state/key.pem" -CAfile "$WORK/sleep-state/root-cert.pem" </dev/null 2>/dev/null |
    openssl x509 -noout -serial | cut -d= -f2)
}
expect_eq "$presented" "$on_disk" "details presents its current (renewed) certificate"
echo "renewal: all checks passed"
