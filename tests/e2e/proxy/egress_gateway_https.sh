#!/usr/bin/env bash
# Istio's "Egress Gateways" task, section "Egress gateway for HTTPS traffic" (issue 20: TLS
# passthrough), with standalone proxies:
#   curl (its own TLS, SNI edition.cnn.com) → client proxy (by-Host listener: the ClientHello's SNI
#   picks the `mesh` tls route) ══ mTLS (secure naming: the gateway's SPIFFE ID) ══► egress gateway
#   (Gateway server TLS PASSTHROUGH: STRICT, the caller's principal known; the inner SNI picks the
#   gateway's tls route; AuthorizationPolicy on principals × connection.sni) ── TCP, bytes untouched
#   ──► an HTTPS server on 127.0.0.1 standing in for edition.cnn.com, with its own CA.
# curl verifies the stand-in's own certificate with --cacert: the app's TLS reached it end to end.
# The task's YAML as written except (each marked ADAPTED below): the Gateway's port 443 and the
# gateway-side match port → $GWPORT, a free port (the gateway's own listener); the ServiceEntry
# gets `endpoints: [{address: 127.0.0.1, ports: {tls: $EXT}}]`, the stand-in's address and port
# (resolution DNS of edition.cnn.com would reach the real site). The `mesh` match port 443 stays:
# an app's TLS on the by-Host listener is for port 443 (no original destination without capture).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/egress_lib.sh"

EGW_ID=spiffe://cluster.local/ns/istio-system/sa/istio-egressgateway-service-account
make_ca "$WORK" mesh
make_svid "$WORK" egw mesh "$EGW_ID"
make_svid "$WORK" sleep mesh spiffe://cluster.local/ns/default/sa/sleep
make_svid "$WORK" other mesh spiffe://cluster.local/ns/default/sa/other

# The third party: its own CA, a certificate for edition.cnn.com.
make_ca "$WORK" thirdparty
printf 'subjectAltName=DNS:edition.cnn.com\nextendedKeyUsage=serverAuth\n' >"$WORK/ext.ext"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ext.key" \
  -out "$WORK/ext.csr" -subj "/CN=edition.cnn.com" 2>/dev/null
openssl x509 -req -in "$WORK/ext.csr" -CA "$WORK/thirdparty-ca.pem" -CAkey "$WORK/thirdparty-ca.key" \
  -set_serial "0x$(openssl rand -hex 8)" -days 1 -extfile "$WORK/ext.ext" -out "$WORK/ext.pem" 2>/dev/null
start ext python3 "$(dirname "$0")/https_server.py" "$WORK/ext.pem" "$WORK/ext.key"
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
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
  endpoints:                                # ADAPTED: the stand-in, not the real edition.cnn.com
  - {address: 127.0.0.1, ports: {tls: $EXT}}
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
      number: $GWPORT                       # ADAPTED: 443
      name: tls
      protocol: TLS
    hosts:
    - edition.cnn.com
    tls:
      mode: PASSTHROUGH
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
  - edition.cnn.com
  gateways:
  - mesh
  - istio-egressgateway
  tls:
  - match:
    - gateways:
      - mesh
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 443
  - match:
    - gateways:
      - istio-egressgateway
      port: $GWPORT                         # ADAPTED: 443 (the Gateway's port)
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
YAML
}

mkdir -p "$WORK/creds" "$WORK/egw-policies" "$WORK/client-policies"
task_yaml | put_file "$WORK/egw-policies" task.yaml
# At the gateway: only sleep, and only to edition.cnn.com by SNI (Istio's connection.sni).
cat >"$WORK/egw-policies/authz.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: egress-allow, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    when: [{key: connection.sni, values: ["edition.cnn.com"]}]
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
expect_eq "$EGW" "$GWPORT" "the egress gateway listens on the Gateway's TLS port"
dump=$(curl -s --max-time 10 "http://127.0.0.1:$EGW_ADMIN/config_dump" | tr -d ' \n')
expect_contains "$dump" '"tls":"PASSTHROUGH"' "the gateway listener is a PASSTHROUGH one"
expect_contains "$dump" '{"destinations":[{"host":"edition.cnn.com","port":443,"weight":100}],"match":[{"gateways":["istio-egressgateway"],"port":'"$GWPORT"',"sniHosts":["edition.cnn.com"]}]}' \
  "/config_dump lists the listener's tls routes"

