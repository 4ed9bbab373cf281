#!/usr/bin/env bash
# DestinationRule tls.mode DISABLE toward a mesh service (issue 20 leftover): the client proxy
# sends plaintext to the service's endpoint, as Istio does. Without the rule the call is mTLS (the
# server's proxy names the caller in x-forwarded-client-cert); with it, plaintext (no XFCC, no
# principal in the server's access log).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/egress_lib.sh"

make_ca "$WORK" mesh
make_svid "$WORK" reviews mesh spiffe://cluster.local/ns/default/sa/reviews
make_svid "$WORK" sleep mesh spiffe://cluster.local/ns/default/sa/sleep
mkdir -p "$WORK/reviews-policies" "$WORK/client-policies"

start_app reviews app
run_proxy reviews-proxy REVIEWS_IN='inbound[0]' <<YAML
workload: {name: reviews, namespace: default, serviceAccount: reviews, labels: {app: reviews}}
$(tls_yaml reviews)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app, protocol: http, mtlsMode: PERMISSIVE}
accessLog: $WORK/reviews-access.log
policyDir: $WORK/reviews-policies
YAML

cat <<YAML | put_file "$WORK/client-policies" reviews.yaml
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, protocol: http}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: reviews, namespace: default}
spec:
  endpoints:
  - {workload: reviews, address: 127.0.0.1, serviceAccount: reviews, ports: [{port: 9080, endpointPort: $REVIEWS_IN}]}
YAML
client sleep sleep

body=$(call "$SLEEP_OUT" http://reviews.default:9080/headers)
expect_contains "$body" '"x-forwarded-client-cert"' "without a DestinationRule: mTLS (the server names the caller)"

cat <<YAML | put_file "$WORK/client-policies" dr.yaml
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: DISABLE}
YAML
for _ in $(seq 1 100); do
  body=$(call "$SLEEP_OUT" http://reviews.default:9080/headers)
  case "$body" in *'"path"'*|*'"headers"'*) [[ "$body" != *x-forwarded-client-cert* ]] && break ;; esac
  sleep 0.1
done
expect_contains "$body" '"headers"' "with tls.mode DISABLE the call still reaches reviews"
expect_not_contains "$body" 'x-forwarded-client-cert' "with tls.mode DISABLE: plaintext (no client certificate reached the server)"
expect_eq "$(call_status "$SLEEP_OUT" http://reviews.default:9080/status/200)" 200 "DISABLE toward a PERMISSIVE server: 200"
wait_for_count "$WORK/reviews-access.log" '"principal":"unknown"|"principal":null' 1
pass "the server's access log has a plaintext caller (no principal)"
