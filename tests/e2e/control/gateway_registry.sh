#!/usr/bin/env bash
# A gateway with a control plane (issue 20): its listeners follow the pushed Gateways, and the
# registry follows its listeners — a Gateway applied after the gateway started opens a listener,
# the agent registers the new set of inbound ports (a new Hello), and a Service whose targetPort is
# that listener's port gets the gateway as its endpoint; the Gateway deleted, the listener closes
# and the endpoint leaves.
source "$(dirname "$0")/lib.sh"

CONTROL_ARGS=(--endpoint-grace 1s)
start_control
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
P1=$(free_port)
P2=$(free_port)

# gateway_and_service NAME PORT: a Gateway NAME (HTTP on PORT) selecting the gateway, and a
# Service NAME whose targetPort is PORT.
gateway_and_service() {
  cat <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: $1, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: $2, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  selector: {istio: egressgateway}
  ports: [{name: http, port: 80, targetPort: $2}]
YAML
}
gateway_and_service first "$P1" >"$WORK/first.yaml"
out=$(ctl apply -f "$WORK/first.yaml") || fail "apply first: $out"

ctl token create --namespace default --service-account egw --ttl 10m >"$WORK/egw.token" || fail "token for egw"
mkdir -p "$WORK/creds"
cat >"$WORK/egw.yaml" <<YAML
workload: {name: egw, namespace: default, serviceAccount: egw, labels: {istio: egressgateway}, address: 127.0.0.1}
accessLog: $WORK/egw-access.log
workers: 1
admin: {port: 0, address: 127.0.0.1}
gateway: {credentialsDir: $WORK/creds}
YAML
start egw "$PROXY_BIN" --config "$WORK/egw.yaml" --control-plane "$CP_ADDR" \
  --ca-bundle "$DATA/ca/root-cert.pem" --token-file "$WORK/egw.token" --state-dir "$WORK/egw-state" \
  --bootstrap-timeout 20
line=$(wait_for_line "$WORK/egw.out" '^listening gateway\[0\] ')
expect_eq "$line" "listening gateway[0] 127.0.0.1:$P1" "the gateway listens where the pushed Gateway says"

# wait_endpoint SERVICE REGEX: polls (bounded: ~10 s) until `get endpoints` has a row of SERVICE
# matching REGEX ("-": none of its rows names the gateway).
wait_endpoint() {
  local rows=""
  for _ in $(seq 1 200); do
    rows=$(ctl get endpoints 2>/dev/null | awk -v s="$1" 'NR > 1 && $2 == s')
    if [ "$2" = "-" ]; then grep -q egw <<<"$rows" || return 0; else grep -qE "$2" <<<"$rows" && return 0; fi
    sleep 0.05
  done
  fail "endpoints of $1 never matched /$2/; last: $rows"
}
wait_endpoint first "egw +80->127\.0\.0\.1:$P1 "
pass "the gateway's listener is the Service first's endpoint"

# A Gateway applied while the gateway runs: a new listener, registered.
gateway_and_service second "$P2" >"$WORK/second.yaml"
out=$(ctl apply -f "$WORK/second.yaml") || fail "apply second: $out"
line=$(wait_for_line "$WORK/egw.out" '^listening gateway\[1\] ')
expect_eq "$line" "listening gateway[1] 127.0.0.1:$P2" "a pushed Gateway opens gateway[1]"
wait_endpoint second "egw +80->127\.0\.0\.1:$P2 "
pass "the agent registered the new listener: the Service second's endpoint is the gateway's new port"
wait_endpoint first "egw +80->127\.0\.0\.1:$P1 "
pass "the first listener is still registered"

# The Gateway deleted: the listener closes and its endpoint leaves.
out=$(ctl delete gateway second 2>&1) || fail "delete gateway second: $out"
wait_for_line "$WORK/egw.err" "closed gateway\\[1\\] 127\\.0\\.0\\.1:$P2" >/dev/null
wait_endpoint second "-"
pass "the Gateway deleted: gateway[1] closed, the Service second has no endpoint"
wait_endpoint first "egw +80->127\.0\.0\.1:$P1 "
pass "gateway[0] stays registered"
