# Helpers of the etcd e2e scripts (etcd_replicas.sh, etcd_tls.sh, etcd_ca.sh, ...), on top of lib.sh: a
# three-member etcd cluster, replicas of meshguard-control on one etcd store, meshguardctl against
# one of them, and a small mesh whose proxies bootstrap through them. The caller sets STORE
# (etcd://...) and may set REPLICA_FLAGS (an array: e.g. etcd TLS flags) and REPLICA_CA_FLAGS (an
# array; default --plug-in-ca $WORK/cacerts, for which it has run `ca init --dir $WORK/cacerts`;
# empty: the built-in CA kept in etcd) and MESH_CA_BUNDLE (the roots the proxies start with; default
# $WORK/cacerts/root-cert.pem).

# free_ports N: N ports the kernel picks (bound to 0 at once, then released) — for etcd, which
# needs its ports on its command line.
free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()' "$1"
}

# start_etcd_cluster: a three-member etcd cluster on 127.0.0.1 (exit 77 without etcd); sets
# CLIENT (its client ports), ETCD_PIDS and STORE.
start_etcd_cluster() {
  ETCD_BIN="$(command -v etcd || true)"
  if [ -z "$ETCD_BIN" ]; then
    echo "skip: no etcd (Debian etcd-server; scripts/install-deps.sh)"
    exit 77
  fi
  local ports cluster i
  read -r -a ports <<<"$(free_ports 6)"
  CLIENT=("${ports[0]}" "${ports[1]}" "${ports[2]}")
  cluster="e0=http://127.0.0.1:${ports[3]},e1=http://127.0.0.1:${ports[4]},e2=http://127.0.0.1:${ports[5]}"
  ETCD_PIDS=()
  for i in 0 1 2; do
    start "etcd$i" "$ETCD_BIN" --name "e$i" --data-dir "$WORK/etcd$i" \
      --listen-client-urls "http://127.0.0.1:${CLIENT[$i]}" --advertise-client-urls "http://127.0.0.1:${CLIENT[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "mg-e2e-$$" \
      --heartbeat-interval 50 --election-timeout 500
    ETCD_PIDS+=("$LAST_PID")
  done
  for i in 0 1 2; do
    for _ in $(seq 1 200); do
      curl -sf --max-time 2 "http://127.0.0.1:${CLIENT[$i]}/health" | grep -q '"true"' && break
      sleep 0.05
    done
    curl -sf --max-time 2 "http://127.0.0.1:${CLIENT[$i]}/health" | grep -q '"true"' || fail "etcd member $i not healthy"
  done
  pass "three-member etcd cluster up"
  STORE="etcd://127.0.0.1:${CLIENT[0]},127.0.0.1:${CLIENT[1]},127.0.0.1:${CLIENT[2]}"
}

# etcd_get KEY: the value at KEY (read through etcd's JSON gateway on the first member), "" if absent.
etcd_get() {
  local out
  out=$(curl -s --max-time 5 -X POST "http://127.0.0.1:${CLIENT[0]}/v3/kv/range" \
    -d "{\"key\": \"$(printf '%s' "$1" | base64 -w0)\"}") || fail "etcd range $1"
  jq -r '.kvs[0].value // ""' <<<"$out" | base64 -d
}

# start_replica N: meshguard-control replica N on $STORE with REPLICA_CA_FLAGS (default: the operator
# CA); sets R<N> (its address) and R<N>_PID.
start_replica() {
  local n="$1"
  local ca_flags=(--plug-in-ca "$WORK/cacerts")
  [ -z "${REPLICA_CA_FLAGS+set}" ] || ca_flags=(${REPLICA_CA_FLAGS[@]+"${REPLICA_CA_FLAGS[@]}"})
  start "replica$n" "$CONTROL_BIN" --data-dir "$WORK/replica$n" --listen 127.0.0.1:0 --debounce-ms 20 \
    --store "$STORE" ${ca_flags[@]+"${ca_flags[@]}"} ${REPLICA_FLAGS[@]+"${REPLICA_FLAGS[@]}"}
  printf -v "R${n}_PID" '%s' "$LAST_PID"
  printf -v "R$n" '127.0.0.1:%s' "$(port_of "$WORK/replica$n.out" '^listening grpc ')"
}

# on N CMD...: meshguardctl against replica N (the admin identity of replica 1 works on all: one CA).
on() {
  local n="$1" addr
  shift
  addr="R$n"
  MESHGUARD_SERVER="${!addr}" MESHGUARD_ADMIN_DIR="$WORK/replica1/admin" "$CTL_BIN" "$@"
}

