#!/usr/bin/env bash
# bench/dataplane/run.sh — the data-plane benchmark (issue 5): the same request three ways in one
# run, on 127.0.0.1 only, with freshly started processes for every repetition:
#   direct    load → mg-sample-app
#   meshguard load → client meshguard-proxy (outbound http) ══mTLS══► server meshguard-proxy
#             (PeerAuthentication STRICT, AuthorizationPolicy ALLOW path + principal, access log) → app
#   haproxy   load → client haproxy (http, ssl crt + ca-file verify required) ══mTLS══► server
#             haproxy (bind ssl verify required, ACL path + client-certificate identity, log) → app
# Measures max rps (wrk, closed loop), latency at a fixed rate (h2load --rps, open loop),
# CPU µs/request per process (/proc/PID/stat utime+stime deltas / requests), RSS idle and with N
# idle client connections (hold_conns.py), context switches per request (/proc/PID/task/*/status) and,
# where perf can count the raw_syscalls tracepoint, system calls per request. Prints medians as
# markdown tables. That is section "h1"; two more sections reuse the same helpers:
#   h2   (issue 15) HTTP/2 end to end: h2load (h2c prior knowledge) → direct / meshguard pair
#        (outbound and inbound protocol http2, h2 over mTLS between the proxies) / HAProxy pair
#        (proto h2 front, alpn h2 between, proto h2 to the app) → an h2c app (an HAProxy frontend
#        answering with `http-request return`: the sample app speaks HTTP/1.1 only). Requests/s on
#        one connection with 1 and with 100 concurrent streams, latency at RATE, CPU per request per
#        hop, RSS per idle HTTP/2 connection (H2_IDLE_CONNS held).
#   opa  (issue 14) three meshguard pairs in front of the sample app, the same requests (a JWT in
#        Authorization) at RATE: no OPA; an in-proxy OPAPolicy (an Envoy-primer-style policy:
#        io.jwt.decode_verify, role, method, glob on the path); the same OPAPolicy behind a CUSTOM
#        AuthorizationPolicy over localhost gRPC to mg-bench-opa-ext-authz (same engine).
#   byname (issue 16) one server proxy, two client proxies in front of it, the same requests at
#        RATE: a hand-written route (destination + identities) and the outbound-by-name listener
#        (Host server.bench:9080 → the registry's Service + ServiceEndpoints in the client's
#        policyDir → balancer → the same server). CPU per request per client hop, latency.
#   gateway (issue 20, bench/dataplane/gateway.sh) HTTPS ingress: h2load over TLS (keep-alive) →
#        meshguard-proxy in gateway mode (Gateway HTTPS SIMPLE, VirtualService host + path →
#        ServiceEntry) ══mTLS══► server proxy → app, beside HAProxy terminating TLS with the same
#        certificate, routing by host + path ══mTLS══► server HAProxy → app. Max rps (closed loop,
#        WRK_CONNS connections, WRK_SECONDS), latency at RATE, CPU per request per hop.
#
#   counts (issues 13 and 15, bench/dataplane/count.sh; not run unless named) system calls and
#        user-space instructions per request per hop — counted (perf tracepoints, callgrind), not
#        timed — for the h1 chain both ways (HTTP/2 and HTTP/1.1 between the proxies) and the h2
#        chain with 100 streams, beside the HAProxy pairs doing the same chains.
#
#   bash bench/dataplane/run.sh [--build DIR] [--reps N] [--out FILE] [--sections h1,h2,opa,byname,gateway,counts]
# Environment knobs (defaults): WRK_CONNS=32 WRK_SECONDS=8 RATE=1000 RATE_CLIENTS=10
#   RATE_SECONDS=10 IDLE_CONNS=9900 THREADS=1 (meshguard workers = haproxy nbthread)
#   H2_SECONDS=8 (each h2load -c1 row) H2_IDLE_CONNS=200
#   H2_UPGRADE=UPGRADE (the h1 section's client proxy: Mesh h2UpgradePolicy — UPGRADE carries the
#   HTTP/1.1 requests as HTTP/2 between the proxies, DO_NOT_UPGRADE keeps them HTTP/1.1 as the
#   HAProxy pair does)
# Needs wrk, h2load (nghttp2-client), haproxy, python3, curl, openssl (scripts/install-deps.sh).
# Installs nothing; every process it starts is stopped by the EXIT trap.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/dataplane"
BUILD="$ROOT/build-bench"
REPS=3
OUT=""
SECTIONS="h1,h2,opa,byname,gateway"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --sections) SECTIONS="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--reps N] [--out FILE] [--sections h1,h2,opa,byname,gateway,counts]" >&2; exit 2 ;;
  esac
done
WRK_CONNS="${WRK_CONNS:-32}"
WRK_SECONDS="${WRK_SECONDS:-8}"
RATE="${RATE:-1000}"
RATE_CLIENTS="${RATE_CLIENTS:-10}"
RATE_SECONDS="${RATE_SECONDS:-10}"
IDLE_CONNS="${IDLE_CONNS:-9900}"
THREADS="${THREADS:-1}"
H2_SECONDS="${H2_SECONDS:-8}"
H2_IDLE_CONNS="${H2_IDLE_CONNS:-200}"
section() { case ",$SECTIONS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for sec in ${SECTIONS//,/ }; do
  case "$sec" in h1 | h2 | opa | byname | gateway | counts) ;; *) echo "unknown section $sec (h1, h2, opa, byname, gateway, counts)" >&2; exit 2 ;; esac
done
for v in REPS WRK_CONNS WRK_SECONDS RATE RATE_CLIENTS RATE_SECONDS IDLE_CONNS THREADS H2_SECONDS H2_IDLE_CONNS; do
  case "${!v}" in '' | *[!0-9]*) echo "$v must be a positive integer" >&2; exit 2 ;; esac
  [ "${!v}" -gt 0 ] || { echo "$v must be positive" >&2; exit 2; }
done
[ "$WRK_SECONDS" -le 60 ] && [ "$RATE_SECONDS" -le 60 ] && [ "$H2_SECONDS" -le 60 ] && [ "$REPS" -le 10 ] && [ "$H2_IDLE_CONNS" -le 5000 ] || { echo "bounds: durations ≤ 60 s, reps ≤ 10" >&2; exit 2; }
[ $((RATE % RATE_CLIENTS)) -eq 0 ] || { echo "RATE must be a multiple of RATE_CLIENTS" >&2; exit 2; }

PROXY_BIN="$BUILD/tools/meshguard-proxy"
CTL_BIN="$BUILD/tools/meshguardctl"
APP_BIN="$BUILD/tools/mg-sample-app"
OPA_AUTHZ_BIN="$BUILD/bench/dataplane/mg-bench-opa-ext-authz"
NEED=("$PROXY_BIN" "$CTL_BIN" "$APP_BIN")
section opa && NEED+=("$OPA_AUTHZ_BIN" "$BUILD/tools/libmeshguard-extauthz-grpc.so")
for b in "${NEED[@]}"; do
  [ -e "$b" ] || { echo "missing $b — build: cmake --build $BUILD --target meshguard-proxy meshguardctl mg-sample-app (opa: mg-bench-opa-ext-authz meshguard-extauthz-grpc)" >&2; exit 1; }
done
for t in wrk h2load haproxy python3 curl openssl ss; do
  command -v "$t" >/dev/null || { echo "missing tool: $t (scripts/install-deps.sh)" >&2; exit 1; }
done

# Idle connections need one descriptor each in the holder and in the server under test, and
# HAProxy refuses to start unless the limit covers 2 × maxconn (+ a few): with this container's
# hard limit of 20,000 that caps every target at 9,900 (the same count for all of them).
ulimit -n "$(ulimit -Hn)"
FD_CAP=$((($(ulimit -n) - 100) / 2 - 50))
if [ "$IDLE_CONNS" -gt "$FD_CAP" ]; then
  echo "note: open-file hard limit $(ulimit -Hn) allows HAProxy maxconn for $FD_CAP idle connections, not $IDLE_CONNS; using $FD_CAP" >&2
  IDLE_CONNS=$FD_CAP
fi
HAP_MAXCONN=$((IDLE_CONNS + 50))

