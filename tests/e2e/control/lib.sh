# Control-plane e2e helpers on top of the proxy suite's lib.sh (start/fail/pass/port_of/...).
# Arguments of every script: PROXY_BIN APP_BIN CONTROL_BIN CTL_BIN.
CONTROL_BIN="$3"
CTL_BIN="$4"
source "$(dirname "${BASH_SOURCE[0]}")/../proxy/lib.sh"

DATA="$WORK/cp-data"

# start_control [PORT]: starts meshguard-control on 127.0.0.1:PORT (0: any), sets CP_ADDR, CP_METRICS,
# CP_PID and the meshguardctl environment. CONTROL_ARGS (an array, optional) adds flags.
start_control() {
  local port="${1:-0}"
  : >"$WORK/control.out"
  start control "$CONTROL_BIN" --data-dir "$DATA" --listen "127.0.0.1:$port" --metrics 127.0.0.1:0 --debounce-ms 20 \
    ${CONTROL_ARGS[@]+"${CONTROL_ARGS[@]}"}
  CP_PID="$LAST_PID"
  CP_ADDR="127.0.0.1:$(port_of "$WORK/control.out" '^listening grpc ')"
  CP_METRICS="127.0.0.1:$(port_of "$WORK/control.out" '^listening metrics ')"
  export MESHGUARD_SERVER="$CP_ADDR" MESHGUARD_ADMIN_DIR="$DATA/admin"
}

ctl() { "$CTL_BIN" "$@"; }

# workload_resource NAME SA LABELS: prints a registered Workload default/NAME of service account SA
# with LABELS (a flow map's inside, e.g. "app: details").
workload_resource() {
  printf 'apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata: {name: %s, namespace: default}\n' "$1"
  printf 'spec:\n  serviceAccount: %s\n  labels: {%s}\n' "$2" "$3"
}

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
  printf -v "${name}_PID" '%s' "$LAST_PID"
  listen_ports "$name" "${name}_IN=inbound[0]" "${name}_ADMIN=admin"
  if grep -q "outbound:" "$WORK/$name.yaml"; then
    listen_ports "$name" "${name}_OUT=outbound[0]"
  fi
}

# start_details_and_sleep [PROTOCOL...]: one app behind two proxies, details and sleep; sleep's
# outbound routes (one per PROTOCOL, default http) lead to details over mTLS, naming DETAILS_ID.
# Sets APP, DETAILS_ID and, as start_workload does, details_* and sleep_*.
start_details_and_sleep() {
  local routes="outbound:" protocol
  [ $# -gt 0 ] || set -- http
  start_app app APP
  start_workload details details "$APP"
  DETAILS_ID=spiffe://cluster.local/ns/default/sa/details
  for protocol in "$@"; do
    routes+="
  - {listen: \"127.0.0.1:0\", destination: \"127.0.0.1:$details_IN\", identities: [\"$DETAILS_ID\"], protocol: $protocol}"
  done
  start_workload sleep sleep "$APP" "$routes"
}

# plaintext_refused PORT: curl gets no HTTP response at all (connection closed/reset: exit 52/56).
plaintext_refused() {
  local rc=0
  curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$1/status/200" || rc=$?
  [ "$rc" = 52 ] || [ "$rc" = 56 ]
}

# wait_refused PORT: polls (bounded: ~5 s) until plaintext_refused PORT; false if it never is.
wait_refused() {
  for _ in $(seq 1 100); do
    plaintext_refused "$1" && return 0
    sleep 0.05
  done
  return 1
}

# make_cacerts DIR TD: an operator's CA for trust domain TD in the Istio cacerts layout (as a mesh's
# spec.ca.pluginDir or --plug-in-ca wants it): a root and, signed by it, the intermediate that
# signs (its URI SAN spiffe://TD), ca-key.pem 0600. The root's key stays in DIR.root (not plugged in).
make_cacerts() {
  local dir="$1" td="$2" root="$1.root"
  mkdir -p "$dir" "$root"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$root/root-key.pem" \
    -out "$root/root-cert.pem" -subj "/O=Operator/CN=Root of $td" -days 3650 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
    fail "make_cacerts $dir: root"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ca-key.pem" -out "$root/ca.csr" \
    -subj "/O=Operator/CN=Intermediate of $td" 2>/dev/null || fail "make_cacerts $dir: CSR"
  printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" "subjectAltName=URI:spiffe://$td" >"$root/ca.ext"
  openssl x509 -req -in "$root/ca.csr" -CA "$root/root-cert.pem" -CAkey "$root/root-key.pem" -CAcreateserial \
    -days 365 -extfile "$root/ca.ext" -out "$dir/ca-cert.pem" 2>/dev/null || fail "make_cacerts $dir: intermediate"
  cat "$dir/ca-cert.pem" "$root/root-cert.pem" >"$dir/cert-chain.pem"
  cp "$root/root-cert.pem" "$dir/root-cert.pem"
  chmod 600 "$dir/ca-key.pem"
}
