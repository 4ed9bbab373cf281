#!/usr/bin/env bash
# Istio's plain-HTTP "Egress Gateways" task (issue 20), with standalone proxies:
#   sleep app → client proxy (by-Host listener; VirtualService bound to `mesh`) ══ mTLS (auto
#   mTLS: the egress gateway is a mesh service) ══► egress gateway (Gateway server HTTP on port
#   80: a PERMISSIVE listener, which takes the mesh's mTLS with the caller's principal and
#   plaintext from outside) ── plain HTTP ──► an HTTP server on 127.0.0.1 standing in for
#   edition.cnn.com.
# The task's YAML as written except: edition.cnn.com → localhost; the Gateway's port 80 (and the
# gateway-side match port) → $GWPORT, a free port; the ServiceEntry's port 80 gets
# `targetPort: $EXT`, the stand-in's port. An AuthorizationPolicy selecting the gateway allows
# sleep's principal only: another workload gets 403, as does a plaintext client outside the mesh
# (no principal), which the listener still accepts.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/egress_lib.sh"

EGW_ID=spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account
make_ca "$WORK" mesh
make_svid "$WORK" egw mesh "$EGW_ID"
make_svid "$WORK" sleep mesh spiffe://cluster.local/ns/default/sa/sleep
make_svid "$WORK" other mesh spiffe://cluster.local/ns/default/sa/other

start ext python3 "$(dirname "$0")/https_server.py" --plain
EXT=$(port_of "$WORK/ext.out" '^listening on 127\.0\.0\.1:[0-9]+$')
GWPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

task_yaml() {
  cat <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - localhost
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: $EXT
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: $GWPORT
      name: http
      protocol: HTTP
    hosts:
    - localhost
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - localhost
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: $GWPORT
    route:
    - destination:
        host: localhost
        port:
          number: 80
      weight: 100
YAML
}

mkdir -p "$WORK/creds" "$WORK/egw-policies" "$WORK/client-policies"
task_yaml | put_file "$WORK/egw-policies" task.yaml
cat >"$WORK/egw-policies/authz.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: egress-allow, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {hosts: ["localhost", "localhost:*"]}}]
YAML
run_proxy egw EGW='gateway[0]' EGW_ADMIN=admin <<YAML
workload: {name: egressgateway, namespace: istio-system, serviceAccount: istio-egressgateway-service-account,
           labels: {istio: egressgateway}, address: 127.0.0.1}
$(tls_yaml egw)
admin: {port: 0}
accessLog: $WORK/egw-access.log
policyDir: $WORK/egw-policies
gateway: {credentialsDir: $WORK/creds}
YAML
expect_eq "$EGW" "$GWPORT" "the egress gateway listens on the Gateway's HTTP port"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$EGW_ADMIN/config_dump" | tr -d ' ')" '"mtlsMode":"PERMISSIVE"' \
  "the HTTP gateway listener is PERMISSIVE"

{
  task_yaml
  cat <<YAML
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http, port: 80, targetPort: $GWPORT, protocol: http}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  endpoints:
  - {workload: egressgateway, address: 127.0.0.1, serviceAccount: istio-egressgateway-service-account, ports: [{port: 80, endpointPort: $GWPORT}]}
YAML
} | put_file "$WORK/client-policies" egress.yaml
client sleep sleep
client other other

# The task's check: curl -sSL -o /dev/null -D - http://edition.cnn.com/politics → 200 (the stand-in
# answers the path itself: no redirect to follow).
body=$(call "$SLEEP_OUT" http://localhost/politics)
expect_contains "$body" '"path": "/politics"' "sleep: http://localhost/politics through the egress gateway reaches the third party"
expect_contains "$body" '"sni": null' "the third party was spoken to in plain HTTP"
expect_eq "$(call_status "$SLEEP_OUT" http://localhost/politics)" 200 "sleep: 200, as the task documents"
wait_for_count "$WORK/egw-access.log" '"direction":"gateway".*"principal":"spiffe://cluster.local/ns/default/sa/sleep"' 1
pass "the gateway's HTTP listener took the client proxy's mTLS: the caller's principal is known"
expect_contains "$(grep '"event":"egress_audit"' "$WORK/egw-access.log" | head -n1)" '"sni":null' \
  "the egress audit line: plain HTTP to the third party"

# Policy at the gateway sees the principal: another workload is denied.
expect_eq "$(call_status "$OTHER_OUT" http://localhost/politics)" 403 "other → egress gateway: 403 (not in the policy's principals)"
# A plaintext client outside the mesh is still accepted by the listener, and has no principal.
expect_eq "$(http_status "http://127.0.0.1:$GWPORT/politics" -H 'Host: localhost')" 403 \
  "a plaintext request to the gateway is accepted and judged: no principal, 403"
rm -f "$WORK/egw-policies/authz.yaml"
wait_status "http://127.0.0.1:$GWPORT/politics" 200 -H 'Host: localhost'
pass "without the policy the plaintext client outside the mesh reaches the third party (PERMISSIVE)"
