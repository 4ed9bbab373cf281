#!/usr/bin/env bash
# Outbound by name through the service registry (issue 16), with standalone proxies: the client's
# policyDir holds hand-written Service + ServiceEndpoints documents (hot-reloaded like policies).
# app → client proxy ({listen, protocol: http}: Host → service → endpoint) ══ mTLS ══► server
# proxies details-v1 / details-v2 (/ details-v3) → their apps. Balancing (LEAST_REQUEST, then
# ROUND_ROBIN), unknown host 404 NR, a replica killed (retry + ejection), a replica added to the
# file, an impostor with another service account's certificate refused (secure naming), the
# server's AuthorizationPolicy still deciding, a TCP service-port listener, /config_dump and
# `meshguardctl proxy-config endpoints`.
CTL_BIN="$3"
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

make_mesh_svids
REVIEWS=spiffe://cluster.local/ns/default/sa/reviews
make_svid "$WORK" reviews mesh "$REVIEWS"  # a valid mesh certificate, of another service account

start_app app1 APP1
start_app app2 APP2
start_app app3 APP3
start_app app4 APP4
start_app tcpapp TCPAPP  # behind every replica's tcp inbound

# server_proxy NAME SVID APP: a details replica (STRICT http inbound to APP, tcp inbound to
# TCPAPP), access log $WORK/NAME-access.log, policies in $WORK/NAME-policies (a DENY on /denied
# for APP's port: a DENY rule's HTTP fields would make it deny every TCP connection, as Istio's);
# sets NAME_HTTP, NAME_TCP.
server_proxy() {
  local name="$1" svid="$2" app="$3"
  mkdir -p "$WORK/$name-policies"
  {
    policy_head AuthorizationPolicy deny-denied
    echo "  action: DENY"
    echo "  rules: [{to: [{operation: {ports: [\"$app\"], paths: [/denied]}}]}]"
  } >"$WORK/$name-policies/deny.yaml"
  run_proxy "$name" "${name}_HTTP=inbound[0]" "${name}_TCP=inbound[1]" <<YAML
workload: {name: $name, namespace: default, serviceAccount: ${svid}}
$(tls_yaml "$svid")
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app, protocol: http, mtlsMode: STRICT}
  - {port: 0, address: 127.0.0.1, appPort: $TCPAPP, protocol: tcp, mtlsMode: STRICT}
accessLog: $WORK/$name-access.log
policyDir: $WORK/$name-policies
workers: 1
YAML
}
server_proxy v1 details "$APP1"
V1_PID=$LAST_PID
server_proxy v2 details "$APP2"
V2_PID=$LAST_PID
server_proxy imp reviews "$APP4"  # the impostor

# endpoint_yaml NAME: one ServiceEndpoints entry for replica NAME (service ports 9080 http, 9001 tcp).
endpoint_yaml() {
  local http="${1}_HTTP" tcp="${1}_TCP"
  echo "  - {workload: details-$1, address: 127.0.0.1, serviceAccount: ${SA:-details}, ports: [{port: 9080, endpointPort: ${!http}}, {port: 9001, endpointPort: ${!tcp}}]}"
}
# registry LB REPLICA...: the client's registry file: details (LB) backed by the REPLICAs, and
# ratings, whose one endpoint is the impostor (registered as ratings, holding reviews' certificate).
registry() {
  local lb="$1" r
  shift
  cat <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: details, namespace: default}
spec:
  selector: {app: details}
  ports: [{name: http, port: 9080, protocol: http}, {name: tcp-raw, port: 9001, protocol: tcp}]
  loadBalancer: $lb
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: details, namespace: default}
spec:
  endpoints:
YAML
  for r in "$@"; do endpoint_yaml "$r"; done
  cat <<YAML
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: ratings, namespace: default}
spec:
  endpoints:
  - {workload: ratings-v1, address: 127.0.0.1, serviceAccount: ratings, ports: [{port: 9080, endpointPort: $imp_HTTP}]}
---
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
YAML
}
mkdir -p "$WORK/client-policies"
registry LEAST_REQUEST v1 v2 | put_file "$WORK/client-policies" registry.yaml

