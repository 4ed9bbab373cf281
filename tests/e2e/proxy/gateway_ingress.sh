#!/usr/bin/env bash
# An ingress gateway (issue 20): meshguard-proxy with `gateway:` and labels istio: ingressgateway
# listens where the Gateway documents say (HTTPS SIMPLE with the certificate its SNI picks from
# credentialsDir, plain HTTP), routes by VirtualService host and path to two services behind their
# own STRICT mTLS proxies, found through MESH_INTERNAL STATIC ServiceEntries (subjectAltNames =
# secure naming). A backend that allows only the gateway's principal is reached; the backends see
# X-Forwarded-For / -Proto / X-Request-Id as Envoy sets them; an unknown host is 404; a certificate
# replaced on disk is shown by the next handshake.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"
source "$(dirname "$0")/gateway_lib.sh"

make_gateway_mesh
start_backends

# The edge: a certificate for *.example.com from an edge CA of its own (not the mesh's).
make_edge_cert example-cert edge1 '*.example.com'
make_edge_cert partner-cert partner 'api.partner.test'
SNI_PORT=$(free_port)
cat >"$WORK/gw-policies/routes.yaml" <<YAML
$(gateway_routes_yaml)
YAML
run_gateway ""

# 1. HTTPS by host and path to two services; the client trusts only the gateway's public CA.
out=$(edge_curl shop.example.com "$HTTPS" /details/7 edge1)
expect_contains "$out" '"id":7' "https://shop.example.com/details/7 reaches details"
out=$(edge_curl shop.example.com "$HTTPS" /anything/x edge1)
expect_contains "$out" '"path":"/anything/x"' "https://shop.example.com/anything/x reaches ratings"
out=$(edge_curl ratings.example.com "$HTTPS" /anything/r edge1)
expect_contains "$out" '"path":"/anything/r"' "https://ratings.example.com/anything/r reaches ratings by host"
expect_contains "$(cat "$WORK/ratings.out")" "/anything/r" "ratings' app served it"
expect_eq "$(edge_status shop.example.com "$HTTPS" /details/1 edge1 --http2)$(curl -s -o /dev/null -w ' %{http_version}' \
  --max-time 10 --http2 --cacert "$WORK/edge1-ca.pem" --resolve "shop.example.com:$HTTPS:127.0.0.1" \
  "https://shop.example.com:$HTTPS/details/1")" "200 2" "HTTP/2 over ALPN h2 from the client"
expect_eq "$(edge_status shop.example.com "$HTTPS" /details/1 edge1 --http1.1)" 200 "HTTP/1.1 from the client"

# SNI picks the certificate among the servers sharing a listener; no SNI: the first server's; an
# SNI no server host matches: refused.
expect_eq "$SNI" "$SNI_PORT" "servers sharing a port share one listener (gateway[2])"
expect_contains "$(edge_curl api.partner.test "$SNI" /anything/p partner)" '"path":"/anything/p"' \
  "SNI api.partner.test: partner-cert (its own CA), routed to ratings"
expect_contains "$(edge_curl shop.example.com "$SNI" /details/3 edge1)" '"id":3' \
  "SNI shop.example.com on the same listener: example-cert, routed to details"
subject() { openssl s_client -connect "127.0.0.1:$SNI" "$@" </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null || true; }
expect_contains "$(subject -noservername)" "api.partner.test" "no SNI: the listener's first server's certificate"
expect_eq "$(edge_status unknown.test "$SNI" / partner -k)" 000 "an SNI no server host matches: no handshake"

