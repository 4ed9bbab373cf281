#!/usr/bin/env bash
# Egress (issue 20): workloads' calls to a host outside the mesh, with standalone proxies.
#   sleep app → client proxy (by-Host listener; VirtualService bound to `mesh`) ══ mTLS, SNI ══►
#   egress gateway (ISTIO_MUTUAL listener: knows the caller; AuthorizationPolicy principals ×
#   hosts) ── TLS originated (DestinationRule SIMPLE, the server verified) ──► HTTPS server on
#   127.0.0.1 with its own CA (https_server.py, standing in for the third party).
# Istio's "Egress Gateways with TLS Origination" task applied as written, and its "Egress TLS
# Origination" task (the client proxy originates TLS itself); an allowed workload reaches the
# third party, a denied one gets 403; one egress_audit line per call; REGISTRY_ONLY refuses an
# unregistered host at the client proxy (502 BlackHoleCluster); a server certificate the rule's CA
# did not sign is refused.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/egress_lib.sh"

EGW_ID=spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account
SLEEP_ID=spiffe://cluster.local/ns/default/sa/sleep
OTHER_ID=spiffe://cluster.local/ns/default/sa/other
make_ca "$WORK" mesh
make_svid "$WORK" egw mesh "$EGW_ID"
make_svid "$WORK" sleep mesh "$SLEEP_ID"
make_svid "$WORK" other mesh "$OTHER_ID"

# The third party: its own CA, a certificate for localhost (the stand-in for edition.cnn.com: a
# name that resolution DNS turns into 127.0.0.1 without touching the network).
make_ca "$WORK" thirdparty
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$WORK/ext.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ext.key" \
  -out "$WORK/ext.csr" -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in "$WORK/ext.csr" -CA "$WORK/thirdparty-ca.pem" -CAkey "$WORK/thirdparty-ca.key" \
  -set_serial "0x$(openssl rand -hex 8)" -days 1 -extfile "$WORK/ext.ext" -out "$WORK/ext.pem" 2>/dev/null
start ext python3 "$(dirname "$0")/https_server.py" "$WORK/ext.pem" "$WORK/ext.key"
EXT=$(port_of "$WORK/ext.out" '^listening on 127\.0\.0\.1:[0-9]+$')
GWPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Istio's egress-gateway-tls-origination task, as written except: edition.cnn.com → localhost;
# the Gateway's port 80 (and the gateway-side match port) → $GWPORT, a free port; the
# ServiceEntry's, VirtualService's and DestinationRule's port 443 → $EXT, the stand-in's port; the
# originating rule names the stand-in's CA (the task's real server chains to the system roots).
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
    name: http
    protocol: HTTP
  - number: $EXT
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
      name: https-port-for-tls-origination
      protocol: HTTPS
    hosts:
    - localhost
    tls:
      mode: ISTIO_MUTUAL
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
      portLevelSettings:
      - port:
          number: 80
        tls:
          mode: ISTIO_MUTUAL
          sni: localhost
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
          number: $EXT
      weight: 100
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-edition-cnn-com
spec:
  host: localhost
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: $EXT
      tls:
        mode: SIMPLE # initiates HTTPS for connections to edition.cnn.com
        caCertificates: $WORK/thirdparty-ca.pem
YAML
}

# --- the egress gateway: the task's documents and who may go where ------------------------------
mkdir -p "$WORK/creds" "$WORK/egw-policies" "$WORK/client-policies" "$WORK/direct-policies"
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
run_proxy egw EGW='gateway[0]' <<YAML
workload: {name: egressgateway, namespace: istio-system, serviceAccount: istio-egressgateway-service-account,
           labels: {istio: egressgateway}, address: 127.0.0.1}
$(tls_yaml egw)
accessLog: $WORK/egw-access.log
policyDir: $WORK/egw-policies
gateway: {credentialsDir: $WORK/creds}
YAML
expect_eq "$EGW" "$GWPORT" "the egress gateway listens on the Gateway's port"

# --- the client proxies: the task's documents, the egress gateway's Service, REGISTRY_ONLY -------
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
---
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
YAML
} | put_file "$WORK/client-policies" egress.yaml
client sleep sleep
client other other

audit() { grep -c '"event":"egress_audit"' "$WORK/egw-access.log" 2>/dev/null || true; }
# wait_audit NEEDLE...: waits (bounded: ~10 s) for an egress_audit line holding every NEEDLE (the
# line's keys are in no promised order).
wait_audit() {
  local needle lines
  for _ in $(seq 1 200); do
    lines=$(grep '"event":"egress_audit"' "$WORK/egw-access.log" 2>/dev/null || true)
    for needle in "$@"; do lines=$(grep -F -- "$needle" <<<"$lines" || true); done
    [ -n "$lines" ] && return 0
    sleep 0.05
  done
  fail "timed out waiting for an egress_audit line with: $*"
}
# expect_audits N WHAT: the gateway's log reaches N audit lines (each is written after its response
# went out) and holds no more.
expect_audits() {
  wait_for_count "$WORK/egw-access.log" '"event":"egress_audit"' "$1"
  expect_eq "$(audit)" "$1" "$2"
}
served() { grep -c '^request "GET' "$WORK/ext.err" || true; }

