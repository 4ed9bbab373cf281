#!/usr/bin/env bash
# HTTP/2 timeouts (issue 15), with raw frames over bash /dev/tcp: a client that keeps its window
# shut (SETTINGS_INITIAL_WINDOW_SIZE 0) has its stream reset after the stall timeout (the header
# timeout) rather than holding the response in the proxy; a request body that stops has its stream
# reset after the idle timeout; an HTTP/2 connection with no stream open is closed after the idle
# timeout. No wall-clock assertion: each connection must end well within its bound.
source "$(dirname "$0")/lib.sh"

start_app app APP
run_proxy proxy IN='inbound[0]' <<YAML
workload: {name: details, namespace: default, serviceAccount: details}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
limits: {headerTimeoutMs: 300, idleTimeoutMs: 600}
accessLog: $WORK/access.log
workers: 1
YAML

PREFACE='PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
SETTINGS_ACK='\x00\x00\x00\x04\x01\x00\x00\x00\x00'
SETTINGS_EMPTY='\x00\x00\x00\x04\x00\x00\x00\x00\x00'  # the client preface's SETTINGS
# h2_session FILE FRAMES: sends the preface and FRAMES (printf escapes) on one connection and keeps
# reading until the proxy closes it; the bytes received go to FILE. Returns timeout's status.
h2_session() {
  local file="$1" frames="$2"
  timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$IN"'; printf "$0" >&3; cat <&3 >"$1"' \
    "$PREFACE$frames" "$file"
}
hex() { od -An -tx1 -v "$1" | tr -d ' \n'; }
# RST_STREAM on stream 1 with CANCEL (8): length 4, type 3, flags 0, stream 1, code 8.
RST_1_CANCEL=00000403000000000100000008

# 1. Window shut: GET /stream/999 (a 40 KB chunked body from the app) with a stream window of 0.
# HEADERS (END_STREAM|END_HEADERS) stream 1: :method GET, :scheme http, :path /stream/999, :authority a.
SETTINGS_WINDOW_0='\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00'
GET_STREAM='\x00\x00\x12\x01\x05\x00\x00\x00\x01\x82\x86\x44\x0b/stream/999\x41\x01a'
rc=0
h2_session "$WORK/stall.bin" "$SETTINGS_WINDOW_0$SETTINGS_ACK$GET_STREAM" || rc=$?
[ "$rc" -ne 124 ] || fail "zero-window stall: the connection was never closed"
expect_contains "$(hex "$WORK/stall.bin")" "$RST_1_CANCEL" "zero-window stall: the stream is reset (RST_STREAM CANCEL)"
pass "zero-window stall: then the idle connection is closed"

# 2. A request body that never comes: POST /anything without END_STREAM, no DATA.
POST_OPEN='\x00\x00\x10\x01\x04\x00\x00\x00\x01\x83\x86\x44\x09/anything\x41\x01a'
rc=0
h2_session "$WORK/body.bin" "$SETTINGS_EMPTY$SETTINGS_ACK$POST_OPEN" || rc=$?
[ "$rc" -ne 124 ] || fail "stalled request body: the connection was never closed"
expect_contains "$(hex "$WORK/body.bin")" "$RST_1_CANCEL" "stalled request body: the stream is reset after the idle timeout"

# 3. Nothing asked: the idle connection is closed (after our SETTINGS and nothing else).
rc=0
h2_session "$WORK/idle.bin" "$SETTINGS_EMPTY$SETTINGS_ACK" || rc=$?
[ "$rc" -ne 124 ] || fail "idle HTTP/2 connection never closed"
expect_not_contains "$(hex "$WORK/idle.bin")" "$RST_1_CANCEL" "idle connection: no stream to reset"
pass "an HTTP/2 connection with no stream is closed after the idle timeout"

# 4. The same proxy still serves a well-behaved client.
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --http2-prior-knowledge "http://127.0.0.1:$IN/stream/3")" 200 "a normal HTTP/2 request after the stalls"
