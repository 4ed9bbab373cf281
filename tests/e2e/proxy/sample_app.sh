#!/usr/bin/env bash
# mg-sample-app alone: every endpoint, keep-alive, pipelining.
source "$(dirname "$0")/lib.sh"

start_app app APP
BASE="http://127.0.0.1:$APP"

expect_contains "$(curl -s --max-time 10 "$BASE/")" '"service": "mg-sample-app"' "GET /"
expect_contains "$(curl -s --max-time 10 "$BASE/ip")" '"origin": "127.0.0.1"' "GET /ip"
expect_contains "$(curl -s --max-time 10 -H 'X-Probe: 42' "$BASE/headers")" '"X-Probe": "42"' "GET /headers echoes headers"
expect_eq "$(http_status "$BASE/status/418")" 418 "GET /status/418"
expect_eq "$(http_status "$BASE/status/abc")" 400 "GET /status/abc"
expect_contains "$(curl -s --max-time 10 "$BASE/details/1")" '"author": "William Shakespeare"' "GET /details/1"
expect_eq "$(http_status "$BASE/nope")" 404 "unknown path"
expect_eq "$(curl -s --max-time 10 "$BASE/stream/4" | wc -l | tr -d ' ')" 4 "chunked /stream/4"
expect_contains "$(curl -s --max-time 10 --data-binary 'abc' "$BASE/anything")" '"length": 3' "POST /anything"

both=$(curl -sv --max-time 10 "$BASE/ip" "$BASE/headers" 2>&1)
expect_contains "$both" "Re-using existing connection" "keep-alive reuses the connection"

printf 'GET /status/201 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$WORK/pipelined"
out=$(raw_exchange "$APP" "$WORK/pipelined")
expect_contains "$out" "HTTP/1.1 201 Created" "pipelined request 1"
expect_contains "$out" "HTTP/1.1 202 Accepted" "pipelined request 2"
expect_contains "$(cat "$WORK/app.out")" "request GET /status/202" "app logs each request"
echo "PASS sample_app"
