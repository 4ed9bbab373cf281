# Control-plane e2e helpers on top of the proxy suite's lib.sh (start/fail/pass/port_of/...).
# Arguments of every script: PROXY_BIN APP_BIN CONTROL_BIN CTL_BIN.
CONTROL_BIN="$3"
CTL_BIN="$4"
source "$(dirname "${BASH_SOURCE[0]}")/../proxy/lib.sh"

DATA="$WORK/cp-data"

# start_control [PORT]: starts meshguard-control on 127.0.0.1:PORT (0: any), sets CP_ADDR, CP_METRICS,
# CP_PID and the meshguardctl environment.
start_control() {
  local port="${1:-0}"
  : >"$WORK/control.out"
  start control "$CONTROL_BIN" --data-dir "$DATA" --listen "127.0.0.1:$port" --metrics 127.0.0.1:0 --debounce-ms 20
  CP_PID="$LAST_PID"
  CP_ADDR="127.0.0.1:$(port_of "$WORK/control.out" '^listening grpc ')"
  CP_METRICS="127.0.0.1:$(port_of "$WORK/control.out" '^listening metrics ')"
  export MESHGUARD_SERVER="$CP_ADDR" MESHGUARD_ADMIN_DIR="$DATA/admin"
}

ctl() { "$CTL_BIN" "$@"; }

# start_workload NAME SA APP_PORT [extra proxy yaml lines]: an app + proxy bootstrapped with a fresh
# token; sets <NAME>_IN (inbound port), <NAME>_ADMIN, and <NAME>_OUT (first outbound port, if any).
start_workload() {
  local name="$1" sa="$2" app_port="$3" extra="${4:-}"
  ctl token create --namespace default --service-account "$sa" --ttl 10m >"$WORK/$name.token" || fail "token create for $name"
  cat >"$WORK/$name.yaml" <<YAML
workload: {name: $name, namespace: default, serviceAccount: $sa, labels: {app: $name}}
accessLog: $WORK/$name-access.log
workers: 1
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $app_port, protocol: http}
admin: {port: 0, address: 127.0.0.1}
$extra
YAML
  start_proxy "$name"
}

# start_proxy NAME: (re)starts NAME's proxy from its existing config, token and state dir.
start_proxy() {
  local name="$1"
  : >"$WORK/$name.out"
  start "$name" "$PROXY_BIN" --config "$WORK/$name.yaml" --control-plane "$CP_ADDR" \
    --ca-bundle "$DATA/ca/root-cert.pem" --token-file "$WORK/$name.token" --state-dir "$WORK/$name-state" \
    --bootstrap-timeout 20
  local port
  eval "${name}_PID=$LAST_PID"
  port=$(port_of "$WORK/$name.out" '^listening inbound\[0\] ') || exit 1
  eval "${name}_IN=$port"
  port=$(port_of "$WORK/$name.out" '^listening admin ') || exit 1
  eval "${name}_ADMIN=$port"
  if grep -q "outbound:" "$WORK/$name.yaml"; then
    port=$(port_of "$WORK/$name.out" '^listening outbound\[0\] ') || exit 1
    eval "${name}_OUT=$port"
  fi
}

# wait_status URL EXPECTED [curl args]: polls (bounded: ~5 s) until the status is EXPECTED; prints
# the milliseconds it took.
wait_status() {
  local url="$1" want="$2" start_ms got
  shift 2
  start_ms=$(date +%s%3N)
  for _ in $(seq 1 100); do
    got="$(http_status "$url" "$@")"
    if [ "$got" = "$want" ]; then
      echo $(($(date +%s%3N) - start_ms))
      return 0
    fi
    sleep 0.05
  done
  fail "timed out waiting for $url to answer $want (last: $got)"
}

# plaintext_refused PORT: curl gets no HTTP response at all (connection closed/reset: exit 52/56).
plaintext_refused() {
  local rc=0
  curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$1/status/200" || rc=$?
  [ "$rc" = 52 ] || [ "$rc" = 56 ]
}