run_proxy client C_HTTP='outbound[0]' C_TCP='outbound[1]' C_HAND='outbound[2]' C_ADMIN=admin <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
policyDir: $WORK/client-policies
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
  - {listen: "127.0.0.1:0", service: details.default, port: 9001}
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$v1_HTTP", identities: ["$DETAILS"], protocol: http}
outlierDetection: {consecutiveErrors: 2, baseEjectionTimeMs: 60000}
admin: {port: 0}
accessLog: $WORK/client-access.log
workers: 2
YAML

# by_name URL [curl args]: the request sent to the client's by-Host listener (curl keeps the URL's
# Host and connects to the listener).
by_name() {
  local url="$1"
  shift
  curl -s --max-time 10 --connect-to "::127.0.0.1:$C_HTTP" "$@" "$url"
}
by_name_status() { by_name "$1" -o /dev/null -w '%{http_code}' "${@:2}" || true; }

# --- names -----------------------------------------------------------------------------------
for host in details details:9080 details.default:9080 details.default.svc:9080 details.default.svc.cluster.local:9080; do
  expect_eq "$(by_name_status "http://$host/status/200")" 200 "by name: $host"
done
expect_contains "$(by_name "http://details.default:9080/details/7")" '"id": 7' "app → client proxy → details by name → app"
expect_contains "$(curl -s --max-time 10 -x "http://127.0.0.1:$C_HTTP" http://details.default:9080/details/8)" '"id": 8' \
  "absolute-form (curl -x, the listener as an HTTP proxy)"
expect_contains "$(by_name "http://details.default:9080/headers")" "By=$DETAILS" "the endpoint is reached over mTLS (XFCC names details)"
expect_eq "$(by_name_status http://nosuch.default:9080/)" 404 "unknown host → 404"
wait_for_count "$WORK/client-access.log" '"host":"nosuch.default:9080".*"status":404,"response_flags":"NR","response_code_details":"route_not_found"' 1
pass "unknown host: access log flag NR (route_not_found)"
expect_eq "$(by_name_status http://details.default:9999/)" 404 "a port the service does not have → 404"
expect_eq "$(by_name_status http://reviews:9080/)" 503 "a service without endpoints → 503"
wait_for_count "$WORK/client-access.log" '"host":"reviews:9080".*"status":503,"response_flags":"UH"' 1
pass "no healthy endpoint: access log flag UH"
expect_eq "$(by_name_status http://details.default:9080/status/200 --http2-prior-knowledge)" 200 "HTTP/2 client (h2c) by name"
expect_eq "$(by_name_status http://details.default:9080/denied)" 403 "the server's AuthorizationPolicy still decides (DENY /denied)"
# --- Mesh outboundTrafficPolicy (issue 20): REGISTRY_ONLY refuses unknown hosts as Istio's
# BlackHoleCluster does (502, direct_response); ALLOW_ANY (here the short form) is today's 404.
mesh_policy() {
  printf 'apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec:\n  outboundTrafficPolicy: %s\n' "$1" |
    put_file "$WORK/client-policies" mesh.yaml
}
mesh_policy '{mode: REGISTRY_ONLY}'
wait_status "http://127.0.0.1:$C_HTTP/" 502 -H 'Host: api.external.example'
expect_eq "$(curl -s --max-time 10 -H 'Host: api.external.example' "http://127.0.0.1:$C_HTTP/")" "" "REGISTRY_ONLY: 502 with no body"
expect_eq "$(by_name_status http://nosuch.default:9080/)" 502 "REGISTRY_ONLY: an unknown mesh host → 502"
expect_eq "$(by_name_status http://details.default:9080/status/200)" 200 "REGISTRY_ONLY: a registered service still → 200"
wait_for_count "$WORK/client-access.log" \
  '"service":"BlackHoleCluster".*"host":"api.external.example".*"status":502,"response_flags":"-","response_code_details":"direct_response"' 1
pass "REGISTRY_ONLY: the access log names the host, BlackHoleCluster and direct_response"
mesh_policy ALLOW_ANY
wait_status "http://127.0.0.1:$C_HTTP/" 404 -H 'Host: api.external.example'
pass "ALLOW_ANY (short form): an unknown host is 404 NR again"
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$C_HAND/status/200")" 200 \
  "a hand-written route beside them keeps working"

