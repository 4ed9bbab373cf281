#!/usr/bin/env bash
# Issue 18 item 2: the metrics Istio's dashboards and Kiali read. istio_requests_total with the
# source/destination workload, app, version, canonical service/revision, destination_service* and
# request_protocol labels from both reporters; istio_request_bytes, istio_response_bytes and
# istio_request_duration_milliseconds with Envoy's default buckets; the control plane's pilot_*
# counterparts; the own-certificate expiry as a timestamp.
source "$(dirname "$0")/lib.sh"

start_control
workload_resource details details "app: details, version: v1" >"$WORK/details-wl.yaml"
ctl apply -f "$WORK/details-wl.yaml" >/dev/null || fail "register details"
start_details_and_sleep

for i in 1 2 3; do
  expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/$i")" 200 "sleep -> details request $i"
done
SLEEP_ID=spiffe://cluster.local/ns/default/sa/sleep

# The destination's report: this workload from its (registered) labels, the source from the
# metadata sleep's proxy sent (x-envoy-peer-metadata, over mTLS).
inbound="reporter=\"destination\",source_workload=\"sleep\",source_canonical_service=\"sleep\",source_canonical_revision=\"latest\",source_workload_namespace=\"default\",source_principal=\"$SLEEP_ID\",source_app=\"sleep\",source_version=\"unknown\",destination_workload=\"details\",destination_workload_namespace=\"default\",destination_principal=\"$DETAILS_ID\",destination_app=\"details\",destination_version=\"v1\",destination_service=\"details.default.svc.cluster.local\",destination_canonical_service=\"details\",destination_canonical_revision=\"v1\",destination_service_name=\"details\",destination_service_namespace=\"default\",request_protocol=\"http\",response_code=\"200\",response_flags=\"-\",connection_security_policy=\"mutual_tls\",grpc_response_status=\"\""
# The access-log line is written after the response: wait until the third is counted.
for _ in $(seq 1 100); do
  m=$(curl -s --max-time 5 "http://127.0.0.1:$details_ADMIN/metrics")
  grep -qF "istio_requests_total{$inbound} 3" <<<"$m" && break
  sleep 0.05
done
expect_contains "$m" "istio_requests_total{$inbound} 3" "details reports istio_requests_total with Istio's workload labels"
expect_contains "$m" "# TYPE istio_request_bytes histogram" "istio_request_bytes is a histogram"
# (Between proxies the hop is HTTP/2: a GET's request size is its body, 0 — the first bucket.)
expect_contains "$m" "istio_request_bytes_bucket{$inbound,le=\"0.5\"} 3" "istio_request_bytes: Envoy's first bucket"
expect_contains "$m" "istio_request_bytes_bucket{$inbound,le=\"3600000\"} 3" "istio_request_bytes: Envoy's last bucket"
expect_contains "$m" "istio_response_bytes_count{$inbound} 3" "istio_response_bytes counts every response"
# Downstream of details' proxy the hop is HTTP/2: the response size is the body (HPACK head not counted).
isum=$(grep -F "istio_response_bytes_sum{$inbound" <<<"$m" | awk '{print $2}')
awk -v s="$isum" 'BEGIN { exit !(s > 0) }' || fail "istio_response_bytes_sum on the HTTP/2 hop is '$isum' for three responses with a JSON body"
pass "istio_response_bytes_sum counts the bodies sent on the HTTP/2 hop ($isum)"
expect_contains "$m" "istio_request_duration_milliseconds_bucket{$inbound,le=\"+Inf\"} 3" "istio_request_duration_milliseconds"

# The source's report: sleep from its labels, the destination from the metadata details' proxy
# answered with, and the route's destination host.
m=$(curl -s --max-time 5 "http://127.0.0.1:$sleep_ADMIN/metrics")
outbound="reporter=\"source\",source_workload=\"sleep\",source_canonical_service=\"sleep\",source_canonical_revision=\"latest\",source_workload_namespace=\"default\",source_principal=\"$SLEEP_ID\",source_app=\"sleep\",source_version=\"unknown\",destination_workload=\"details\",destination_workload_namespace=\"default\",destination_principal=\"$DETAILS_ID\",destination_app=\"details\",destination_version=\"v1\",destination_service=\"127.0.0.1\",destination_canonical_service=\"details\",destination_canonical_revision=\"v1\",destination_service_name=\"unknown\",destination_service_namespace=\"unknown\",request_protocol=\"http\",response_code=\"200\""
expect_contains "$m" "istio_requests_total{$outbound" "sleep reports istio_requests_total as the source"
# The app's side is HTTP/1.1: the response size counts head and body.
sum=$(grep -F "istio_response_bytes_sum{$outbound" <<<"$m" | awk '{print $2}')
awk -v s="$sum" 'BEGIN { exit !(s > 3 * 100) }' || fail "istio_response_bytes_sum is '$sum' for three responses with headers and a JSON body"
pass "istio_response_bytes_sum counts the bytes sent ($sum)"

