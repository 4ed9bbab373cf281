# shellcheck shell=bash
# bench/dataplane/gateway.sh — section "gateway" of the data-plane benchmark (issue 20), sourced by
# run.sh (its helpers: start, stop_pid, forget, run_rate, run_closed, record_cpu, median, …):
#   gw_meshguard  h2load (HTTPS, SNI + Host shop.example.com) → meshguard-proxy in gateway mode
#                 (Gateway: HTTPS SIMPLE, credentialsDir certificate; VirtualService host +
#                 prefix /details/ → a MESH_INTERNAL STATIC ServiceEntry with subjectAltNames)
#                 ══mTLS══► server meshguard-proxy (STRICT, ALLOW path + principal, access log) → app
#   gw_haproxy    the same client → HAProxy terminating TLS with the same certificate, ACLs on
#                 host + path prefix (else 404), X-Forwarded-For/-Proto and X-Request-Id as the
#                 gateway sets them, log ══mTLS══► (ssl crt + ca-file verify required) server
#                 HAProxy (the h1 section's: verify required, ACL path + client identity) → app
# Both gateways present the bench client SVID towards the server hop, so the server hops are the h1
# section's, policies unchanged. The load keeps its connections open (keep-alive): the TLS
# handshakes at the edge happen once per connection, before the measured interval.

GW_HOST=shop.example.com

# The edge certificate (its own CA, not the mesh's): credentialsDir/shop-cert/{tls.crt,tls.key}
# for the gateway, the same pair in one file for HAProxy.
make_gw_edge_cert() {
  local dir="$WORK/gw-creds/shop-cert"
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/edge-ca.key" \
    -out "$WORK/edge-ca.pem" -subj "/CN=bench edge CA" -days 2 2>/dev/null || die "edge CA"
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$GW_HOST" >"$WORK/edge.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/tls.key" \
    -out "$WORK/edge.csr" -subj "/CN=$GW_HOST" 2>/dev/null || die "edge key"
  openssl x509 -req -in "$WORK/edge.csr" -CA "$WORK/edge-ca.pem" -CAkey "$WORK/edge-ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$WORK/edge.ext" -out "$dir/tls.crt" 2>/dev/null || die "edge cert"
  (umask 077 && cat "$dir/tls.crt" "$dir/tls.key" >"$WORK/edge-haproxy.pem")
}

# start_mg_gateway REP: the meshguard gateway in front of the server proxy MG_PORT[gw.server].
start_mg_gateway() {
  local r="$1" dir="$WORK/gw-policies$1"
  mkdir -p "$dir"
  cat >"$dir/routes.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shop, namespace: bench}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 0, name: https, protocol: HTTPS}
    hosts: [$GW_HOST]
    tls: {mode: SIMPLE, credentialName: shop-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: bench}
spec:
  hosts: [$GW_HOST]
  gateways: [bench/shop]
  http:
  - match: [{uri: {prefix: /details/}}]
    route: [{destination: {host: server.internal, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: server, namespace: bench}
spec:
  hosts: [server.internal]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${MG_PORT[gw.server]}}}]
  subjectAltNames: ["$SERVER_ID"]
YAML
  cat >"$WORK/mg-gateway.yaml" <<YAML
workload: {name: client, namespace: bench, serviceAccount: client, labels: {istio: ingressgateway}, address: 127.0.0.1}
tls: {certChain: $WORK/client/cert-chain.pem, key: $WORK/client/key.pem, trustBundle: $WORK/client/root-cert.pem}
policyDir: $dir
gateway: {credentialsDir: $WORK/gw-creds}
accessLog: $WORK/mg-gateway-access.log
workers: $THREADS
admin: {port: 0}
YAML
  start "mggw$r" "$PROXY_BIN" --config "$WORK/mg-gateway.yaml"
  MG_PID[gw.gateway]=$LAST_PID
  MG_PORT[gw.gateway]=$(port_of "$WORK/mggw$r.out" '^listening gateway\[0\] ')
}

