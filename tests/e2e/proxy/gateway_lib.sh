# Helpers of the gateway end-to-end scripts (issue 20): a mesh CA with SVIDs for the ingress
# gateway, two backends (details, ratings) and another workload; the backends behind STRICT mTLS
# proxies; edge certificates from a CA of their own; the gateway proxy itself.

# make_gateway_mesh: SVIDs in $WORK; GATEWAY_ID, DETAILS_ID, RATINGS_ID set.
make_gateway_mesh() {
  GATEWAY_ID=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account
  DETAILS_ID=spiffe://cluster.local/ns/default/sa/details
  RATINGS_ID=spiffe://cluster.local/ns/default/sa/ratings
  make_ca "$WORK" mesh
  make_svid "$WORK" gateway mesh "$GATEWAY_ID"
  make_svid "$WORK" details mesh "$DETAILS_ID"
  make_svid "$WORK" ratings mesh "$RATINGS_ID"
  make_svid "$WORK" other mesh spiffe://cluster.local/ns/default/sa/other
  mkdir -p "$WORK/gw-policies" "$WORK/creds" "$WORK/details-policies" "$WORK/ratings-policies"
}

# backend NAME: app NAME behind proxy NAME-proxy (STRICT mTLS); sets ${NAME^^}_IN to its port.
backend() {
  local name="$1" app var
  start_app "$name" app
  run_proxy "$name-proxy" "${name^^}_IN=inbound[0]" <<YAML
workload: {name: $name, namespace: default, serviceAccount: $name, labels: {app: $name}}
$(tls_yaml "$name")
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app, protocol: http, mtlsMode: STRICT}
accessLog: $WORK/$name-access.log
policyDir: $WORK/$name-policies
YAML
}

# start_backends: details (allows only the gateway's principal) and ratings (no policy).
start_backends() {
  cat >"$WORK/details-policies/only-gateway.yaml" <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-gateway, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["${GATEWAY_ID#spiffe://}"]}}]}]
YAML
  backend details
  backend ratings
}

# make_edge_cert NAME CA HOST: credentialsDir/NAME/{tls.crt,tls.key} for HOST (DNS SAN) from the
# edge CA CA (made here: $WORK/CA-ca.pem is what clients trust). Written atomically (rename).
make_edge_cert() {
  local name="$1" ca="$2" host="$3" dir="$WORK/creds/$1"
  make_ca "$WORK" "$ca"
  mkdir -p "$dir"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$host" >"$WORK/$ca-edge.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/.tls.key.tmp" \
    -out "$WORK/$ca-edge.csr" -subj "/CN=$host" 2>/dev/null
  openssl x509 -req -in "$WORK/$ca-edge.csr" -CA "$WORK/$ca-ca.pem" -CAkey "$WORK/$ca-ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 1 -extfile "$WORK/$ca-edge.ext" -out "$dir/.tls.crt.tmp" 2>/dev/null
  mv -f "$dir/.tls.key.tmp" "$dir/tls.key"
  mv -f "$dir/.tls.crt.tmp" "$dir/tls.crt"
}

# free_port: a port nothing listens on now (for a Gateway whose servers share a port: port 0
# gives each server its own listener).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# gateway_routes_yaml: the Gateway public (HTTPS *.example.com + HTTP *, both port 0), the Gateway
# partner (two HTTPS servers sharing $SNI_PORT: api.partner.test with partner-cert, *.example.com
# with example-cert), VirtualServices shop.example.com (/details → details, /anything → ratings),
# ratings.example.com and api.partner.test, and the MESH_INTERNAL ServiceEntries with the
# backends' proxies as endpoints (impostor.internal: details' proxy expected to be ratings).
gateway_routes_yaml() {
  cat <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 0, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert}
  - port: {number: 0, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: partner, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: $SNI_PORT, name: https-partner, protocol: HTTPS}
    hosts: [api.partner.test]
    tls: {mode: SIMPLE, credentialName: partner-cert}
  - port: {number: $SNI_PORT, name: https-shop, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: partner, namespace: default}
spec:
  hosts: [api.partner.test]
  gateways: [istio-system/partner]
  http:
  - route: [{destination: {host: ratings.internal}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [istio-system/public, istio-system/partner]
  http:
  - match: [{uri: {prefix: /details/}}]
    route: [{destination: {host: details.internal, port: {number: 9080}}}]
  - match: [{uri: {prefix: /anything/}}]
    route: [{destination: {host: ratings.internal}}]
  - match: [{uri: {prefix: /wrong/}}]
    route: [{destination: {host: impostor.internal}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.example.com]
  gateways: [istio-system/public]
  http:
  - route: [{destination: {host: ratings.internal}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: details, namespace: default}
spec:
  hosts: [details.internal]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $DETAILS_IN}}]
  subjectAltNames: ["$DETAILS_ID"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.internal]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $RATINGS_IN}}]
  subjectAltNames: ["$RATINGS_ID"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: impostor, namespace: default}
spec:
  hosts: [impostor.internal]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $DETAILS_IN}}]   # details' proxy, which is not ratings
  subjectAltNames: ["$RATINGS_ID"]
YAML
}

# run_gateway [YAML LINES]: the ingress gateway (labels istio: ingressgateway) on gw-policies and
# creds; HTTPS, HTTP and SNI get the ports of gateway[0], [1] and [2], ADMIN_GW its admin port.
run_gateway() {
  run_proxy gw HTTPS='gateway[0]' HTTP='gateway[1]' SNI='gateway[2]' ADMIN_GW=admin <<YAML
workload: {name: ingressgateway, namespace: istio-system, serviceAccount: istio-ingressgateway-service-account,
           labels: {istio: ingressgateway}, address: 127.0.0.1}
$(tls_yaml gateway)
admin: {port: 0}
accessLog: $WORK/gw-access.log
policyDir: $WORK/gw-policies
gateway: {credentialsDir: $WORK/creds${1:+, $1}}
YAML
}

# compact: the sample app's indented JSON on one line, without the spaces between tokens
# ('{"id":7,"headers":{"x-forwarded-proto":"https",...}}'); spaces inside values stay.
compact() { tr -d '\n' | sed -E 's/": /":/g; s/[[:space:]]+"/"/g; s/[[:space:]]+[}]/}/g'; }

# edge_curl HOST PORT PATH CA [curl args]: an HTTPS request to HOST (SNI and Host) on the gateway,
# trusting only the edge CA CA; prints the body, compacted.
edge_curl() {
  local host="$1" port="$2" path="$3" ca="$4"
  shift 4
  { curl -s --max-time 10 --cacert "$WORK/$ca-ca.pem" --resolve "$host:$port:127.0.0.1" "$@" \
    "https://$host:$port$path" || true; } | compact
}

# edge_status HOST PORT PATH CA [curl args]: the same, its status (000: no HTTP answer).
edge_status() {
  local host="$1" port="$2" path="$3" ca="$4"
  shift 4
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$WORK/$ca-ca.pem" \
    --resolve "$host:$port:127.0.0.1" "$@" "https://$host:$port$path" || true
}
