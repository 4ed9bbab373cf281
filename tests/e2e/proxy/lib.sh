# Shared helpers for the proxy end-to-end scripts. Every process started with `start` is killed
# by the EXIT trap; every wait is bounded.
set -euo pipefail

PROXY_BIN="$1"
APP_BIN="$2"
WORK="$(mktemp -d /tmp/mg-e2e-proxy.XXXXXX)"
PIDS=()

cleanup() {
  local rc=$? pid f
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # In sanitizer builds a report in any process's stderr fails the test.
  for f in "$WORK"/*.err; do
    [ -f "$f" ] || continue
    if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$f"; then
      echo "FAIL: sanitizer report in $f" >&2
      head -n 60 "$f" >&2
      rc=1
    fi
  done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"  # KEEP_WORK=1: keep the files for debugging
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.out "$WORK"/*.err "$WORK"/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 30 "$f" >&2
  done
  exit 1
}

pass() { echo "ok: $*"; }

# start NAME CMD...: runs CMD in the background with stdout/stderr in $WORK/NAME.{out,err}.
start() {
  local name="$1"
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=("$!")
  LAST_PID="$!"
}

# wait_for_line FILE REGEX: prints the first matching line (bounded: ~10 s).
wait_for_line() {
  local file="$1" regex="$2" line
  for _ in $(seq 1 600); do
    line="$(grep -m1 -E "$regex" "$file" 2>/dev/null || true)"
    if [ -n "$line" ]; then
      echo "$line"
      return 0
    fi
    sleep 0.05
  done
  fail "timed out waiting for /$regex/ in $file"
}

# port_of FILE REGEX: the port at the end of the first line matching REGEX.
port_of() { wait_for_line "$1" "$2" | sed -E 's/.*:([0-9]+)$/\1/'; }

# listen_ports NAME VAR=LISTENER...: sets each VAR to the port that proxy NAME printed for LISTENER
# (inbound[0], outbound[1], admin, ...).
listen_ports() {
  local name="$1" pair re port
  shift
  for pair in "$@"; do
    re="^listening ${pair#*=} "
    re="${re//\[/\\[}"
    re="${re//\]/\\]}"
    port=$(port_of "$WORK/$name.out" "$re") || exit 1
    printf -v "${pair%%=*}" '%s' "$port"
  done
}

# run_proxy NAME [VAR=LISTENER...] <<YAML: stdin becomes $WORK/NAME.yaml; starts a standalone proxy
# on it (LAST_PID is its pid) and sets each VAR as listen_ports does.
run_proxy() {
  local name="$1"
  shift
  cat >"$WORK/$name.yaml"
  start "$name" "$PROXY_BIN" --config "$WORK/$name.yaml"
  listen_ports "$name" "$@"
}

# run_details_proxy APP_PORT [YAML LINES]: run_proxy "proxy" for workload details (labels app:
# details) with one plaintext HTTP inbound to APP_PORT, admin, the access log $WORK/access.log and
# the policies in $WORK/policies, plus the YAML LINES; sets IN, ADMIN and BASE (the inbound's URL).
run_details_proxy() {
  run_proxy proxy IN='inbound[0]' ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $1, protocol: http}
admin: {port: 0}
accessLog: $WORK/access.log
policyDir: $WORK/policies
${2:-}
YAML
  BASE="http://127.0.0.1:$IN"
}

# start_app NAME VAR: the sample app as process NAME (stopped at exit, as everything `start`ed);
# VAR gets its port. Not in a $(…) subshell: the PID must reach this shell's PIDS.
start_app() {
  start "$1" "$APP_BIN" --listen 127.0.0.1:0
  local port
  port=$(port_of "$WORK/$1.out" '^listening on 127\.0\.0\.1:[0-9]+$')
  printf -v "$2" '%s' "$port"
}

# http_status URL [curl args...]: the status code (000 when no HTTP response came back).
http_status() {
  local url="$1"
  shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" || true
}

# wait_status URL EXPECTED [curl args]: polls (bounded: ~10 s) until the status is EXPECTED.
wait_status() {
  local url="$1" want="$2" got=""
  shift 2
  for _ in $(seq 1 600); do
    got="$(http_status "$url" "$@")"
    [ "$got" = "$want" ] && return 0
    sleep 0.05
  done
  fail "timed out waiting for $url to answer $want (last: $got)"
}

# expect_refused URL WHAT: a plaintext request gets no HTTP response at all: the connection is
# closed or reset (curl exit 52/56), not timed out and not answered.
expect_refused() {
  local rc=0
  curl -s -o /dev/null --max-time 10 "$1" || rc=$?
  case "$rc" in
    52 | 56) pass "$2 (curl exit $rc)" ;;
    *) fail "$2: expected curl exit 52 or 56, got $rc" ;;
  esac
}

# expect_eof FD WHAT: the peer has closed the connection on FD: the next read gets EOF (not data,
# not a 10 s timeout). FD is closed afterwards.
expect_eof() {
  local fd="$1" got="" rc=0
  IFS= read -r -t 10 -u "$fd" got || rc=$?
  expect_eq "$rc:$got" "1:" "$2"
  exec {fd}<&-
}

# raw_exchange PORT FILE: sends FILE's bytes on one connection, prints everything received until
# the server closes (bounded by 10 s).
raw_exchange() {
  local port="$1" file="$2"
  timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"'; cat "$0" >&3; cat <&3' "$file" || true
}

expect_contains() {
  local haystack="$1" needle="$2" what="$3"
  case "$haystack" in
    *"$needle"*) pass "$what" ;;
    *) fail "$what: expected to find '$needle' in: ${haystack:0:600}" ;;
  esac
}

expect_not_contains() {
  local haystack="$1" needle="$2" what="$3"
  case "$haystack" in
    *"$needle"*) fail "$what: did not expect '$needle' in: ${haystack:0:600}" ;;
    *) pass "$what" ;;
  esac
}

expect_eq() {
  if [ "$1" = "$2" ]; then pass "$3"; else fail "$3: expected '$2', got '$1'"; fi
}

# put_file DIR NAME: stdin becomes DIR/NAME atomically (temporary name + rename), as a policy
# writer must do for a watched directory.
put_file() {
  cat >"$1/.$2.tmp"
  mv -f "$1/.$2.tmp" "$1/$2"
}

# wait_for_count FILE REGEX N: waits (bounded: ~10 s) until FILE has at least N lines matching REGEX.
wait_for_count() {
  local file="$1" regex="$2" n="$3"
  for _ in $(seq 1 200); do
    [ "$(grep -cE "$regex" "$file" 2>/dev/null || true)" -ge "$n" ] && return 0
    sleep 0.05
  done
  fail "timed out waiting for $n line(s) /$regex/ in $file"
}

# wait_file PATH WHAT: waits (bounded: ~10 s) until PATH exists; fails saying WHAT did not happen.
wait_file() {
  for _ in $(seq 1 200); do
    [ -e "$1" ] && return 0
    sleep 0.05
  done
  fail "$2 (no $1 after 10 s)"
}

# policy_head KIND NAME [LABELS]: the first lines of a security.istio.io/v1 resource default/NAME, up
# to its selector: matchLabels LABELS (a flow map's inside, e.g. "app: details"); none: no selector
# (the whole namespace).
policy_head() {
  printf 'apiVersion: security.istio.io/v1\nkind: %s\nmetadata: {name: %s, namespace: default}\nspec:\n' "$1" "$2"
  [ -z "${3:-}" ] || echo "  selector: {matchLabels: {$3}}"
}

# deny_paths NAME LABELS PATH...: prints an AuthorizationPolicy default/NAME that DENYs requests to
# the PATHs (LABELS as in policy_head; "" for none).
deny_paths() {
  local name="$1" labels="$2" paths
  shift 2
  paths=$(printf '"%s", ' "$@")
  policy_head AuthorizationPolicy "$name" "$labels"
  echo "  action: DENY"
  echo "  rules: [{to: [{operation: {paths: [${paths%, }]}}]}]"
}

# peer_strict NAME [LABELS]: prints a PeerAuthentication default/NAME with mTLS mode STRICT.
peer_strict() {
  policy_head PeerAuthentication "$1" "${2:-}"
  echo "  mtls: {mode: STRICT}"
}

# broken_policy: prints a policy file whose YAML does not parse (metadata's flow map never closes).
broken_policy() {
  printf 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: default\nspec: {}\n'
}