# --- balancing -------------------------------------------------------------------------------
# LEAST_REQUEST, sequential requests: every pick is a tie between two idle endpoints, so a random
# draw; 40 requests, each replica must get at least 8 (binomial(40, 1/2) < 8: p ≈ 1e-5).
for i in $(seq 1 40); do by_name "http://details.default:9080/anything/lr-$i" -o /dev/null; done
n1=$(grep -c "/anything/lr-" "$WORK/v1-access.log" || true)
n2=$(grep -c "/anything/lr-" "$WORK/v2-access.log" || true)
expect_eq "$((n1 + n2))" 40 "LEAST_REQUEST: 40 requests served ($n1 + $n2)"
[ "$n1" -ge 8 ] && [ "$n2" -ge 8 ] || fail "LEAST_REQUEST: unbalanced $n1 / $n2 (tolerance: each ≥ 8 of 40)"
pass "LEAST_REQUEST balanced: $n1 / $n2 (each ≥ 8 of 40)"
# ROUND_ROBIN (hot reload of the registry file): 20 sequential requests alternate exactly.
registry ROUND_ROBIN v1 v2 | put_file "$WORK/client-policies" registry.yaml
for _ in $(seq 1 200); do
  curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/config_dump" | grep -q '"loadBalancer": *"ROUND_ROBIN"' && break
  sleep 0.05
done
for i in $(seq 1 20); do by_name "http://details.default:9080/anything/rr-$i" -o /dev/null; done
n1=$(grep -c "/anything/rr-" "$WORK/v1-access.log" || true)
n2=$(grep -c "/anything/rr-" "$WORK/v2-access.log" || true)
expect_eq "$n1/$n2" "10/10" "ROUND_ROBIN: exactly 10 / 10"

# --- TCP service port ------------------------------------------------------------------------
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$C_TCP/details/9")" '"id": 9' "TCP service-port listener (spliced over mTLS)"
# The far end's workload in the client's metrics: the replica's proxy says who it is — for TCP in
# its metadata frame (ALPN istio-peer-exchange), for HTTP in x-envoy-peer-metadata. Its own name
# (v1, v2), not the registry's (details-v1): the proxy's word comes first.
m=$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics")
grep -qE '^istio_tcp_connections_opened_total\{reporter="source",.*,destination_workload="v[12]",destination_workload_namespace="default",' <<<"$m" ||
  fail "outbound TCP by name: no destination_workload from the replica's metadata frame in: $(grep '^istio_tcp_connections_opened_total' <<<"$m")"
pass "outbound TCP by name: destination_workload from the replica proxy's metadata frame"
grep -qE '^istio_requests_total\{reporter="source",.*,destination_workload="v[12]",destination_workload_namespace="default",' <<<"$m" ||
  fail "outbound HTTP by name: no destination_workload from the replica's metadata"
pass "outbound HTTP by name: destination_workload from the replica proxy's metadata"

# --- secure naming ---------------------------------------------------------------------------
# ratings' endpoint is the impostor: a valid mesh certificate, but of service account reviews.
expect_eq "$(by_name_status http://ratings.default:9080/anything/impostor)" 503 "impostor refused (503)"
wait_for_count "$WORK/client-access.log" '"event":"connection_refused".*"reason":"secure_naming_mismatch"' 1
pass "impostor: secure_naming_mismatch logged"
expect_eq "$(grep -c '/anything/impostor' "$WORK/imp-access.log" || true)" 0 "impostor: no request reached it"
# Answered by the client proxy itself, a request still carries what the registry knows of its
# destination: the endpoint's workload and namespace (503 UF: the impostor failed secure naming,
# so no metadata came back), and the service (503 UH: reviews has no endpoint).
m=$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics")
grep -qE '^istio_requests_total\{reporter="source",.*,destination_workload="ratings-v1",destination_workload_namespace="default",destination_principal="unknown",.*,destination_service="ratings.default.svc.cluster.local",.*,response_code="503",response_flags="UF",' <<<"$m" ||
  fail "local 503 UF: destination labels lost: $(grep '^istio_requests_total.*response_code="503"' <<<"$m")"
pass "local 503 UF: destination_workload / _namespace from the registry's endpoint"
grep -qE '^istio_requests_total\{reporter="source",.*,destination_service="reviews.default.svc.cluster.local",.*,destination_service_name="reviews",destination_service_namespace="default",.*,response_code="503",response_flags="UH",' <<<"$m" ||
  fail "local 503 UH: destination service labels lost: $(grep '^istio_requests_total.*response_code="503"' <<<"$m")"
