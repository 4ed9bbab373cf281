#!/usr/bin/env bash
# A peer's graceful drain is not a client error (issue 15): a client proxy carries a steady stream
# of requests over HTTP/2 (ALPN h2) to two server replicas of a registry service; one replica is
# stopped with SIGTERM mid-run (GOAWAY, its streams begun run to the end, its listener closed).
# Streams it refused — sent before its GOAWAY arrived, above its last-stream-id — are retried on
# the other replica, as are new requests that find it gone: every request succeeds.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
command -v h2load >/dev/null || fail "h2load is required (Debian nghttp2-client, scripts/install-deps.sh)"

make_mesh_svids
start_app app1 APP1
start_app app2 APP2
for r in v1 v2; do
  app="APP${r#v}"
  run_proxy "$r" "${r}_HTTP=inbound[0]" <<YAML
workload: {name: details-$r, namespace: default, serviceAccount: details}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: ${!app}, protocol: http, mtlsMode: STRICT}
accessLog: $WORK/$r-access.log
limits: {drainTimeoutMs: 10000}
workers: 1
YAML
  printf -v "${r}_PID" '%s' "$LAST_PID"
done
mkdir -p "$WORK/client-policies"
cat >"$WORK/client-policies/registry.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, protocol: http}]
  loadBalancer: ROUND_ROBIN
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: details, namespace: default}
spec:
  endpoints:
  - {workload: details-v1, address: 127.0.0.1, serviceAccount: details, ports: [{port: 9080, endpointPort: $v1_HTTP}]}
  - {workload: details-v2, address: 127.0.0.1, serviceAccount: details, ports: [{port: 9080, endpointPort: $v2_HTTP}]}
YAML
run_proxy client C_HTTP='outbound[0]' <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
policyDir: $WORK/client-policies
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
accessLog: $WORK/client-access.log
workers: 1
YAML

URL="http://127.0.0.1:$C_HTTP/status/200"
AUTH=(-H ':authority: details.default:9080')
expect_eq "$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --max-time 10 --http2-prior-knowledge \
  --connect-to "::127.0.0.1:$C_HTTP" http://details.default:9080/status/200)" "200 2" "by name over h2c"

# 20,000 requests, 50 at a time on one client connection; v1 drains once it served 500 of them.
start load h2load -n 20000 -c1 -m50 "${AUTH[@]}" "$URL"
LOAD_PID=$LAST_PID
wait_for_count "$WORK/v1-access.log" '"status":200' 500
kill -TERM "$v1_PID"
wait_for_line "$WORK/v1.err" 'draining' >/dev/null
for _ in $(seq 1 1200); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$LOAD_PID" 2>/dev/null && fail "h2load did not finish within 60 s"
wait "$LOAD_PID" || true
summary=$(grep -E '^requests:|^status codes:' "$WORK/load.out")
expect_contains "$summary" "requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed" "every request succeeded while a replica drained"
expect_contains "$summary" "status codes: 20000 2xx" "every response was 200"
[ "$(grep -c '"status":200' "$WORK/v2-access.log")" -gt 0 ] || fail "v2 served nothing"
pass "v2 took over after v1's drain (v1 served $(grep -c '"status":200' "$WORK/v1-access.log"))"
echo "PASS h2_drain"
