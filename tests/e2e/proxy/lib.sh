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
  for _ in $(seq 1 200); do
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

start_app() {
  start "$1" "$APP_BIN" --listen 127.0.0.1:0
  port_of "$WORK/$1.out" '^listening on 127\.0\.0\.1:[0-9]+$'
}

# http_status URL [curl args...]: the status code (000 when no HTTP response came back).
http_status() {
  local url="$1"
  shift
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" || true
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
