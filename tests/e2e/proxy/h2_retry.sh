#!/usr/bin/env bash
# A refused HTTP/2 stream is retried (issue 15): an upstream that answers RST_STREAM
# REFUSED_STREAM, or a GOAWAY whose last-stream-id is below the stream, never processed the
# request (RFC 9113 §8.7), so the proxy sends it once more — on the same connection after a
# RST_STREAM, on a new one after a GOAWAY — for any method, its body replayed. The apps are
# h2_refusing_app.py (raw frames) behind inbound ports of protocol http2.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is required"
APP_PY="$(dirname "$0")/h2_refusing_app.py"

# start_refusing NAME MODE VAR
start_refusing() {
  start "$1" python3 "$APP_PY" --mode "$2"
  local port
  port=$(port_of "$WORK/$1.out" '^listening on 127\.0\.0\.1:[0-9]+$')
  printf -v "$3" '%s' "$port"
}
start_refusing rst rst RST_APP
start_refusing rst_post rst RST_POST_APP
start_refusing goaway goaway GOAWAY_APP
start_refusing all all ALL_APP

run_proxy proxy IN_RST='inbound[0]' IN_RST_POST='inbound[1]' IN_GOAWAY='inbound[2]' IN_ALL='inbound[3]' <<YAML
workload: {name: details, namespace: default, serviceAccount: details}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $RST_APP, protocol: http2}
  - {port: 0, address: 127.0.0.1, appPort: $RST_POST_APP, protocol: http2}
  - {port: 0, address: 127.0.0.1, appPort: $GOAWAY_APP, protocol: http2}
  - {port: 0, address: 127.0.0.1, appPort: $ALL_APP, protocol: http2}
accessLog: $WORK/access.log
workers: 1
YAML

req() { curl -s --max-time 10 -w ' %{http_code}' "$@" || true; }

# 1. RST_STREAM(REFUSED_STREAM) on the connection's first stream: the GET goes again, stream 3.
got=$(req --http2-prior-knowledge "http://127.0.0.1:$IN_RST/a")
wait_for_line "$WORK/rst.out" '^refused conn=1 stream=1$' >/dev/null
expect_eq "$got" "conn=1 stream=3 body= 200" "GET refused with RST_STREAM(REFUSED_STREAM): retried on the same connection"
expect_eq "$(req --http2-prior-knowledge "http://127.0.0.1:$IN_RST/b")" "conn=1 stream=5 body= 200" "the next request uses the connection as usual"

# 2. A POST (HTTP/1.1 client, so also the HTTP/1.1 → h2c app path), refused the same way: its
# body goes again with the retry.
got=$(req -d 'replay-me' "http://127.0.0.1:$IN_RST_POST/post")
wait_for_line "$WORK/rst_post.out" '^refused conn=1 stream=1$' >/dev/null
expect_eq "$got" "conn=1 stream=3 body=replay-me 200" "POST refused with REFUSED_STREAM: retried with its body"

# 3. GOAWAY(last-stream-id 0) in answer to the first request: the stream was above it, so the
# request goes again on a new connection.
got=$(req --http2-prior-knowledge -d 'after-goaway' "http://127.0.0.1:$IN_GOAWAY/g")
wait_for_line "$WORK/goaway.out" '^goaway conn=1 stream=1$' >/dev/null
expect_eq "$got" "conn=2 stream=1 body=after-goaway 200" "POST above a GOAWAY's last-stream-id: retried on a new connection"

# 4. Once only: an app refusing every stream sees the request twice, and the client gets 503.
expect_eq "$(req --http2-prior-knowledge "http://127.0.0.1:$IN_ALL/x" -o /dev/null)" " 503" "a retry refused again: 503"
wait_for_line "$WORK/all.out" '^refused conn=1 stream=3$' >/dev/null
expect_eq "$(grep -c '^refused' "$WORK/all.out")" 2 "a refused request is retried once, not more"