WORK="$(mktemp -d /tmp/mg-bench-dataplane.XXXXXX)"
PIDS=()
CLK_TCK="$(getconf CLK_TCK)"
RESULTS="$WORK/results.tsv" # rep  key  value
: >"$RESULTS"

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# forget PID: a stopped process leaves the cleanup list (its pid may be reused by someone else's).
forget() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ "$rc" -ne 0 ]; then
    echo "run.sh failed (rc $rc); logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  local f
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.err "$WORK"/*.out; do
    [ -s "$f" ] || continue
    echo "--- $f" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# start NAME CMD...: background process, output in $WORK/NAME.{out,err}; pid in $LAST_PID.
start() {
  local name="$1"
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_line FILE REGEX: the first matching line (bounded, WAIT_TRIES × 50 ms: 10 s unless a section
# running processes under valgrind raises it).
WAIT_TRIES=200
wait_line() {
  local line
  for _ in $(seq 1 "$WAIT_TRIES"); do
    line="$(grep -m1 -E "$2" "$1" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    sleep 0.05
  done
  die "timed out waiting for /$2/ in $1"
}
port_of() { wait_line "$1" "$2" | sed -E 's/.*:([0-9]+)$/\1/'; }

# A free port chosen by the kernel, for HAProxy, which cannot report a port-0 bind.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_listen() {
  for _ in $(seq 1 "$WAIT_TRIES"); do
    if ss -ltnH "sport = :$1" | grep -q LISTEN; then return 0; fi
    sleep 0.05
  done
  die "nothing listens on 127.0.0.1:$1"
}

# Context switches of every thread of PID: "voluntary involuntary".
ctx_switches() { cat "/proc/$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
user_ticks() { awk '{ sub(/^.*\) /, ""); print $12 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Anonymous (private heap/stack) part of RSS; the rest is mapped files, mostly shared libraries.
anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
record() { printf '%s\t%s\t%s\n' "$REP" "$1" "$2" >>"$RESULTS"; }
alive() { kill -0 "$1" 2>/dev/null || die "process $2 (pid $1) died"; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true; }

# ---------------------------------------------------------------- identities (meshguardctl)
CLIENT_ID=spiffe://cluster.local/ns/bench/sa/client
SERVER_ID=spiffe://cluster.local/ns/bench/sa/server
# shellcheck disable=SC2034 # read through ${!id_var} below
OTHER_ID=spiffe://cluster.local/ns/bench/sa/other
"$CTL_BIN" ca init --dir "$WORK/ca" --trust-domain cluster.local >/dev/null || die "ca init"
for who in client server other; do
  id_var="${who^^}_ID"
  "$CTL_BIN" cert issue --ca-dir "$WORK/ca" --spiffe-id "${!id_var}" --out "$WORK/$who" >/dev/null || die "cert issue $who"
  # HAProxy wants certificate and key in one file (kept 0600 like the key).
  (umask 077 && cat "$WORK/$who/cert-chain.pem" "$WORK/$who/key.pem" >"$WORK/$who/haproxy.pem")
done
# HAProxy 2.6 has no fetch for a URI SAN; the SVID subject is empty, so the identity check matches
# the SPIFFE ID's bytes inside the verified client certificate (DER, hex), once per connection.
CLIENT_ID_HEX="$(printf '%s' "$CLIENT_ID" | od -An -tx1 | tr -d ' \n')"

mkdir -p "$WORK/policies"
cp "$HERE/policies/allow.yaml" "$HERE/policies/strict.yaml" "$WORK/policies/"

# ---------------------------------------------------------------- processes
declare -A MG_PID MG_PORT HAP_PID HAP_PORT
# Commands the proxies are started under (section counts: valgrind); empty: run as they are.
MG_WRAP=()
HAP_WRAP=()
# start_mg_server TAG REP POLICYDIR APPPORT PROTOCOL: the server meshguard-proxy alone (identity
# server, STRICT from the policies) in front of 127.0.0.1:APPPORT; MG_PID/MG_PORT[TAG.server].
start_mg_server() {
  local tag="$1" r="$2" dir="$3" app="$4" proto="$5"
  cat >"$WORK/mg-server$tag.yaml" <<YAML
workload: {name: server, namespace: bench, serviceAccount: server, labels: {app: server}}
tls: {certChain: $WORK/server/cert-chain.pem, key: $WORK/server/key.pem, trustBundle: $WORK/server/root-cert.pem}
policyDir: $dir
accessLog: $WORK/mg-server$tag-access.log
workers: $THREADS
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app, protocol: $proto}  # STRICT from PeerAuthentication
admin: {port: 0}
limits: {headerTimeoutMs: 180000, maxConnections: $((IDLE_CONNS + 100))}
YAML
  start "mgs$tag$r" "${MG_WRAP[@]}" "$PROXY_BIN" --config "$WORK/mg-server$tag.yaml"
  MG_PID[$tag.server]=$LAST_PID
  MG_PORT[$tag.server]=$(port_of "$WORK/mgs$tag$r.out" '^listening inbound\[0\] ')
}

# start_mg_pair TAG REP POLICYDIR APPPORT PROTOCOL: a client and a server meshguard-proxy in front
# of 127.0.0.1:APPPORT (PROTOCOL on both the outbound and the inbound entry); pids and ports in
# MG_PID[TAG.client|TAG.server] and MG_PORT[...]. TAG "" is the h1 section's pair.
start_mg_pair() {
  local tag="$1" r="$2" proto="$5"
  start_mg_server "$@"

  # The h1 pair's client: how HTTP/1.1 travels between the proxies (H2_UPGRADE; another pair's
  # client: MG_H2_UPGRADE, UPGRADE unless set).
  local client_policies="" upgrade="${MG_H2_UPGRADE:-UPGRADE}"
  [ -z "$tag" ] && upgrade="${H2_UPGRADE:-UPGRADE}"
  if [ "$upgrade" != UPGRADE ]; then
    mkdir -p "$WORK/client-mesh$tag"
    printf 'apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {h2UpgradePolicy: %s}\n' \
      "$upgrade" >"$WORK/client-mesh$tag/mesh.yaml"
    client_policies="policyDir: $WORK/client-mesh$tag"
  fi
  cat >"$WORK/mg-client$tag.yaml" <<YAML
workload: {name: client, namespace: bench, serviceAccount: client, labels: {app: client}}
tls: {certChain: $WORK/client/cert-chain.pem, key: $WORK/client/key.pem, trustBundle: $WORK/client/root-cert.pem}
$client_policies
accessLog: $WORK/mg-client$tag-access.log
workers: $THREADS
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:${MG_PORT[$tag.server]}", protocol: $proto, identities: ["$SERVER_ID"]}
admin: {port: 0}
limits: {headerTimeoutMs: 180000, maxConnections: $((IDLE_CONNS + 100))}
YAML
  start "mgc$tag$r" "${MG_WRAP[@]}" "$PROXY_BIN" --config "$WORK/mg-client$tag.yaml"
  MG_PID[$tag.client]=$LAST_PID
  MG_PORT[$tag.client]=$(port_of "$WORK/mgc$tag$r.out" '^listening outbound\[0\] ')
}

# hap_proxy_preamble SSL_OPTIONS: the global and defaults sections every HAProxy proxy of this
# bench shares (TLS 1.3 only on the side SSL_OPTIONS names: ssl-default-bind-options for a server
# hop, ssl-default-server-options for a client hop or a gateway).
hap_proxy_preamble() {
  cat <<CFG
global
  maxconn $HAP_MAXCONN
  nbthread $THREADS
  log stdout format raw local0 info
  $1 ssl-min-ver TLSv1.3
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 180s
  timeout server 60s
  timeout http-request 180s
  timeout http-keep-alive 300s
CFG
}

# start_hap_server TAG REP APPPORT H2: the server HAProxy alone (bind ssl verify required, ACL
# path + the client identity, log) in front of 127.0.0.1:APPPORT; HAP_PID/HAP_PORT[TAG.server].
start_hap_server() {
  local tag="$1" r="$2" app="$3" h2="$4" alpn="" back=""
  [ "$h2" = 1 ] && alpn=" alpn h2" back=" proto h2"
  HAP_PORT[$tag.server]=$(free_port)
  { hap_proxy_preamble ssl-default-bind-options; cat <<CFG; } >"$WORK/haproxy-server$tag.cfg"
frontend mtls_in
  bind 127.0.0.1:${HAP_PORT[$tag.server]} ssl crt $WORK/server/haproxy.pem ca-file $WORK/server/root-cert.pem verify required$alpn
  tcp-request session set-var(sess.principal_ok) bool(1) if { ssl_c_der,hex -m sub -i $CLIENT_ID_HEX }
  acl principal_ok var(sess.principal_ok) -m bool
  acl allowed_path path_beg /details/
  acl allowed_path path /ip
  http-request deny deny_status 403 unless METH_GET principal_ok allowed_path
  default_backend app
backend app
  server app 127.0.0.1:$app$back
CFG
  start "has$tag$r" "${HAP_WRAP[@]}" haproxy -db -f "$WORK/haproxy-server$tag.cfg"
  HAP_PID[$tag.server]=$LAST_PID
  wait_listen "${HAP_PORT[$tag.server]}"
}

# start_hap_pair TAG REP APPPORT H2: the HAProxy pair; H2=1 speaks HTTP/2 on every leg (h2c prior
# knowledge in front, ALPN h2 between the two, proto h2 to the app).
start_hap_pair() {
  local tag="$1" r="$2" h2="$4" front="" alpn=""
  [ "$h2" = 1 ] && front=" proto h2" alpn=" alpn h2"
  start_hap_server "$@"

  HAP_PORT[$tag.client]=$(free_port)
  { hap_proxy_preamble ssl-default-server-options; cat <<CFG; } >"$WORK/haproxy-client$tag.cfg"
frontend plain_out
  bind 127.0.0.1:${HAP_PORT[$tag.client]}$front
  default_backend mesh
backend mesh
  server upstream 127.0.0.1:${HAP_PORT[$tag.server]} ssl crt $WORK/client/haproxy.pem ca-file $WORK/client/root-cert.pem verify required$alpn
CFG
  start "hac$tag$r" "${HAP_WRAP[@]}" haproxy -db -f "$WORK/haproxy-client$tag.cfg"
  HAP_PID[$tag.client]=$LAST_PID
  wait_listen "${HAP_PORT[$tag.client]}"
}

start_all() {
  local r="$1"
  start "app$r" "$APP_BIN" --listen 127.0.0.1:0
  APP_PID=$LAST_PID
  APP=$(port_of "$WORK/app$r.out" '^listening on 127\.0\.0\.1:[0-9]+$')
  start_mg_pair "" "$r" "$WORK/policies" "$APP" http
  MGS_PID=${MG_PID[.server]} MGS=${MG_PORT[.server]} MGC_PID=${MG_PID[.client]} MGC=${MG_PORT[.client]}
  start_hap_pair "" "$r" "$APP" 0
  HAS_PID=${HAP_PID[.server]} HAS=${HAP_PORT[.server]} HAC_PID=${HAP_PID[.client]} HAC=${HAP_PORT[.client]}
}

stop_all() {
  local pid
  for pid in "$HAC_PID" "$HAS_PID" "$MGC_PID" "$MGS_PID" "$APP_PID"; do
    stop_pid "$pid"
    forget "$pid"
  done
}

# Every topology must answer 200 on the allowed path and refuse what the policy refuses.
check_topologies() {
  local full="$1" c
  c=$(http_code "http://127.0.0.1:$APP/details/1"); [ "$c" = 200 ] || die "direct: /details/1 → $c"
  c=$(http_code "http://127.0.0.1:$MGC/details/1"); [ "$c" = 200 ] || die "meshguard pair: /details/1 → $c"
  c=$(http_code "http://127.0.0.1:$HAC/details/1"); [ "$c" = 200 ] || die "haproxy pair: /details/1 → $c"
  [ "$full" = 1 ] || return 0
  c=$(http_code "http://127.0.0.1:$MGC/headers"); [ "$c" = 403 ] || die "meshguard pair: /headers (path not allowed) → $c, want 403"
  c=$(http_code "http://127.0.0.1:$HAC/headers"); [ "$c" = 403 ] || die "haproxy pair: /headers (path not allowed) → $c, want 403"
  local tls=(-k --cert "$WORK/other/cert-chain.pem" --key "$WORK/other/key.pem")
  c=$(http_code "${tls[@]}" "https://127.0.0.1:$MGS/details/1"); [ "$c" = 403 ] || die "meshguard server: wrong principal → $c, want 403"
  c=$(http_code "${tls[@]}" "https://127.0.0.1:$HAS/details/1"); [ "$c" = 403 ] || die "haproxy server: wrong principal → $c, want 403"
  tls=(-k --cert "$WORK/client/cert-chain.pem" --key "$WORK/client/key.pem")
  c=$(http_code "${tls[@]}" "https://127.0.0.1:$MGS/details/1"); [ "$c" = 200 ] || die "meshguard server: client principal → $c, want 200"
  c=$(http_code "${tls[@]}" "https://127.0.0.1:$HAS/details/1"); [ "$c" = 200 ] || die "haproxy server: client principal → $c, want 200"
  c=$(http_code "http://127.0.0.1:$MGS/details/1"); [ "$c" = 000 ] || die "meshguard server: plaintext into STRICT → $c"
  c=$(http_code -k "https://127.0.0.1:$HAS/details/1"); [ "$c" = 000 ] || die "haproxy server: TLS without client cert → $c"
  grep -q '"/details/1"' "$WORK/mg-server-access.log" || die "meshguard server access log has no /details/1 line"
  grep -q 'GET /details/1' "$WORK/has1.out" || die "haproxy server access log has no /details/1 line"
  log "checks passed: 200 allowed, 403 wrong path, 403 wrong principal, no plaintext, access logs written"
}

# procs_of TOPOLOGY: "name:pid ..." of every process the request crosses.
procs_of() {
  case "$1" in
    direct) echo "app:$APP_PID" ;;
    meshguard) echo "mg_client:$MGC_PID mg_server:$MGS_PID app:$APP_PID" ;;
    haproxy) echo "hap_client:$HAC_PID hap_server:$HAS_PID app:$APP_PID" ;;
    direct_h2) echo "app:$H2APP_PID" ;;
    meshguard_h2) echo "mg_client:${MG_PID[h2.client]} mg_server:${MG_PID[h2.server]} app:$H2APP_PID" ;;
    haproxy_h2) echo "hap_client:${HAP_PID[h2.client]} hap_server:${HAP_PID[h2.server]} app:$H2APP_PID" ;;
    mg_noopa | mg_opa) echo "mg_client:${MG_PID[${1#mg_}.client]} mg_server:${MG_PID[${1#mg_}.server]} app:$APP_PID" ;;
    mg_extauthz) echo "mg_client:${MG_PID[extauthz.client]} mg_server:${MG_PID[extauthz.server]} provider:$PROVIDER_PID app:$APP_PID" ;;
    mg_route) echo "mg_client:${MG_PID[route.client]} mg_server:${MG_PID[route.server]} app:$APP_PID" ;;
    mg_byname) echo "mg_client:${MG_PID[byname.client]} mg_server:${MG_PID[route.server]} app:$APP_PID" ;;
    gw_meshguard) echo "gateway:${MG_PID[gw.gateway]} mg_server:${MG_PID[gw.server]} app:$APP_PID" ;;
    gw_haproxy) echo "gateway:${HAP_PID[gw.gateway]} hap_server:${HAP_PID[gw.server]} app:$APP_PID" ;;
  esac
}
url_of() {
  case "$1" in
    direct) echo "http://127.0.0.1:$APP/details/1" ;;
    meshguard) echo "http://127.0.0.1:$MGC/details/1" ;;
    haproxy) echo "http://127.0.0.1:$HAC/details/1" ;;
    direct_h2) echo "http://127.0.0.1:$H2APP/details/1" ;;
    meshguard_h2) echo "http://127.0.0.1:${MG_PORT[h2.client]}/details/1" ;;
    haproxy_h2) echo "http://127.0.0.1:${HAP_PORT[h2.client]}/details/1" ;;
    mg_noopa | mg_opa | mg_extauthz | mg_route | mg_byname) echo "http://127.0.0.1:${MG_PORT[${1#mg_}.client]}/details/1" ;;
    gw_meshguard) echo "https://$GW_HOST:${MG_PORT[gw.gateway]}/details/1" ;;
    gw_haproxy) echo "https://$GW_HOST:${HAP_PORT[gw.gateway]}/details/1" ;;
  esac
}
# load_args TOPOLOGY: h2load's protocol and header options for it, in LOAD_ARGS (the *_h2
# topologies speak h2c prior knowledge, every other one HTTP/1.1 — over TLS for the gw_* ones;
# the opa rows carry the JWT).
load_args() {
  LOAD_ARGS=()
  case "$1" in *_h2) ;; *) LOAD_ARGS+=(--h1) ;; esac
  case "$1" in mg_noopa | mg_opa | mg_extauthz) LOAD_ARGS+=(-H "authorization: Bearer $BENCH_JWT") ;; esac
  case "$1" in mg_byname) LOAD_ARGS+=(-H ":authority: server.bench:9080") ;; esac  # Host for HTTP/1.1
  # The gateways: SNI and Host are the URI's (GW_HOST), the connection goes to 127.0.0.1.
  case "$1" in gw_meshguard) LOAD_ARGS+=(--connect-to "127.0.0.1:${MG_PORT[gw.gateway]}") ;; gw_haproxy) LOAD_ARGS+=(--connect-to "127.0.0.1:${HAP_PORT[gw.gateway]}") ;; esac
}

declare -A T0 U0 V0 N0
snap_cpu() {
  local p
  for p in $(procs_of "$1"); do
    T0[${p%%:*}]=$(cpu_ticks "${p#*:}")
    U0[${p%%:*}]=$(user_ticks "${p#*:}")
    read -r "V0[${p%%:*}]" "N0[${p%%:*}]" <<<"$(ctx_switches "${p#*:}")"
  done
}
# record_cpu TOPOLOGY PHASE REQUESTS: µs of CPU per request for each process since snap_cpu.
record_cpu() {
  local p name pid t1 u1
  for p in $(procs_of "$1"); do
    name=${p%%:*} pid=${p#*:}
    alive "$pid" "$name"
    t1=$(cpu_ticks "$pid")
    u1=$(user_ticks "$pid")
    record "$1.$2.cpu_us.$name" "$(awk -v d=$((t1 - T0[$name])) -v hz="$CLK_TCK" -v n="$3" 'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / hz / n : -1) }')"
    record "$1.$2.usr_us.$name" "$(awk -v d=$((u1 - U0[$name])) -v hz="$CLK_TCK" -v n="$3" 'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / hz / n : -1) }')"
    read -r v1 n1 <<<"$(ctx_switches "$pid")"
    record "$1.$2.vcs.$name" "$(awk -v d=$((v1 - V0[$name])) -v n="$3" 'BEGIN { printf "%.3f", (n > 0 ? d / n : -1) }')"
    record "$1.$2.ics.$name" "$(awk -v d=$((n1 - N0[$name])) -v n="$3" 'BEGIN { printf "%.3f", (n > 0 ? d / n : -1) }')"
  done
}

# System calls per request at the fixed rate, counted by perf's raw_syscalls tracepoint (a
# separate short phase: attaching perf adds its own cost, so the CPU figures above exclude it).
# Skipped when perf cannot count the tracepoint here.
PERF_SYSCALLS=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -o /dev/null true 2>/dev/null; then PERF_SYSCALLS=1; fi
run_syscalls() {
  local topo="$1" url p perfs=() n
  [ "$PERF_SYSCALLS" = 1 ] || return 0
  url=$(url_of "$topo")
  for p in $(procs_of "$topo"); do
    perf stat -e raw_syscalls:sys_enter -p "${p#*:}" -o "$WORK/perf.$REP.$topo.${p%%:*}" 2>/dev/null &
    perfs+=($!)
  done
  sleep 0.2
  timeout 40 h2load --h1 -t1 -c "$RATE_CLIENTS" --rps $((RATE / RATE_CLIENTS)) -D 3 "$url" >"$WORK/h2sys.$REP.$topo" 2>&1 || true
  n=$(awk '/^requests:/ { print $8 }' "$WORK/h2sys.$REP.$topo")
  kill -INT "${perfs[@]}" 2>/dev/null || true
  wait "${perfs[@]}" 2>/dev/null || true
  [ -n "$n" ] && [ "$n" -gt 0 ] || return 0
  for p in $(procs_of "$topo"); do
    local c
    c=$(awk '/raw_syscalls:sys_enter/ { gsub(/,/, "", $1); print $1 }' "$WORK/perf.$REP.$topo.${p%%:*}")
    [ -n "$c" ] && record "$topo.syscalls.${p%%:*}" "$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.2f", c / n }')"
  done
}

run_wrk() {
  local topo="$1" url out reqs rps errs
  url=$(url_of "$topo")
  timeout 30 wrk -t1 -c "$WRK_CONNS" -d 1s --timeout 5s "$url" >/dev/null 2>&1 || true # warm-up
  snap_cpu "$topo"
  out="$WORK/wrk.$REP.$topo.txt"
  timeout $((WRK_SECONDS + 30)) wrk -t1 -c "$WRK_CONNS" -d "${WRK_SECONDS}s" --timeout 5s "$url" >"$out" 2>&1 ||
    die "wrk failed on $topo: $(cat "$out")"
  reqs=$(awk '/requests in/ { print $1 }' "$out")
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  errs=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out")
  [ -n "$reqs" ] && [ -n "$rps" ] || die "cannot parse wrk output for $topo: $(cat "$out")"
  record "$topo.max_rps" "$rps"
  record "$topo.max_errors" "$errs"
  record_cpu "$topo" max "$reqs"
  [ "$errs" -eq 0 ] || log "WARNING: $topo: wrk -t1 -c $WRK_CONNS -d ${WRK_SECONDS}s $url: $errs errors of $reqs ($(grep -E 'Non-2xx|Socket errors' "$out" | tr '\n' ' '))"
  log "  $topo max: $rps rps ($reqs requests, $errs errors)"
}

run_rate() {
  local topo="$1" url out lat n ok p50 p99
  url=$(url_of "$topo")
  out="$WORK/h2load.$REP.$topo.txt"
  lat="$WORK/h2load.$REP.$topo.log"
  load_args "$topo"
  snap_cpu "$topo"
  # Open loop: each of RATE_CLIENTS connections (HTTP/1.1, or HTTP/2 with one stream at a time
  # for the *_h2 topologies) sends RATE/RATE_CLIENTS requests a second.
  timeout $((RATE_SECONDS + 30)) h2load "${LOAD_ARGS[@]}" -t1 -c "$RATE_CLIENTS" --rps $((RATE / RATE_CLIENTS)) -D "$RATE_SECONDS" \
    --log-file="$lat" "$url" >"$out" 2>&1 || die "h2load failed on $topo: $(tail -n 20 "$out")"
  n=$(wc -l <"$lat")
  ok=$(awk -F'\t' '$2 == 200' "$lat" | wc -l)
  p50=$(awk -F'\t' '$2 == 200 { print $3 }' "$lat" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR - 1) * 0.50) + 1] }')
  p99=$(awk -F'\t' '$2 == 200 { print $3 }' "$lat" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR - 1) * 0.99) + 1] }')
  [ "$ok" -gt 0 ] || die "no successful request at $RATE rps on $topo: $(tail -n 20 "$out")"
  record "$topo.rate_rps" "$(awk -v n="$n" -v d="$RATE_SECONDS" 'BEGIN { printf "%.0f", n / d }')"
  record "$topo.rate_failed" $((n - ok))
  record "$topo.p50_us" "$p50"
  record "$topo.p99_us" "$p99"
  record_cpu "$topo" rate "$n"
  [ "$n" -eq "$ok" ] || log "WARNING: $topo: h2load --rps at $RATE/s: $((n - ok)) of $n requests not 200 ($(grep -E '^requests:|^status codes:' "$out" | tr '\n' ' '))"
  log "  $topo @${RATE}rps: p50 ${p50}µs p99 ${p99}µs ($ok/$n ok)"
}

# idle_rss PHASE: RSS of every process now.
idle_rss() {
  local p
  for p in "app:$APP_PID" "mg_client:$MGC_PID" "mg_server:$MGS_PID" "hap_client:$HAC_PID" "hap_server:$HAS_PID"; do
    record "${p%%:*}.rss_kb.$1" "$(rss_kb "${p#*:}")"
    record "${p%%:*}.anon_kb.$1" "$(anon_kb "${p#*:}")"
  done
}

# hold NAME PID PORT [tls|plain] [h2]: HOLD_COUNT (default IDLE_CONNS) idle connections (mTLS
# handshakes done, with h2 the HTTP/2 SETTINGS exchanged; no request) to PORT; records the
# target's RSS and descriptor count while they are held.
hold() {
  local name="$1" pid="$2" port="$3" mode="${4:-}" h2="${5:-}" line opened failed fds0 rss held
  local count="${HOLD_COUNT:-$IDLE_CONNS}"
  local args=(--port "$port" --count "$count" --connect-timeout 120 --hold 180)
  [ "$mode" = tls ] && args+=(--cert "$WORK/client/cert-chain.pem" --key "$WORK/client/key.pem" --ca "$WORK/client/root-cert.pem")
  [ "$h2" = h2 ] && args+=(--h2)
  fds0=$(fd_count "$pid")
  record "$name.rss_kb.before" "$(rss_kb "$pid")"
  start "hold.$REP.$name" python3 "$HERE/hold_conns.py" "${args[@]}"
  local hpid=$LAST_PID
  line=""
  for _ in $(seq 1 1500); do # ≤ 150 s
    line=$(grep -m1 '^ready ' "$WORK/hold.$REP.$name.out" 2>/dev/null || true)
    [ -n "$line" ] && break
    kill -0 "$hpid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$line" ] || die "connection holder for $name did not finish: $(tail -n 5 "$WORK/hold.$REP.$name.err")"
  read -r _ opened failed _ <<<"$line"
  sleep 1 # the server reads the last clients' Finished messages
  alive "$pid" "$name"
  rss=$(rss_kb "$pid")
  # Held = the holder's sockets still ESTABLISHED (a socket the server closed is in CLOSE_WAIT).
  held=$(ss -tnpH state established "( dport = :$port )" | grep -c "pid=$hpid," || true)
  record "$name.rss_kb.conns" "$rss"
  record "$name.conns_held" "$held"
  record "$name.conns_failed" "$failed"
  [ "$failed" -eq 0 ] && [ "$held" -eq "$count" ] ||
    log "WARNING: $name: $opened of $count idle connections opened, $failed failed, $held still established: $line"
  log "  $name: $held idle connections held, RSS $rss kB (fds +$(($(fd_count "$pid") - fds0)))"
  stop_pid "$hpid"
  forget "$hpid"
  # Wait (bounded) until the server has closed them, so the next target starts clean.
  for _ in $(seq 1 100); do
    [ "$(fd_count "$pid")" -le $((fds0 + 10)) ] && break
    sleep 0.1
  done
}

# ---------------------------------------------------------------- section h2 (issue 15)
# The h2c app: an HAProxy frontend speaking HTTP/2 with prior knowledge and answering every
# request itself (a small JSON body, like the sample app's /details/1).
start_h2_app() {
  H2APP=$(free_port)
  cat >"$WORK/h2app.cfg" <<CFG
global
  maxconn $HAP_MAXCONN
  nbthread $THREADS
defaults
  mode http
  timeout client 180s
  timeout http-keep-alive 300s
frontend h2c_app
  bind 127.0.0.1:$H2APP proto h2
  http-request return status 200 content-type application/json string "{\"id\": 1, \"author\": \"William Shakespeare\", \"type\": \"paperback\"}"
CFG
  start "h2app$1" haproxy -db -f "$WORK/h2app.cfg"
  H2APP_PID=$LAST_PID
  wait_listen "$H2APP"
}

h2_check() { # URL WANT: status and HTTP version 2 over h2c prior knowledge
  local got
  got=$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --max-time 10 --http2-prior-knowledge "$1" || true)
  [ "$got" = "$2 2" ] || die "h2c $1 → '$got', want '$2 2'"
}

# run_closed TOPOLOGY PHASE CONNS STREAMS SECONDS: closed loop, h2load with CONNS connections of
# STREAMS concurrent streams each (HTTP/1.1 topologies: one request at a time), for SECONDS after a
# second of warm-up; records TOPOLOGY.PHASE_rps, _failed and the CPU of the PHASE.
run_closed() {
  local topo="$1" ph="$2" conns="$3" m="$4" secs="$5" url out ok failed rps
  url=$(url_of "$topo")
  load_args "$topo"
  timeout 30 h2load "${LOAD_ARGS[@]}" -t1 -c "$conns" -m "$m" -D 1 "$url" >/dev/null 2>&1 || true # warm-up
  snap_cpu "$topo"
  out="$WORK/h2m.$REP.$topo.$ph.txt"
  timeout $((secs + 30)) h2load "${LOAD_ARGS[@]}" -t1 -c "$conns" -m "$m" -D "$secs" "$url" >"$out" 2>&1 ||
    die "h2load -c$conns -m$m failed on $topo: $(tail -n 20 "$out")"
  ok=$(awk '/^requests:/ { print $8 }' "$out")
  failed=$(awk '/^requests:/ { print $10 + $12 + $14 }' "$out")
  rps=$(awk '/^finished in/ { print $4 }' "$out")
  [ -n "$ok" ] && [ -n "$rps" ] && [ "$ok" -gt 0 ] || die "no successful h2load -c$conns -m$m request on $topo: $(tail -n 20 "$out")"
  record "$topo.${ph}_rps" "$rps"
  record "$topo.${ph}_failed" "$failed"
  record_cpu "$topo" "$ph" "$ok"
  [ "$failed" -eq 0 ] || log "WARNING: $topo -c$conns -m$m: $failed failed ($(grep -E '^requests:|^status codes:' "$out" | tr '\n' ' '))"
  log "  $topo -c$conns -m$m: $rps rps ($ok ok, $failed failed)"
}

# run_streams TOPOLOGY M: one HTTP/2 connection, M concurrent streams, H2_SECONDS, closed loop.
run_streams() { run_closed "$1" "m$2" 1 "$2" "$H2_SECONDS"; }

run_h2_section() {
  local topos=(direct_h2 meshguard_h2 haproxy_h2) i topo pid
  for REP in $(seq 1 "$REPS"); do
    log "h2 repetition $REP/$REPS: h2c app, meshguard pair (protocol http2), haproxy pair (h2)"
    start_h2_app "$REP"
    start_mg_pair h2 "$REP" "$WORK/policies" "$H2APP" http2
    start_hap_pair h2 "$REP" "$H2APP" 1
    for topo in "${topos[@]}"; do h2_check "$(url_of "$topo")" 200; done
    h2_check "http://127.0.0.1:${MG_PORT[h2.client]}/headers" 403
    h2_check "http://127.0.0.1:${HAP_PORT[h2.client]}/headers" 403
    sleep 1
    for i in 0 1 2; do
      topo=${topos[$(((i + REP - 1) % 3))]}
      run_streams "$topo" 1
      run_streams "$topo" 100
      run_rate "$topo"
    done
    sleep 1
    HOLD_COUNT=$H2_IDLE_CONNS hold mg_client_h2 "${MG_PID[h2.client]}" "${MG_PORT[h2.client]}" plain h2
    HOLD_COUNT=$H2_IDLE_CONNS hold mg_server_h2 "${MG_PID[h2.server]}" "${MG_PORT[h2.server]}" tls h2
    HOLD_COUNT=$H2_IDLE_CONNS hold hap_client_h2 "${HAP_PID[h2.client]}" "${HAP_PORT[h2.client]}" plain h2
    HOLD_COUNT=$H2_IDLE_CONNS hold hap_server_h2 "${HAP_PID[h2.server]}" "${HAP_PORT[h2.server]}" tls h2
    for pid in "${HAP_PID[h2.client]}" "${HAP_PID[h2.server]}" "${MG_PID[h2.client]}" "${MG_PID[h2.server]}" "$H2APP_PID"; do
      stop_pid "$pid"
      forget "$pid"
    done
  done
}

# ---------------------------------------------------------------- section opa (issue 14)
# An HS256 token the OPAPolicy verifies (role guest, an hour of validity).
BENCH_JWT=$(python3 -c '
import base64, hmac, hashlib, json, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"sub": "bench-user", "role": "guest", "exp": int(time.time()) + 3600}).encode())
print(h + "." + p + "." + b(hmac.new(b"bench-secret", (h + "." + p).encode(), hashlib.sha256).digest()))')

run_opa_section() {
  local topos=(mg_noopa mg_opa mg_extauthz) i topo pid c
  mkdir -p "$WORK/policies-opa" "$WORK/policies-ext" "$WORK/provider"
  cp "$WORK/policies/allow.yaml" "$WORK/policies/strict.yaml" "$WORK/policies-opa/"
  cp "$WORK/policies/allow.yaml" "$WORK/policies/strict.yaml" "$WORK/policies-ext/"
  # The OPAPolicy: OPA's Envoy primer shape, the token verified (policies/opa_primer.yaml).
  cp "$HERE/policies/opa_primer.yaml" "$WORK/policies-opa/opa.yaml"
  cp "$HERE/policies/opa_primer.yaml" "$WORK/provider/opa.yaml"
  for REP in $(seq 1 "$REPS"); do
    log "opa repetition $REP/$REPS: app, provider, three meshguard pairs (no OPA, OPAPolicy, CUSTOM ext_authz gRPC)"
    start "app$REP" "$APP_BIN" --listen 127.0.0.1:0
    APP_PID=$LAST_PID
    APP=$(port_of "$WORK/app$REP.out" '^listening on 127\.0\.0\.1:[0-9]+$')
    start "provider$REP" "$OPA_AUTHZ_BIN" --policy "$WORK/provider/opa.yaml" --namespace bench \
      --service-account server --label app=server
    PROVIDER_PID=$LAST_PID
    PROVIDER=$(wait_line "$WORK/provider$REP.out" '^grpc [0-9]+$' | cut -d' ' -f2)
    cat >"$WORK/policies-ext/ext.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec:
  extensionProviders:
  - name: opa-grpc
    envoyExtAuthzGrpc: {service: 127.0.0.1, port: $PROVIDER, timeout: 1s}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-opa, namespace: bench}
spec:
  selector: {matchLabels: {app: server}}
  action: CUSTOM
  provider: {name: opa-grpc}
  rules:
  - to: [{operation: {paths: ["/*"]}}]
YAML
    start_mg_pair noopa "$REP" "$WORK/policies" "$APP" http
    start_mg_pair opa "$REP" "$WORK/policies-opa" "$APP" http
    start_mg_pair extauthz "$REP" "$WORK/policies-ext" "$APP" http
    for topo in "${topos[@]}"; do
      c=$(http_code -H "authorization: Bearer $BENCH_JWT" "$(url_of "$topo")"); [ "$c" = 200 ] || die "$topo: /details/1 with the token → $c"
    done
    c=$(http_code "$(url_of mg_noopa)"); [ "$c" = 200 ] || die "mg_noopa: /details/1 without a token → $c"
    for topo in mg_opa mg_extauthz; do
      c=$(http_code "$(url_of "$topo")"); [ "$c" = 403 ] || die "$topo: /details/1 without a token → $c, want 403"
      c=$(http_code -H "authorization: Bearer $BENCH_JWT.x" "$(url_of "$topo")"); [ "$c" = 403 ] || die "$topo: bad signature → $c, want 403"
    done
    sleep 1
    for i in 0 1 2; do
      topo=${topos[$(((i + REP - 1) % 3))]}
      timeout 30 h2load --h1 -t1 -c "$RATE_CLIENTS" -n 500 -H "authorization: Bearer $BENCH_JWT" "$(url_of "$topo")" >/dev/null 2>&1 || true # warm-up
      run_rate "$topo"
    done
    for pid in "${MG_PID[noopa.client]}" "${MG_PID[noopa.server]}" "${MG_PID[opa.client]}" "${MG_PID[opa.server]}" \
      "${MG_PID[extauthz.client]}" "${MG_PID[extauthz.server]}" "$PROVIDER_PID" "$APP_PID"; do
      stop_pid "$pid"
      forget "$pid"
    done
  done
}

# ---------------------------------------------------------------- section byname (issue 16)
# The server proxy of the "route" pair; a second client routes by name to it.
run_byname_section() {
  local topos=(mg_route mg_byname) i topo pid c
  for REP in $(seq 1 "$REPS"); do
    log "byname repetition $REP/$REPS: app, one server, a hand-written client route and a by-name client"
    start "app-byname$REP" "$APP_BIN" --listen 127.0.0.1:0
    APP_PID=$LAST_PID
    APP=$(port_of "$WORK/app-byname$REP.out" '^listening on 127\.0\.0\.1:[0-9]+$')
    start_mg_pair route "$REP" "$WORK/policies" "$APP" http
    mkdir -p "$WORK/registry$REP"
    cat >"$WORK/registry$REP/registry.yaml" <<YAML
apiVersion: meshguard.io/v1alpha1
kind: Service
metadata: {name: server, namespace: bench}
spec:
  selector: {app: server}
  ports: [{name: http, port: 9080, protocol: http}]
---
apiVersion: meshguard.io/v1alpha1
kind: ServiceEndpoints
metadata: {name: server, namespace: bench}
spec:
  endpoints:
  - {workload: server, address: 127.0.0.1, serviceAccount: server, ports: [{port: 9080, endpointPort: ${MG_PORT[route.server]}}]}
YAML
    cat >"$WORK/mg-client-byname.yaml" <<YAML
workload: {name: client, namespace: bench, serviceAccount: client, labels: {app: client}}
tls: {certChain: $WORK/client/cert-chain.pem, key: $WORK/client/key.pem, trustBundle: $WORK/client/root-cert.pem}
policyDir: $WORK/registry$REP
accessLog: $WORK/mg-client-byname-access.log
workers: $THREADS
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
admin: {port: 0}
limits: {headerTimeoutMs: 180000, maxConnections: $((IDLE_CONNS + 100))}
YAML
    start "mgc-byname$REP" "$PROXY_BIN" --config "$WORK/mg-client-byname.yaml"
    MG_PID[byname.client]=$LAST_PID
    MG_PORT[byname.client]=$(port_of "$WORK/mgc-byname$REP.out" '^listening outbound\[0\] ')
    c=$(http_code "$(url_of mg_route)"); [ "$c" = 200 ] || die "mg_route: /details/1 → $c"
    c=$(http_code -H "host: server.bench:9080" "$(url_of mg_byname)"); [ "$c" = 200 ] || die "mg_byname: /details/1 → $c"
    c=$(http_code -H "host: nosuch.bench:9080" "$(url_of mg_byname)"); [ "$c" = 404 ] || die "mg_byname: unknown host → $c, want 404"
    sleep 1
    for i in 0 1; do
      topo=${topos[$(((i + REP - 1) % 2))]}
      load_args "$topo"
      timeout 30 h2load "${LOAD_ARGS[@]}" -t1 -c "$RATE_CLIENTS" -n 500 "$(url_of "$topo")" >/dev/null 2>&1 || true # warm-up
      run_rate "$topo"
    done
    for pid in "${MG_PID[byname.client]}" "${MG_PID[route.client]}" "${MG_PID[route.server]}" "$APP_PID"; do
      stop_pid "$pid"
      forget "$pid"
    done
  done
}

print_byname() {
  echo "### Outbound by name vs a hand-written route (section byname, issue 16)"
  echo
  echo "| client route | p50 at $RATE rps (µs) | p99 (µs) | CPU µs/request, client proxy | server proxy | failed |"
  echo "|---|---|---|---|---|---|"
  for t in mg_route mg_byname; do
    echo "| $t | $(fmt "$(median "$t.p50_us")") ($(all_of "$t.p50_us")) | $(fmt "$(median "$t.p99_us")") ($(all_of "$t.p99_us")) | $(fmt "$(median "$t.rate.cpu_us.mg_client")" 1) ($(all_of "$t.rate.cpu_us.mg_client")) | $(fmt "$(median "$t.rate.cpu_us.mg_server")" 1) | $(all_of "$t.rate_failed") |"
  done
  echo
  echo "Client CPU added by routing by name: $(awk -v a="$(median mg_byname.rate.cpu_us.mg_client)" -v b="$(median mg_route.rate.cpu_us.mg_client)" 'BEGIN { printf "%+.1f", a - b }') µs per request."
  echo
}

# ---------------------------------------------------------------- section gateway (issue 20)
# shellcheck source=bench/dataplane/gateway.sh
source "$HERE/gateway.sh"
# ---------------------------------------------------------------- section counts (issues 13, 15)
# shellcheck source=bench/dataplane/count.sh
source "$HERE/count.sh"

# ---------------------------------------------------------------- the run
run_h1_section() {
TOPOS=(direct meshguard haproxy)
log "work dir $WORK; reps $REPS; wrk -t1 -c $WRK_CONNS -d ${WRK_SECONDS}s; h2load --h1 -c $RATE_CLIENTS --rps $((RATE / RATE_CLIENTS)) -D $RATE_SECONDS; idle conns $IDLE_CONNS; threads $THREADS"
for REP in $(seq 1 "$REPS"); do
  log "repetition $REP/$REPS: starting app, meshguard pair, haproxy pair"
  start_all "$REP"
  check_topologies "$([ "$REP" = 1 ] && echo 1 || echo 0)"
  sleep 1
  idle_rss fresh
  # Rotate the order so no topology always runs first (or last) in a repetition.
  for i in 0 1 2; do
    topo=${TOPOS[$(((i + REP - 1) % 3))]}
    run_wrk "$topo"
    run_rate "$topo"
    run_syscalls "$topo"
  done
  sleep 1
  idle_rss after_load
  hold app "$APP_PID" "$APP"
  hold mg_client "$MGC_PID" "$MGC"
  hold mg_server "$MGS_PID" "$MGS" tls
  hold hap_client "$HAC_PID" "$HAC"
  hold hap_server "$HAS_PID" "$HAS" tls
  stop_all
done
}
LOAD_AVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
section h1 && run_h1_section
section h2 && run_h2_section
section opa && run_opa_section
section byname && run_byname_section
section gateway && run_gateway_section
section counts && run_counts_section
LOAD_AVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- medians → markdown
median() { # KEY: median over repetitions (empty when never recorded)
  awk -F'\t' -v k="$1" '$2 == k { print $3 }' "$RESULTS" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
all_of() { awk -F'\t' -v k="$1" '$2 == k { printf "%s%s", sep, $3; sep = "/" }' "$RESULTS"; }
fmt() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { if (x == "") print "–"; else printf "%.*f", d, x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f×", a / b }'; }
mb() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.1f", x / 1024 }'; }

# added TOPOLOGY BASELINE KEY: TOPOLOGY's median of KEY minus BASELINE's, signed.
added() { awk -v a="$(median "$1.$3")" -v b="$(median "$2.$3")" 'BEGIN { if (a == "" || b == "") print "–"; else printf "%+.0f", a - b }'; }
# hop_sum TOPOLOGY PHASE NAME...: the medians of those processes' CPU µs per request, added.
hop_sum() {
  local t="$1" ph="$2" n sum=0
  shift 2
  for n in "$@"; do sum=$(awk -v a="$sum" -v b="$(median "$t.$ph.cpu_us.$n")" 'BEGIN { print a + b }'); done
  echo "$sum"
}

print_h2() {
  local t p per
  echo "### HTTP/2 (section h2, issue 15)"
  echo
  echo "| topology (h2c client → … → h2c app) | rps, 1 connection, 1 stream | 100 streams | p50 at $RATE rps (µs) | p99 (µs) | added p50 | added p99 | failed (m1 / m100 / rate) |"
  echo "|---|---|---|---|---|---|---|---|"
  for t in direct_h2 meshguard_h2 haproxy_h2; do
    echo "| $t | $(fmt "$(median "$t.m1_rps")") ($(all_of "$t.m1_rps")) | $(fmt "$(median "$t.m100_rps")") ($(all_of "$t.m100_rps")) | $(fmt "$(median "$t.p50_us")") ($(all_of "$t.p50_us")) | $(fmt "$(median "$t.p99_us")") ($(all_of "$t.p99_us")) | $([ "$t" = direct_h2 ] && echo – || added "$t" direct_h2 p50_us) | $([ "$t" = direct_h2 ] && echo – || added "$t" direct_h2 p99_us) | $(all_of "$t.m1_failed") / $(all_of "$t.m100_failed") / $(all_of "$t.rate_failed") |"
  done
  echo
  echo "| CPU µs per request (utime+stime / requests) | 1 stream | 100 streams | at $RATE rps ($RATE_CLIENTS connections) |"
  echo "|---|---|---|---|"
  for row in direct_h2:app meshguard_h2:mg_client meshguard_h2:mg_server meshguard_h2:app haproxy_h2:hap_client haproxy_h2:hap_server haproxy_h2:app; do
    t=${row%%:*} p=${row#*:}
    echo "| $t: $p | $(fmt "$(median "$t.m1.cpu_us.$p")" 1) | $(fmt "$(median "$t.m100.cpu_us.$p")" 1) | $(fmt "$(median "$t.rate.cpu_us.$p")" 1) |"
  done
  echo "| **meshguard pair, both hops** | **$(fmt "$(hop_sum meshguard_h2 m1 mg_client mg_server)" 1)** | **$(fmt "$(hop_sum meshguard_h2 m100 mg_client mg_server)" 1)** | **$(fmt "$(hop_sum meshguard_h2 rate mg_client mg_server)" 1)** |"
  echo "| **haproxy pair, both hops** | **$(fmt "$(hop_sum haproxy_h2 m1 hap_client hap_server)" 1)** | **$(fmt "$(hop_sum haproxy_h2 m100 hap_client hap_server)" 1)** | **$(fmt "$(hop_sum haproxy_h2 rate hap_client hap_server)" 1)** |"
  echo
  echo "| idle HTTP/2 connections ($H2_IDLE_CONNS held, SETTINGS exchanged) | RSS before (MB) | RSS held (MB) | KB per connection | held (all runs) |"
  echo "|---|---|---|---|---|"
  for p in mg_client_h2 mg_server_h2 hap_client_h2 hap_server_h2; do
    per=$(awk -v a="$(median "$p.rss_kb.conns")" -v b="$(median "$p.rss_kb.before")" -v n="$H2_IDLE_CONNS" 'BEGIN { if (a == "" || b == "") print "–"; else printf "%.1f", (a - b) / n }')
    echo "| $p | $(mb "$(median "$p.rss_kb.before")") | $(mb "$(median "$p.rss_kb.conns")") | $per | $(all_of "$p.conns_held") |"
  done
  echo
  echo "Ratios: meshguard/haproxy CPU per request, both hops: 1 stream $(ratio "$(hop_sum meshguard_h2 m1 mg_client mg_server)" "$(hop_sum haproxy_h2 m1 hap_client hap_server)")," \
    "100 streams $(ratio "$(hop_sum meshguard_h2 m100 mg_client mg_server)" "$(hop_sum haproxy_h2 m100 hap_client hap_server)")," \
    "at $RATE rps $(ratio "$(hop_sum meshguard_h2 rate mg_client mg_server)" "$(hop_sum haproxy_h2 rate hap_client hap_server)");" \
    "rps meshguard/haproxy: 1 stream $(ratio "$(median meshguard_h2.m1_rps)" "$(median haproxy_h2.m1_rps)"), 100 streams $(ratio "$(median meshguard_h2.m100_rps)" "$(median haproxy_h2.m100_rps)")."
  if section h1; then
    # Both pairs speak HTTP/2 to each other (an HTTP/1.1 app's requests are carried as h2 when
    # both proxies offer it): this compares the app-side legs, h2c vs HTTP/1.1.
    echo "meshguard pair, both hops at $RATE rps (same run): h2c app legs $(fmt "$(hop_sum meshguard_h2 rate mg_client mg_server)" 1) µs vs HTTP/1.1 app legs $(fmt "$(hop_sum meshguard rate mg_client mg_server)" 1) µs ($(ratio "$(hop_sum meshguard_h2 rate mg_client mg_server)" "$(hop_sum meshguard rate mg_client mg_server)")); both carried as HTTP/2 between the proxies."
  fi
  echo
}

print_opa() {
  local t p
  echo "### OPA in the proxy vs CUSTOM ext_authz (section opa, issue 14)"
  echo
  echo "| meshguard pair, at $RATE rps (HTTP/1.1, $RATE_CLIENTS connections) | p50 (µs) | p99 (µs) | added p50 vs no OPA | added p99 | mg_client µs/req | mg_server µs/req | provider µs/req | server hop + provider | vs no OPA | failed |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  local base hop
  base=$(hop_sum mg_noopa rate mg_server)
  for t in mg_noopa mg_opa mg_extauthz; do
    hop=$(hop_sum "$t" rate mg_server provider)
    echo "| $t | $(fmt "$(median "$t.p50_us")") ($(all_of "$t.p50_us")) | $(fmt "$(median "$t.p99_us")") ($(all_of "$t.p99_us")) | $([ "$t" = mg_noopa ] && echo – || added "$t" mg_noopa p50_us) | $([ "$t" = mg_noopa ] && echo – || added "$t" mg_noopa p99_us) | $(fmt "$(median "$t.rate.cpu_us.mg_client")" 1) | $(fmt "$(median "$t.rate.cpu_us.mg_server")" 1) | $(fmt "$(median "$t.rate.cpu_us.provider")" 1) | $(fmt "$hop" 1) | $(awk -v a="$hop" -v b="$base" 'BEGIN { printf "%+.1f", a - b }') | $(all_of "$t.rate_failed") |"
  done
  local opa_cost ext_cost
  opa_cost=$(awk -v a="$(hop_sum mg_opa rate mg_server)" -v b="$base" 'BEGIN { print a - b }')
  ext_cost=$(awk -v a="$(hop_sum mg_extauthz rate mg_server provider)" -v b="$base" 'BEGIN { print a - b }')
  echo
  echo "CPU added per request on the server side: in-proxy OPAPolicy $(fmt "$opa_cost" 1) µs; CUSTOM ext_authz (server proxy + provider) $(fmt "$ext_cost" 1) µs; ratio ext_authz/in-proxy $(ratio "$ext_cost" "$opa_cost")."
  echo
}

{
  echo "Data plane — $(date -u +%Y-%m-%d) — $REPS repetitions, medians (all runs in brackets where useful); sections $SECTIONS; load average at start $LOAD_AVG_START, at end $LOAD_AVG_END; commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  if section h1; then
  echo "| topology | max rps (wrk, closed loop) | p50 at $RATE rps (µs) | p99 (µs) | added p50 | added p99 | errors (max / rate) |"
  echo "|---|---|---|---|---|---|---|"
  d50=$(median direct.p50_us) d99=$(median direct.p99_us)
  for t in "${TOPOS[@]}"; do
    p50=$(median "$t.p50_us") p99=$(median "$t.p99_us")
    if [ "$t" = direct ]; then a50="–" a99="–"; else
      a50=$(awk -v a="$p50" -v b="$d50" 'BEGIN { printf "%+.0f", a - b }')
      a99=$(awk -v a="$p99" -v b="$d99" 'BEGIN { printf "%+.0f", a - b }')
    fi
    echo "| $t | $(fmt "$(median "$t.max_rps")") ($(all_of "$t.max_rps")) | $(fmt "$p50") ($(all_of "$t.p50_us")) | $(fmt "$p99") ($(all_of "$t.p99_us")) | $a50 | $a99 | $(all_of "$t.max_errors") / $(all_of "$t.rate_failed") |"
  done
  echo
  echo "| CPU µs per request (utime+stime / requests) | at $RATE rps | of which user | at max rps | of which user |"
  echo "|---|---|---|---|---|"
  for row in direct:app meshguard:mg_client meshguard:mg_server meshguard:app haproxy:hap_client haproxy:hap_server haproxy:app; do
    t=${row%%:*} p=${row#*:}
    echo "| $t: $p | $(fmt "$(median "$t.rate.cpu_us.$p")" 1) | $(fmt "$(median "$t.rate.usr_us.$p")" 1) | $(fmt "$(median "$t.max.cpu_us.$p")" 1) | $(fmt "$(median "$t.max.usr_us.$p")" 1) |"
  done
  for pair in meshguard:mg haproxy:hap; do
    t=${pair%%:*} p=${pair#*:}
    r=$(awk -v a="$(median "$t.rate.cpu_us.${p}_client")" -v b="$(median "$t.rate.cpu_us.${p}_server")" 'BEGIN { print a + b }')
    m=$(awk -v a="$(median "$t.max.cpu_us.${p}_client")" -v b="$(median "$t.max.cpu_us.${p}_server")" 'BEGIN { print a + b }')
    echo "| **$t pair, both hops** | **$(fmt "$r" 1)** | | **$(fmt "$m" 1)** | |"
  done
  echo
  echo "| per request (medians) | system calls at $RATE rps (perf) | context switches at $RATE rps: voluntary / involuntary | at max rps: voluntary / involuntary |"
  echo "|---|---|---|---|"
  for row in direct:app meshguard:mg_client meshguard:mg_server meshguard:app haproxy:hap_client haproxy:hap_server haproxy:app; do
    t=${row%%:*} p=${row#*:}
    echo "| $t: $p | $(fmt "$(median "$t.syscalls.$p")" 2) | $(fmt "$(median "$t.rate.vcs.$p")" 3) / $(fmt "$(median "$t.rate.ics.$p")" 3) | $(fmt "$(median "$t.max.vcs.$p")" 3) / $(fmt "$(median "$t.max.ics.$p")" 3) |"
  done
  echo
  echo "| RSS (MB) | idle, fresh | of which anonymous | idle after load | with $IDLE_CONNS idle connections | KB per idle connection | connections held (all runs) |"
  echo "|---|---|---|---|---|---|---|"
  for p in app mg_client mg_server hap_client hap_server; do
    per=$(awk -v a="$(median "$p.rss_kb.conns")" -v b="$(median "$p.rss_kb.after_load")" -v n="$IDLE_CONNS" 'BEGIN { printf "%.1f", (a - b) / n }')
    echo "| $p | $(mb "$(median "$p.rss_kb.fresh")") | $(mb "$(median "$p.anon_kb.fresh")") | $(mb "$(median "$p.rss_kb.after_load")") | $(mb "$(median "$p.rss_kb.conns")") | $per | $(all_of "$p.conns_held") |"
  done
  echo
  mr=$(median meshguard.max_rps) hr=$(median haproxy.max_rps) dr=$(median direct.max_rps)
  echo "Ratios: max rps meshguard/direct $(ratio "$mr" "$dr"), meshguard/haproxy $(ratio "$mr" "$hr");" \
    "per-hop CPU at $RATE rps meshguard/haproxy: client $(ratio "$(median meshguard.rate.cpu_us.mg_client)" "$(median haproxy.rate.cpu_us.hap_client)")," \
    "server $(ratio "$(median meshguard.rate.cpu_us.mg_server)" "$(median haproxy.rate.cpu_us.hap_server)");" \
    "at max rps: client $(ratio "$(median meshguard.max.cpu_us.mg_client)" "$(median haproxy.max.cpu_us.hap_client)")," \
    "server $(ratio "$(median meshguard.max.cpu_us.mg_server)" "$(median haproxy.max.cpu_us.hap_server)")."
  echo
  fi
  if section h2; then print_h2; fi
  if section opa; then print_opa; fi
  if section byname; then print_byname; fi
  if section gateway; then print_gateway; fi
  if section counts; then print_counts; fi
} | tee "$WORK/table.md"
if [ -n "$OUT" ]; then
  cp "$WORK/table.md" "$OUT"
  cp "$RESULTS" "$OUT.raw.tsv"
fi
