#!/usr/bin/env bash
# Certificates with a 1-minute TTL (Mesh certificateTTL) renewed at half-life under steady load:
# every request succeeds while both proxies renew, and the new certificates are in use.
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
APP=$(start_app app)
start_workload details details "$APP"
DETAILS_ID=spiffe://cluster.local/ns/default/sa/details
start_workload sleep sleep "$APP" "outbound:
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$details_IN\", identities: [\"$DETAILS_ID\"], protocol: http}
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$details_IN\", identities: [\"$DETAILS_ID\"], protocol: tcp}"
TCP_OUT=$(port_of "$WORK/sleep.out" '^listening outbound\[1\] ')

serial() { openssl x509 -in "$WORK/$1-state/cert-chain.pem" -noout -serial | cut -d= -f2; }
lifetime() {
  local nb na
  nb=$(date -d "$(openssl x509 -in "$WORK/$1-state/cert-chain.pem" -noout -startdate | cut -d= -f2)" +%s)
  na=$(date -d "$(openssl x509 -in "$WORK/$1-state/cert-chain.pem" -noout -enddate | cut -d= -f2)" +%s)
  echo $((na - nb))
}
# notBefore is backdated 5 minutes for clock skew: a 1-minute TTL shows as 360 s.
expect_eq "$(lifetime details)" 360 "the Mesh's certificateTTL (1m) is what the CA issues"
first_details=$(serial details)
first_sleep=$(serial sleep)

# Steady load for up to 100 s (bounded count), alternating pooled HTTP and fresh TCP connections,
# until both proxies have renewed twice.
failed=0
total=0
renewed=0
for i in $(seq 1 1000); do
  code=$(http_status "http://127.0.0.1:$sleep_OUT/details/$i")
  total=$((total + 1))
  [ "$code" = 200 ] || { failed=$((failed + 1)); echo "request $i via http route: $code" >&2; }
  code=$(http_status "http://127.0.0.1:$TCP_OUT/status/200")
  total=$((total + 1))
  [ "$code" = 200 ] || { failed=$((failed + 1)); echo "request $i via tcp route: $code" >&2; }
  if [ $((i % 10)) = 0 ]; then
    renewed=$(curl -s --max-time 5 "http://$CP_METRICS/metrics" |
      awk '/^meshguard_csr_total\{.*kind="renewal"/ {n += $2} END {print n + 0}')
    [ "$renewed" -ge 4 ] && break
  fi
  sleep 0.1
done
echo "load: $total requests, $failed failed, $renewed renewals"
[ "$renewed" -ge 4 ] || fail "expected at least 4 renewals (2 per proxy), saw $renewed"
pass "both proxies renewed at half-life ($renewed renewals)"
expect_eq "$failed" 0 "zero failed requests across renewals ($total requests)"
[ "$(serial details)" != "$first_details" ] || fail "details still has its first certificate"
[ "$(serial sleep)" != "$first_sleep" ] || fail "sleep still has its first certificate"
pass "both state dirs hold renewed certificates"
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