# The client proxies: the task's documents, the egress gateway's Service (its TLS port 443 is the
# gateway's listener) and REGISTRY_ONLY.
{
  task_yaml
  cat <<YAML
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {istio: egressgateway}
  ports: [{name: tls, port: 443, targetPort: $GWPORT, protocol: tcp}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  endpoints:
  - {workload: egressgateway, address: 127.0.0.1, serviceAccount: istio-egressgateway-service-account, ports: [{port: 443, endpointPort: $GWPORT}]}
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

# wait_line FILE NEEDLE...: waits (bounded: ~10 s) for a line of FILE holding every NEEDLE (an
# access-log line's keys are in no promised order); prints it.
wait_line() {
  local file="$1" needle lines
  shift
  for _ in $(seq 1 200); do
    lines=$(cat "$file" 2>/dev/null || true)
    for needle in "$@"; do lines=$(grep -F -- "$needle" <<<"$lines" || true); done
    if [ -n "$lines" ]; then
      head -n1 <<<"$lines"
      return 0
    fi
    sleep 0.05
  done
  fail "timed out waiting for a line of $file with: $*"
}

# https_call PORT HOST [curl args]: the app's own HTTPS to HOST, sent to its proxy's by-Host
# listener (curl --resolve), the third party's CA trusted.
https_call() {
  curl -s --max-time 10 --resolve "$2:$1:127.0.0.1" --cacert "$WORK/thirdparty-ca.pem" "${@:3}" "https://$2:$1/politics" || true
}

# The task's check: curl -sSL -o /dev/null -D - https://edition.cnn.com/politics → 200.
body=$(https_call "$SLEEP_OUT" edition.cnn.com)
expect_contains "$body" '"path": "/politics"' "sleep: https://edition.cnn.com/politics through the egress gateway reaches the third party"
expect_contains "$body" '"sni": "edition.cnn.com"' "the third party saw the app's own SNI"
expect_eq "$(https_call "$SLEEP_OUT" edition.cnn.com -o /dev/null -w '%{http_code}')" 200 "sleep: 200, as the task documents"
# curl verified the third party's own certificate (its CA, its name): nothing in between ended the TLS.
expect_eq "$(https_call "$SLEEP_OUT" edition.cnn.com -o /dev/null -w '%{ssl_verify_result}')" 0 \
  "curl verified the stand-in's own certificate: TLS passed through end to end"
audit=$(wait_line "$WORK/egw-access.log" '"event":"egress_audit"' '"principal":"spiffe://cluster.local/ns/default/sa/sleep"' \
  '"sni":"edition.cnn.com"' '"decision":"allow"' '"policy":"istio-system/egress-allow"')
pass "egress audit line at the gateway: sleep's principal, the SNI, allowed by istio-system/egress-allow"
expect_contains "$audit" '"method":null' "the audit line: no method (not visible through TLS passthrough)"
expect_not_contains "$audit" '"bytes_sent":0,' "the audit line counts the bytes relayed"
wait_line "$WORK/sleep-access.log" '"protocol":"tls"' '"sni":"edition.cnn.com"' \
  '"service":"istio-egressgateway.istio-system.svc.cluster.local"' '"principal":"'"$EGW_ID"'"' >/dev/null
pass "client access log: the TLS connection by SNI went to the egress gateway's service"

# The policy at the gateway sees the caller's principal: other is refused (connection closed).
served=$(grep -c '^request' "$WORK/ext.err" || true)
status=$(https_call "$OTHER_OUT" edition.cnn.com -o /dev/null -w '%{http_code}')
expect_eq "$status" 000 "other → egress gateway: the connection is refused (no HTTP answer through a passthrough)"
wait_line "$WORK/egw-access.log" '"event":"egress_audit"' '"principal":"spiffe://cluster.local/ns/default/sa/other"' \
  '"sni":"edition.cnn.com"' '"decision":"deny"' '"reason":"denied: ALLOW policies apply to the workload but none matched"' >/dev/null
pass "egress audit line: other's connection denied, no ALLOW rule matching"
expect_eq "$(grep -c '^request' "$WORK/ext.err" || true)" "$served" "the third party never heard from other"

# REGISTRY_ONLY: an unknown SNI is refused at the client proxy and never reaches the gateway.
audits=$(grep -c '"event":"egress_audit"' "$WORK/egw-access.log")
expect_eq "$(https_call "$SLEEP_OUT" www.google.com -o /dev/null -w '%{http_code}')" 000 \
  "REGISTRY_ONLY: TLS for an unregistered SNI is refused at the client proxy"
wait_line "$WORK/sleep-access.log" '"event":"connection_refused"' '"address":"BlackHoleCluster"' '"reason":"black_hole"' >/dev/null
pass "client access log: BlackHoleCluster (black_hole)"
sleep 0.3
expect_eq "$(grep -c '"event":"egress_audit"' "$WORK/egw-access.log")" "$audits" "the refused connection never reached the egress gateway"
expect_not_contains "$(cat "$WORK/egw-access.log")" 'www.google.com' "the gateway never saw www.google.com"