# --- the allowed workload: through the gateway, TLS originated to the third party ----------------
expect_eq "$(call_status "$SLEEP_OUT" http://localhost/politics)" 200 "sleep: http://localhost/politics through the egress gateway: 200"
body=$(call "$SLEEP_OUT" http://localhost/politics)
expect_contains "$body" '"path": "/politics"' "sleep → egress gateway → https third party (200, as the task documents)"
expect_contains "$body" '"sni": "localhost"' "the gateway originated TLS with the host as SNI"
expect_not_contains "$body" 'x-forwarded-for' "no X-Forwarded-For leaves the mesh"
expect_not_contains "$body" 'x-envoy-peer-metadata' "no mesh metadata leaves the mesh"
expect_not_contains "$body" 'x-forwarded-client-cert' "no client certificate details leave the mesh"
wait_audit '"principal":"spiffe://cluster.local/ns/default/sa/sleep"' '"destination":{"host":"localhost","port":'"$EXT"',"sni":"localhost"}' \
  '"method":"GET"' '"path":"/politics"' '"status":200' '"decision":"allow"' '"policy":"istio-system/egress-allow"' '"bytes_sent":' 
pass "audit line: sleep's principal, the external host and SNI, GET /politics, 200, allowed by istio-system/egress-allow"
wait_for_count "$WORK/egw-access.log" '"direction":"gateway".*"principal":"spiffe://cluster.local/ns/default/sa/sleep"' 1
pass "the egress gateway's access log names the caller (mTLS end to end from the client proxy)"
expect_audits 2 "exactly one audit line per call (two calls)"

# --- the denied workload ----------------------------------------------------------------------------
expect_eq "$(call_status "$OTHER_OUT" http://localhost/politics)" 403 "other → egress gateway: 403 (not in the policy's principals)"
wait_audit '"principal":"spiffe://cluster.local/ns/default/sa/other"' '"host":"localhost"' '"status":403' '"decision":"deny"' 
pass "audit line for the denied call: other's principal, 403, deny"
expect_audits 3 "exactly one audit line per call (allowed and denied)"
requests_before=$(served)
for i in 1 2 3; do
  expect_eq "$(call_status "$SLEEP_OUT" "http://localhost/call/$i")" 200 "allowed call $i"
done
expect_audits 6 "six calls, six audit lines"
expect_eq "$(( $(served) - requests_before ))" 3 "the third party saw the 3 allowed calls only"

# --- REGISTRY_ONLY at the client proxy ------------------------------------------------------------------
expect_eq "$(call_status "$SLEEP_OUT" http://www.example.org/)" 502 "REGISTRY_ONLY: an unregistered host is refused at the client proxy"
wait_for_count "$WORK/sleep-access.log" '"host":"www.example.org".*"status":502.*"response_code_details":"direct_response".*"service":"BlackHoleCluster"|"service":"BlackHoleCluster".*"host":"www.example.org".*"status":502' 1
pass "access log: BlackHoleCluster, 502 direct_response"
expect_audits 6 "the refused call never reached the egress gateway"

# --- Istio's "Egress TLS Origination" task: the client proxy originates TLS itself ----------------
# As written except edition.cnn.com → localhost, the ServiceEntry's port 443 / targetPort 443 →
# $EXT, and the rule names the stand-in's CA.
direct_yaml() {
  cat <<YAML
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: edition-cnn-com
spec:
  hosts:
  - localhost
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
    targetPort: $EXT
  - number: $EXT
    name: https-port
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: edition-cnn-com
spec:
  host: localhost
  trafficPolicy:
    portLevelSettings:
    - port:
        number: 80
      tls:
        mode: SIMPLE # initiates HTTPS when accessing edition.cnn.com
        caCertificates: $1
YAML
}
direct_yaml "$WORK/thirdparty-ca.pem" | put_file "$WORK/direct-policies" task.yaml
run_proxy direct DIRECT_OUT='outbound[0]' <<YAML
workload: {name: direct, namespace: default, serviceAccount: sleep}
$(tls_yaml sleep)
policyDir: $WORK/direct-policies
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
accessLog: $WORK/direct-access.log
YAML
body=$(call "$DIRECT_OUT" http://localhost/politics)
expect_contains "$body" '"path": "/politics"' "egress-tls-origination: http://localhost/politics answered 200 over originated TLS"
expect_contains "$body" '"sni": "localhost"' "the client proxy sent the host as SNI"
expect_audits 6 "a direct call does not pass the egress gateway"
# A rule whose CA did not sign the server's certificate: refused (503 UF), nothing sent in clear.
direct_yaml "$WORK/mesh-ca.pem" | put_file "$WORK/direct-policies" task.yaml
wait_status http://localhost/politics 503 --connect-to "::127.0.0.1:$DIRECT_OUT"
wait_for_count "$WORK/direct-access.log" '"detail":"unable to get local issuer certificate".*"event":"connection_refused".*"reason":"tls_handshake_failed"' 1
pass "a server certificate outside the rule's CA is refused (tls_handshake_failed)"