# start_hap_gateway REP: HAProxy doing the same routing in front of HAP_PORT[gw.server].
start_hap_gateway() {
  local r="$1"
  HAP_PORT[gw.gateway]=$(free_port)
  { hap_proxy_preamble ssl-default-server-options; cat <<CFG; } >"$WORK/haproxy-gateway.cfg"
frontend https_in
  bind 127.0.0.1:${HAP_PORT[gw.gateway]} ssl crt $WORK/edge-haproxy.pem alpn h2,http/1.1
  acl shop_host hdr(host),field(1,:) -i $GW_HOST
  acl details_path path_beg /details/
  http-request deny deny_status 404 unless shop_host details_path
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  unique-id-format %[uuid()]
  http-request set-header X-Request-Id %[unique-id] unless { req.hdr(x-request-id) -m found }
  default_backend mesh
backend mesh
  server upstream 127.0.0.1:${HAP_PORT[gw.server]} ssl crt $WORK/client/haproxy.pem ca-file $WORK/client/root-cert.pem verify required
CFG
  start "hagw$r" haproxy -db -f "$WORK/haproxy-gateway.cfg"
  HAP_PID[gw.gateway]=$LAST_PID
  wait_listen "${HAP_PORT[gw.gateway]}"
}

# gw_status TOPOLOGY HOST PATH: the status an HTTPS client trusting only the edge CA gets.
gw_status() {
  local port
  case "$1" in gw_meshguard) port=${MG_PORT[gw.gateway]} ;; gw_haproxy) port=${HAP_PORT[gw.gateway]} ;; esac
  http_code --cacert "$WORK/edge-ca.pem" --resolve "$2:$port:127.0.0.1" "https://$2:$port$3"
}

check_gateways() {
  local topo c
  for topo in gw_meshguard gw_haproxy; do
    c=$(gw_status "$topo" "$GW_HOST" /details/1); [ "$c" = 200 ] || die "$topo: https://$GW_HOST/details/1 → $c"
    c=$(gw_status "$topo" "$GW_HOST" /headers); [ "$c" = 404 ] || die "$topo: unrouted path /headers → $c, want 404"
    c=$(gw_status "$topo" other.example.com /details/1); [ "$c" = 000 ] || [ "$c" = 404 ] || die "$topo: other host → $c, want 404 or no handshake"
  done
  # The same request with another Host but the right SNI: the route is chosen by Host.
  c=$(http_code --cacert "$WORK/edge-ca.pem" --resolve "$GW_HOST:${MG_PORT[gw.gateway]}:127.0.0.1" -H 'host: other.example.com' \
    "https://$GW_HOST:${MG_PORT[gw.gateway]}/details/1"); [ "$c" = 404 ] || die "gw_meshguard: Host other.example.com → $c, want 404"
  c=$(http_code --cacert "$WORK/edge-ca.pem" --resolve "$GW_HOST:${HAP_PORT[gw.gateway]}:127.0.0.1" -H 'host: other.example.com' \
    "https://$GW_HOST:${HAP_PORT[gw.gateway]}/details/1"); [ "$c" = 404 ] || die "gw_haproxy: Host other.example.com → $c, want 404"
  grep -q '"/details/1"' "$WORK/mg-servergw-access.log" || die "meshguard server access log has no /details/1 line"
  grep -q '"/details/1"' "$WORK/mg-gateway-access.log" || die "meshguard gateway access log has no /details/1 line"
  grep -q 'GET [^ ]*/details/1 HTTP' "$WORK/hagw$REP.out" || die "haproxy gateway log has no /details/1 line"
  log "gateway checks passed: 200 routed, 404 unrouted path and unknown Host, both hops logged"
}