# 2. Edge headers as Envoy sets them; the backend's proxy saw the gateway's SVID (XFCC URI).
out=$(edge_curl shop.example.com "$HTTPS" /anything/h edge1 -H 'X-Forwarded-For: 198.51.100.4')
expect_contains "$out" '"x-forwarded-for":"198.51.100.4, 127.0.0.1"' "X-Forwarded-For: the peer appended"
expect_contains "$out" '"x-forwarded-proto":"https"' "X-Forwarded-Proto: https"
expect_contains "$out" "URI=$GATEWAY_ID" "the backend's proxy verified the gateway's SVID"
rid=$(sed -nE 's/.*"x-request-id":"([0-9a-f-]{36})".*/\1/p' <<<"$out")
expect_eq "${#rid}" 36 "X-Request-Id made when absent ($rid)"
out=$(edge_curl shop.example.com "$HTTPS" /anything/h edge1 -H 'X-Request-Id: client-id-1')
expect_contains "$out" '"x-request-id":"client-id-1"' "X-Request-Id kept when the client sent one"
out=$(curl -s --max-time 10 -H 'Host: shop.example.com' "http://127.0.0.1:$HTTP/anything/p" | compact)
expect_contains "$out" '"x-forwarded-proto":"http"' "plain HTTP listener: X-Forwarded-Proto: http"

# Secure naming: an endpoint that presents another SVID than the ServiceEntry's subjectAltNames.
expect_eq "$(edge_status shop.example.com "$HTTPS" /wrong/1 edge1)" 503 "a backend with the wrong SVID → 503, nothing sent"
expect_not_contains "$(cat "$WORK/details.out")" "/wrong/1" "the impostor's app never saw the request"
expect_contains "$(grep connection_refused "$WORK/gw-access.log")" "is not one of [$RATINGS_ID]" \
  "the refusal names the identity expected (secure naming)"

# 3. Unknown host, unrouted path: 404 (Envoy's NR); a backend allowing only the gateway.
expect_eq "$(edge_status nowhere.example.com "$HTTPS" / edge1)" 404 "an unknown host → 404"
expect_eq "$(edge_status shop.example.com "$HTTPS" /elsewhere edge1)" 404 "no route for the path → 404"
expect_eq "$(http_status "http://127.0.0.1:$HTTP/details/1" -H 'Host: other.test')" 404 "plain HTTP, unknown host → 404"
# details' proxy allows only the gateway's principal: a mesh client with another SVID is refused
# (-k: this client does not check the server; the server checks it).
expect_eq "$(curl -s -o /dev/null -w "%{http_code}" --max-time 10 -k \
  --cert "$WORK/other.pem" --key "$WORK/other.key" "https://127.0.0.1:$DETAILS_IN/details/1" || true)" 403 \
  "details' proxy refuses another workload (only the gateway's principal is allowed)"

# Routes follow a publish without a restart: a VirtualService added for new.example.com.
expect_eq "$(edge_status new.example.com "$HTTPS" /details/2 edge1)" 404 "new.example.com: no VirtualService yet → 404"
put_file "$WORK/gw-policies" new.yaml <<YAML
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: new, namespace: default}
spec:
  hosts: [new.example.com]
  gateways: [istio-system/public]
  http: [{route: [{destination: {host: details.internal, port: {number: 9080}}}]}]
YAML
for _ in $(seq 1 100); do
  [ "$(edge_status new.example.com "$HTTPS" /details/2 edge1)" = 200 ] && break
  sleep 0.1
done
expect_eq "$(edge_status new.example.com "$HTTPS" /details/2 edge1)" 200 "a VirtualService added to the policyDir routes without a restart"

# 4. The certificate replaced on disk: the next handshake shows it (the old CA no longer verifies).
make_edge_cert example-cert edge2 '*.example.com'
for _ in $(seq 1 100); do
  [ "$(edge_status shop.example.com "$HTTPS" /details/1 edge2)" = 200 ] && break
  sleep 0.1
done
expect_eq "$(edge_status shop.example.com "$HTTPS" /details/1 edge2)" 200 "the replaced certificate is used by new handshakes"
expect_eq "$(edge_status shop.example.com "$HTTPS" /details/1 edge1)" 000 "the old CA no longer verifies the gateway"

log=$(cat "$WORK/gw-access.log")
expect_contains "$log" '"route_not_found"' "the 404 is logged as route_not_found"
echo "PASS gateway_ingress"