pass "local 503 UH: destination_service / _name / _namespace from the registry"

# --- a replica killed: retry + ejection ------------------------------------------------------
kill -KILL "$V2_PID"
codes=""
for i in $(seq 1 30); do codes+="$(by_name_status "http://details.default:9080/anything/kill-$i") "; done
expect_not_contains "$codes" "503" "replica killed: every request still 200 (retried on the other endpoint)"
expect_eq "$(echo "$codes" | tr ' ' '\n' | grep -c 200)" 30 "replica killed: 30 × 200"
metrics=$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/metrics")
expect_contains "$metrics" 'envoy_cluster_upstream_rq_retry{cluster_name="outbound|9080||details.default.svc.cluster.local"}' "retries counted"
expect_contains "$metrics" 'envoy_cluster_outlier_detection_ejections_enforced_total{cluster_name="outbound|9080||details.default.svc.cluster.local"} 1' \
  "the dead replica ejected once (consecutiveErrors 2; then not picked while ejected)"
dump=$(curl -s --max-time 10 "http://127.0.0.1:$C_ADMIN/config_dump")
dead=$(echo "$dump" | jq -c --arg a "127.0.0.1:$v2_HTTP" \
  '.registry.services[] | select(.name == "details") | .ports[] | select(.port == 9080) | .endpoints[] | select(.address == $a) | [.identity, .healthy, .ejected, .ejections]')
expect_eq "$dead" "[\"$DETAILS\",true,true,1]" "/config_dump: the dead replica ejected, with its expected identity"
expect_eq "$(echo "$dump" | jq -c '.registry.services[] | select(.name == "ratings") | .identities')" \
  '["spiffe://cluster.local/ns/default/sa/ratings"]' "/config_dump: ratings' secure-naming identities"

# --- a replica added: hot reload -------------------------------------------------------------
server_proxy v3 details "$APP3"
registry LEAST_REQUEST v1 v2 v3 | put_file "$WORK/client-policies" registry.yaml
got=0
for i in $(seq 1 200); do
  by_name "http://details.default:9080/anything/add-$i" -o /dev/null
  if [ "$(grep -c "/anything/add-" "$WORK/v3-access.log" 2>/dev/null || true)" -gt 0 ]; then got=1; break; fi
  sleep 0.05
done
expect_eq "$got" 1 "a third replica added to ServiceEndpoints receives traffic (within 200 polls)"

# --- meshguardctl proxy-config endpoints -----------------------------------------------------
table=$("$CTL_BIN" proxy-config endpoints --admin "127.0.0.1:$C_ADMIN")
echo "$table"
expect_contains "$table" "OUTLIER CHECK" "proxy-config endpoints: table header"
expect_contains "$table" "127.0.0.1:$v3_HTTP" "proxy-config endpoints: the added replica"
expect_contains "$(echo "$table" | grep "127.0.0.1:$v2_HTTP" | head -1)" "EJECTED" "proxy-config endpoints: the dead replica EJECTED"
expect_contains "$(echo "$table" | grep "127.0.0.1:$imp_HTTP")" "spiffe://cluster.local/ns/default/sa/ratings" \
  "proxy-config endpoints: the identity expected of ratings' endpoint"
json=$("$CTL_BIN" proxy-config endpoints --admin "127.0.0.1:$C_ADMIN" -o json)
expect_contains "$json" '"loadBalancer": "LEAST_REQUEST"' "proxy-config endpoints -o json"
# --- a publish that takes the servers' identity away: pooled connections are not reused --------
SA=other registry LEAST_REQUEST v1 v3 | put_file "$WORK/client-policies" registry.yaml
for _ in $(seq 1 200); do
  [ "$(by_name_status http://details.default:9080/status/200)" = 503 ] && break
  sleep 0.05
done
codes=""
for _ in $(seq 1 10); do codes+="$(by_name_status http://details.default:9080/status/200) "; done
expect_eq "$codes" "503 503 503 503 503 503 503 503 503 503 " \
  "endpoints now registered as another service account: refused, no pooled connection reused"
echo "all registry checks passed"
