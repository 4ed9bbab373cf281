#!/usr/bin/env bash
# A gateway behind a PROXY-protocol balancer (issue 20): `gateway: {proxyProtocol: true}` makes the
# proxy read a v1 or v2 header first on every accepted connection, and the client address it gives
# is the direct peer — ipBlocks allow 192.0.2.0/24 and deny the rest by that address, never by the
# loopback socket the test actually connects from. A connection without a valid header is closed
# before anything reaches the app; v2 LOCAL (a balancer's health check) keeps the socket's address.
source "$(dirname "$0")/lib.sh"

start_app app APP
mkdir -p "$WORK/policies"
cat >"$WORK/policies/ip-allow.yaml" <<'YAML'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: edge-allow-list, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from: [{source: {ipBlocks: ["192.0.2.0/24", "2001:db8::/32"]}}]
YAML
run_details_proxy "$APP" "gateway: {proxyProtocol: true}"

# send NAME HEADER_PRINTF: a connection that writes the header (printf format) then a GET with
# Connection: close; prints the response.
send() {
  printf "$2" >"$WORK/$1.req"
  printf 'GET /status/200 HTTP/1.1\r\nHost: details\r\nX-Case: %s\r\nConnection: close\r\n\r\n' "$1" >>"$WORK/$1.req"
  raw_exchange "$IN" "$WORK/$1.req" 2>/dev/null  # a refused connection may end in a reset
}
status_of() { head -n1 <<<"$1" | tr -d '\r'; }

V2SIG='\r\n\r\n\0\r\nQUIT\n'
expect_eq "$(status_of "$(send v1_allowed 'PROXY TCP4 192.0.2.7 198.51.100.1 51000 443\r\n')")" "HTTP/1.1 200 OK" \
  "v1 TCP4 header from 192.0.2.7 → allowed by ipBlocks"
expect_eq "$(status_of "$(send v1_denied 'PROXY TCP4 203.0.113.9 198.51.100.1 51000 443\r\n')")" "HTTP/1.1 403 Forbidden" \
  "v1 TCP4 header from 203.0.113.9 → 403"
expect_eq "$(status_of "$(send v1_tcp6 'PROXY TCP6 2001:db8::9 2001:db8::1 4000 443\r\n')")" "HTTP/1.1 200 OK" \
  "v1 TCP6 header from 2001:db8::9 → allowed"
# v2 PROXY TCP4: 192.0.2.7:51000 → 198.51.100.1:443, then 203.0.113.9.
expect_eq "$(status_of "$(send v2_allowed "$V2SIG"'\x21\x11\x00\x0c\xc0\x00\x02\x07\xc6\x33\x64\x01\xc7\x38\x01\xbb')")" \
  "HTTP/1.1 200 OK" "v2 TCP4 header from 192.0.2.7 → allowed"
expect_eq "$(status_of "$(send v2_denied "$V2SIG"'\x21\x11\x00\x0c\xcb\x00\x71\x09\xc6\x33\x64\x01\xc7\x38\x01\xbb')")" \
  "HTTP/1.1 403 Forbidden" "v2 TCP4 header from 203.0.113.9 → 403"
# v2 LOCAL: the balancer's own connection; the socket's 127.0.0.1 is not in the allow-list.
expect_eq "$(status_of "$(send v2_local "$V2SIG"'\x20\x00\x00\x00')")" "HTTP/1.1 403 Forbidden" \
  "v2 LOCAL keeps the socket's address (127.0.0.1 → 403)"

# No header, or a malformed one: closed before any byte is answered or forwarded.
expect_eq "$(send no_header '')" "" "a request without a PROXY header gets no response"
expect_eq "$(send bad_v1 'PROXY TCP4 192.0.2.7 198.51.100.1 51000\r\n')" "" "a v1 header with a missing port gets no response"
expect_eq "$(send bad_v2 "$V2SIG"'\x21\x12\x00\x0c\xc0\x00\x02\x07\xc6\x33\x64\x01\xc7\x38\x01\xbb')" "" \
  "a v2 UDP header gets no response"
expect_eq "$(http_status "$BASE/status/200")" 000 "curl without a header gets no response"
for c in no_header bad_v1 bad_v2; do
  expect_not_contains "$(cat "$WORK/app.out")" "$c" "$c never reached the app"
done
wait_for_line "$WORK/access.log" '"proxy_protocol_invalid"' >/dev/null
expect_contains "$(grep proxy_protocol_invalid "$WORK/access.log")" "v1_bad_fields" \
  "the refusal is logged with the parser's reason"

# The access log names the header's client, not the loopback socket.
log=$(cat "$WORK/access.log")
expect_contains "$log" '192.0.2.7:51000' "the access log's downstream address is the header's client"
expect_contains "$log" '[2001:db8::9]:4000' "an IPv6 client is logged bracketed"
echo "PASS proxy_protocol"
