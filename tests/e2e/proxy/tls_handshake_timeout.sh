#!/usr/bin/env bash
# A TLS handshake that never completes is cut off at the header deadline on both sides: a client
# that sends the start of a ClientHello to a STRICT port and stalls has its connection closed (and
# refused in the access log as tls_handshake_failed), and a client proxy whose upstream accepts the
# TCP connection but never answers the handshake answers 503 instead of waiting forever. No
# wall-clock assertion: each exchange must end well within its bound (10 s, the deadline is 300 ms).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

make_mesh_svids
start_app app APP

run_proxy server S_STRICT='inbound[0]' <<YAML
workload: {name: details, namespace: default, serviceAccount: details}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http, mtlsMode: STRICT}
limits: {headerTimeoutMs: 300}
accessLog: $WORK/server-access.log
workers: 1
YAML

# 1. A TLS record header and the first bytes of a ClientHello, then nothing.
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >"$WORK/partial-hello.bin"
rc=0
timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$S_STRICT"'; cat "$0" >&3; cat <&3 >/dev/null' \
  "$WORK/partial-hello.bin" || rc=$?
[ "$rc" -ne 124 ] || fail "a stalled server-side handshake was never cut off"
pass "a stalled ClientHello is closed at the header deadline"
wait_for_count "$WORK/server-access.log" '"reason":"tls_handshake_failed"' 1
pass "and refused in the access log as tls_handshake_failed"

# 2. An upstream that completes TCP (the kernel's backlog) but never reads or answers: the client
# proxy's handshake to it is cut off and the app gets a 503, not a hang.
python3 - "$WORK/silent.port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)  # never accept()s: connections wait in the backlog, ClientHellos unread
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(60)
PY
SILENT_PID=$!
for _ in $(seq 100); do [ -s "$WORK/silent.port" ] && break; sleep 0.05; done
SILENT=$(cat "$WORK/silent.port")
run_proxy client C_SILENT='outbound[0]' <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$SILENT", identities: ["$DETAILS"], protocol: http}
limits: {headerTimeoutMs: 300}
accessLog: $WORK/client-access.log
workers: 1
YAML
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$C_SILENT/details/1" || true)
expect_eq "$status" 503 "an upstream that never answers the handshake: 503, not a hang"
kill "$SILENT_PID" 2>/dev/null || true

# 3. The same server still serves a well-behaved mTLS client.
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$WORK/productpage-bundle.pem" \
  --cert "$WORK/productpage-chain.pem" --key "$WORK/productpage.key" -k "https://127.0.0.1:$S_STRICT/details/1")" \
  200 "a complete handshake after the stalls"