run_gateway_section() {
  local topos=(gw_meshguard gw_haproxy) i topo pid
  make_gw_edge_cert
  for REP in $(seq 1 "$REPS"); do
    log "gateway repetition $REP/$REPS: app, meshguard gateway + server proxy, haproxy gateway + server haproxy"
    start "app-gw$REP" "$APP_BIN" --listen 127.0.0.1:0
    APP_PID=$LAST_PID
    APP=$(port_of "$WORK/app-gw$REP.out" '^listening on 127\.0\.0\.1:[0-9]+$')
    start_mg_server gw "$REP" "$WORK/policies" "$APP" http
    start_mg_gateway "$REP"
    start_hap_server gw "$REP" "$APP" 0
    start_hap_gateway "$REP"
    check_gateways
    sleep 1
    for i in 0 1; do
      topo=${topos[$(((i + REP - 1) % 2))]}
      run_closed "$topo" max "$WRK_CONNS" 1 "$WRK_SECONDS"
      run_rate "$topo"
    done
    for pid in "${MG_PID[gw.gateway]}" "${MG_PID[gw.server]}" "${HAP_PID[gw.gateway]}" "${HAP_PID[gw.server]}" "$APP_PID"; do
      stop_pid "$pid"
      forget "$pid"
    done
  done
}

print_gateway() {
  local t p
  echo "### Ingress gateway vs HAProxy (section gateway, issue 20)"
  echo
  echo "HTTPS client (h2load --h1, TLS 1.3, keep-alive: one handshake per connection, before the measured interval) → gateway ══mTLS══► server hop → app."
  echo
  echo "| path | max rps (closed loop, $WRK_CONNS connections) | p50 at $RATE rps (µs) | p99 (µs) | failed (max / rate) |"
  echo "|---|---|---|---|---|"
  for t in gw_meshguard gw_haproxy; do
    echo "| $t | $(fmt "$(median "$t.max_rps")") ($(all_of "$t.max_rps")) | $(fmt "$(median "$t.p50_us")") ($(all_of "$t.p50_us")) | $(fmt "$(median "$t.p99_us")") ($(all_of "$t.p99_us")) | $(all_of "$t.max_failed") / $(all_of "$t.rate_failed") |"
  done
  echo
  echo "| CPU µs per request (utime+stime / requests) | at $RATE rps ($RATE_CLIENTS connections) | of which user | at max rps | of which user |"
  echo "|---|---|---|---|---|"
  for row in gw_meshguard:gateway gw_meshguard:mg_server gw_meshguard:app gw_haproxy:gateway gw_haproxy:hap_server gw_haproxy:app; do
    t=${row%%:*} p=${row#*:}
    echo "| $t: $p | $(fmt "$(median "$t.rate.cpu_us.$p")" 1) ($(all_of "$t.rate.cpu_us.$p")) | $(fmt "$(median "$t.rate.usr_us.$p")" 1) | $(fmt "$(median "$t.max.cpu_us.$p")" 1) ($(all_of "$t.max.cpu_us.$p")) | $(fmt "$(median "$t.max.usr_us.$p")" 1) |"
  done
  echo
  echo "Ratios meshguard/haproxy: gateway hop CPU per request at $RATE rps $(ratio "$(median gw_meshguard.rate.cpu_us.gateway)" "$(median gw_haproxy.rate.cpu_us.gateway)")," \
    "at max rps $(ratio "$(median gw_meshguard.max.cpu_us.gateway)" "$(median gw_haproxy.max.cpu_us.gateway)");" \
    "server hop at $RATE rps $(ratio "$(median gw_meshguard.rate.cpu_us.mg_server)" "$(median gw_haproxy.rate.cpu_us.hap_server)")," \
    "at max rps $(ratio "$(median gw_meshguard.max.cpu_us.mg_server)" "$(median gw_haproxy.max.cpu_us.hap_server)");" \
    "max rps $(ratio "$(median gw_meshguard.max_rps)" "$(median gw_haproxy.max_rps)")."
  echo
}
