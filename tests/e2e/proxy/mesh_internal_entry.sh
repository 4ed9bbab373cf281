#!/usr/bin/env bash
# A MESH_INTERNAL ServiceEntry host called through a client proxy (issue 20): the by-Host listener
# sends the request over mTLS to the entry's STATIC endpoint, a workload's STRICT proxy, whose
# SVID must be one of the entry's subjectAltNames (secure naming). A SAN naming another identity
# makes the same call fail (503: the server is not who the entry says).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/egress_lib.sh"

BILLING_ID=spiffe://cluster.local/ns/billing/sa/billing
make_ca "$WORK" mesh
make_svid "$WORK" billing mesh "$BILLING_ID"
make_svid "$WORK" sleep mesh spiffe://cluster.local/ns/default/sa/sleep
mkdir -p "$WORK/billing-policies" "$WORK/client-policies"

start_app billing app
run_proxy billing-proxy BILLING_IN='inbound[0]' <<YAML
workload: {name: billing, namespace: billing, serviceAccount: billing, labels: {app: billing}}
$(tls_yaml billing)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app, protocol: http, mtlsMode: STRICT}
accessLog: $WORK/billing-access.log
policyDir: $WORK/billing-policies
YAML

# entry SAN: the ServiceEntry for billing.internal, expecting SAN.
entry() {
  cat <<YAML | put_file "$WORK/client-policies" entry.yaml
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: billing, namespace: default}
spec:
  hosts: [billing.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $BILLING_IN}}]
  subjectAltNames: ["$1"]
YAML
}
entry "$BILLING_ID"
client sleep sleep

body=$(call "$SLEEP_OUT" http://billing.internal/headers)
expect_contains "$body" '"x-forwarded-client-cert": "By='"$BILLING_ID" "billing.internal: the request reached billing's proxy over mTLS"
expect_contains "$body" 'URI=spiffe://cluster.local/ns/default/sa/sleep' "billing's proxy saw sleep's principal"
expect_eq "$(call_status "$SLEEP_OUT" http://billing.internal/status/200)" 200 "sleep → MESH_INTERNAL billing.internal: 200"
wait_for_count "$WORK/billing-access.log" '"principal":"spiffe://cluster.local/ns/default/sa/sleep"' 1
pass "billing's access log names sleep's principal"

# Secure naming: the entry now expects another identity; billing's SVID no longer passes.
entry spiffe://cluster.local/ns/billing/sa/impostor
for _ in $(seq 1 100); do
  [ "$(call_status "$SLEEP_OUT" http://billing.internal/status/200)" = 503 ] && break
  sleep 0.1
done
expect_eq "$(call_status "$SLEEP_OUT" http://billing.internal/status/200)" 503 \
  "a subjectAltName billing's SVID does not carry: 503 (secure naming)"