# gRPC is told apart by its content type (request_protocol="grpc"); the sample app answers 404.
curl -s -o /dev/null --max-time 5 -H 'content-type: application/grpc' "http://127.0.0.1:$sleep_OUT/pkg.Svc/Method" || true
for _ in $(seq 1 100); do
  m=$(curl -s --max-time 5 "http://127.0.0.1:$details_ADMIN/metrics")
  grep -q 'request_protocol="grpc"' <<<"$m" && break
  sleep 0.05
done
expect_contains "$m" 'request_protocol="grpc"' "a gRPC request is request_protocol=\"grpc\""

# A relabel pushed by the control plane reaches the metrics without a restart: details' own
# report, and (through the metadata exchange) sleep's report of details.
workload_resource details details "app: details, version: v2" >"$WORK/details-wl.yaml"
ctl apply -f "$WORK/details-wl.yaml" --wait=20s >/dev/null || fail "relabel details"
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/7")" 200 "sleep -> details after the relabel"
relabelled_in="source_version=\"unknown\",destination_workload=\"details\",destination_workload_namespace=\"default\",destination_principal=\"$DETAILS_ID\",destination_app=\"details\",destination_version=\"v2\",destination_service=\"details.default.svc.cluster.local\",destination_canonical_service=\"details\",destination_canonical_revision=\"v2\""
for _ in $(seq 1 100); do
  m=$(curl -s --max-time 5 "http://127.0.0.1:$details_ADMIN/metrics")
  grep -qF "$relabelled_in" <<<"$m" && break
  sleep 0.05
done
expect_contains "$m" "istio_requests_total{reporter=\"destination\",source_workload=\"sleep\",source_canonical_service=\"sleep\",source_canonical_revision=\"latest\",source_workload_namespace=\"default\",source_principal=\"$SLEEP_ID\",source_app=\"sleep\",$relabelled_in" "details reports its new version label without a restart"
m=$(curl -s --max-time 5 "http://127.0.0.1:$sleep_ADMIN/metrics")
expect_contains "$m" "destination_app=\"details\",destination_version=\"v2\",destination_service=\"127.0.0.1\",destination_canonical_service=\"details\",destination_canonical_revision=\"v2\"" "sleep learns details' new version through the metadata exchange"

# The control plane: Istio's pilot_* names.
cm=$(curl -s --max-time 5 "http://$CP_METRICS/metrics")
expect_contains "$cm" $'\npilot_xds 2\n' "pilot_xds: two proxies connected"
pushes=$(sed -nE 's/^pilot_xds_pushes\{type="snapshot"\} ([0-9]+)$/\1/p' <<<"$cm")
[ -n "$pushes" ] && [ "$pushes" -ge 2 ] || fail "pilot_xds_pushes{type=\"snapshot\"}: '$pushes'"
pass "pilot_xds_pushes counts snapshots sent ($pushes)"
expect_contains "$cm" '# TYPE pilot_proxy_convergence_time histogram' "pilot_proxy_convergence_time is a histogram"
expect_contains "$cm" 'pilot_proxy_convergence_time_bucket{le="0.1"}' "pilot_proxy_convergence_time has Istio's buckets (seconds)"
expect_contains "$cm" 'pilot_proxy_convergence_time_bucket{le="30"}' "pilot_proxy_convergence_time: last bucket 30 s"
expect_not_contains "$cm" 'meshguard_own_certificate_expiry_seconds' "the old own-certificate name is gone"
expiry=$(sed -nE 's/^meshguard_own_certificate_expiry_timestamp_seconds\{identity="control"\} ([0-9]+)$/\1/p' <<<"$cm")
[ -n "$expiry" ] && [ "$expiry" -gt "$(date +%s)" ] || fail "meshguard_own_certificate_expiry_timestamp_seconds: '$expiry'"
pass "meshguard_own_certificate_expiry_timestamp_seconds is a future unix time"
echo "PASS: metrics"