# wait_listed N PATTERN GET-ARGS...: polls (bounded: ~10 s) until `get GET-ARGS -o yaml` through
# replica N shows PATTERN; another replica's write reaches it through its etcd watch, not at once.
wait_listed() {
  local n="$1" pattern="$2"
  shift 2
  for _ in $(seq 1 200); do
    on "$n" get "$@" -o yaml 2>/dev/null | grep -q -- "$pattern" && return 0
    sleep 0.05
  done
  fail "replica $n does not list $pattern ($*)"
}

# start_mesh_via ADDRS: details and sleep (lib.sh's start_details_and_sleep) with proxies given
# the control-plane addresses ADDRS, bootstrapping with tokens minted through replica 2; then one
# mesh request must succeed. meshguardctl's environment is left pointing at replica 2.
start_mesh_via() {
  export MESHGUARD_SERVER="$R2" MESHGUARD_ADMIN_DIR="$WORK/replica1/admin"
  CP_ADDR="$1"
  DATA="$WORK/plug"  # start_proxy's --ca-bundle: $DATA/ca/root-cert.pem
  mkdir -p "$DATA/ca" && cp "${MESH_CA_BUNDLE:-$WORK/cacerts/root-cert.pem}" "$DATA/ca/root-cert.pem"
  start_details_and_sleep
  expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "mesh request through proxies bootstrapped via $1"
}

# The CA rotation scripts' probes (etcd_ca.sh, etcd_meshes.sh).
# fingerprints FILE: the SHA-256 of each certificate in a PEM file, in order.
fingerprints() {
  python3 -c '
import base64, hashlib, re, sys
text = open(sys.argv[1]).read()
for body in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S):
    print(hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest())' "$1"
}
# shared_ca_cert FIELD [KEY]: the current|pending CA certificate's fingerprint in the CA kept at
# KEY (default /meshguard/shared/ca; another mesh's: /meshguard/shared/meshes/NAME/ca), "" if none.
shared_ca_cert() {
  etcd_get "${2:-/meshguard/shared/ca}" | jq -r ".$1.caCert // empty" >"$WORK/shared-$1.pem"
  [ -s "$WORK/shared-$1.pem" ] && fingerprints "$WORK/shared-$1.pem" || true
}
# wait_shared FIELD STATE [KEY]: polls (bounded: ~30 s) until shared_ca_cert FIELD KEY is (STATE=set)
# or is not (unset) there.
wait_shared() {
  for _ in $(seq 1 300); do
    got=$(shared_ca_cert "$1" "${3:-}")
    { [ "$2" = set ] && [ -n "$got" ]; } || { [ "$2" = unset ] && [ -z "$got" ]; } && return 0
    sleep 0.1
  done
  fail "etcd ${3:-/meshguard/shared/ca}: $1 never $2"
}
# bundle_has NAME FP: NAME's pushed bundle holds the certificate FP. (Read whole, then matched:
# grep -q closing the pipe early would fail the writer under pipefail.)
bundle_has() {
  local all
  all=$(fingerprints "$WORK/$1-state/root-cert.pem")
  grep -qx "$2" <<<"$all"
}
# expect_bundle_back ABANDONED CURRENT NAME...: after a rotation called off, waits (bounded:
# ~30 s) until no NAME's pushed bundle holds the root ABANDONED, then fails unless none does and
# every one still holds CURRENT.
expect_bundle_back() {
  local abandoned="$1" current="$2" w held
  shift 2
  for _ in $(seq 1 300); do
    held=""
    for w in "$@"; do bundle_has "$w" "$abandoned" && held=1; done
    [ -z "$held" ] && break
    sleep 0.1
  done
  for w in "$@"; do
    ! bundle_has "$w" "$abandoned" || fail "$w still holds the abandoned root"
    bundle_has "$w" "$current" || fail "$w lost the current root"
  done
}
# load_start URL / load_stop: requests to URL every 50 ms in the background (at most 3000), one
# status per line in $WORK/load.txt; load_stop ends them and fails unless every one was a 200
# (at least 20 of them).
load_start() {
  touch "$WORK/load.on"
  (
    i=0
    while [ -e "$WORK/load.on" ] && [ "$i" -lt 3000 ]; do
      i=$((i + 1))
      http_status "$1"
      echo
      sleep 0.05
    done
  ) >"$WORK/load.txt" &
  LOAD_PID=$!
}
load_stop() {
  rm -f "$WORK/load.on"
  wait "$LOAD_PID"
  local total ok
  total=$(grep -c . "$WORK/load.txt")
  ok=$(grep -c '^200$' "$WORK/load.txt" || true)
  [ "$total" -gt 20 ] || fail "too few requests under load ($total)"
  expect_eq "$ok/$total" "$total/$total" "$1"
}
