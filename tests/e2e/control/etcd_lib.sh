# Helpers of the etcd e2e scripts (etcd_replicas.sh, etcd_tls.sh), on top of lib.sh: replicas of
# meshguard-control on one etcd store, meshguardctl against one of them, and a small mesh whose
# proxies bootstrap through them. The caller sets STORE (etcd://...), has run
# `ca init --dir $WORK/cacerts`, and may set REPLICA_FLAGS (an array: e.g. etcd TLS flags).

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

# start_replica N: meshguard-control replica N on $STORE with the operator CA; sets R<N> (its
# address) and R<N>_PID.
start_replica() {
  local n="$1"
  start "replica$n" "$CONTROL_BIN" --data-dir "$WORK/replica$n" --listen 127.0.0.1:0 --debounce-ms 20 \
    --store "$STORE" --plug-in-ca "$WORK/cacerts" ${REPLICA_FLAGS[@]+"${REPLICA_FLAGS[@]}"}
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
  mkdir -p "$DATA/ca" && cp "$WORK/cacerts/root-cert.pem" "$DATA/ca/"
  start_details_and_sleep
  expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/1")" 200 "mesh request through proxies bootstrapped via $1"
}
