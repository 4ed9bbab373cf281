#!/usr/bin/env bash
# Policy reloads and requests in flight (issue 15, docs/ARCHITECTURE.md "Policy reloads and live
# traffic"): an inbound HTTP/2 stream whose request carries a body is judged again at each publish
# while it is relayed, the same whether the app speaks HTTP/1.1 (port protocol http) or h2c
# (http2) — one the new policy denies is reset, its neighbours carry on; a bodiless HTTP/2 stream
# and an HTTP/1.1 request are judged once, when the head arrives (Envoy's RBAC rule), so one
# already relayed completes. Requests are held open as
# uploads fed from a FIFO, each once the proxy counted its authorization decision (a reload after
# that judges a registered stream again, whether it comes before or after the registration).
source "$(dirname "$0")/lib.sh"

start_app app APP
mkdir -p "$WORK/policies"
deny_paths deny-nothing "app: details" /nothing >"$WORK/policies/deny.yaml"

# An h2c app: a second proxy's plaintext port (HTTP/1.1 app behind it), without policies.
run_proxy h2app H2APP='inbound[0]' <<YAML
workload: {name: front, namespace: default, serviceAccount: front}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
workers: 1
YAML

# An h2c app that never answers (a proxy in front of a socket that accepts and stays silent): a
# bodiless GET to it stays in flight for as long as the test needs.
start silent python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
conns = [s.accept()]
time.sleep(60)'
SILENT=$(port_of "$WORK/silent.out" '^listening on 127\.0\.0\.1:[0-9]+$')
run_proxy h2silent H2SILENT='inbound[0]' <<YAML
workload: {name: silent, namespace: default, serviceAccount: silent}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $SILENT, protocol: http}
workers: 1
YAML

run_proxy proxy IN_HTTP='inbound[0]' IN_H2='inbound[1]' IN_SILENT='inbound[2]' ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
  - {port: 0, address: 127.0.0.1, appPort: $H2APP, protocol: http2}
  - {port: 0, address: 127.0.0.1, appPort: $H2SILENT, protocol: http2}
admin: {port: 0}
accessLog: $WORK/access.log
policyDir: $WORK/policies
workers: 1
YAML

decisions() {
  curl -s --max-time 10 "http://127.0.0.1:$ADMIN/metrics" |
    awk '/^meshguard_authz_decisions_total/ {n += $2} END {print n + 0}'
}
HELD=0
OPEN_FDS=""

# hold NAME URL [curl args]: an upload to URL fed from FIFO $WORK/NAME.fifo (kept open on a new fd,
# stored in FD_NAME) by a background curl whose -w status goes to $WORK/NAME.out; waits until the
# proxy judged it.
hold() {
  local name="$1" url="$2" fd
  shift 2
  mkfifo "$WORK/$name.fifo"
  # The curl keeps none of the other uploads' FIFOs open (their ends must reach EOF when closed).
  start "$name" env OPEN_FDS="$OPEN_FDS" bash -c 'for f in $OPEN_FDS; do eval "exec $f>&-"; done; exec curl "$@" <"$0"' \
    "$WORK/$name.fifo" -sv --max-time 60 -H 'Expect: 100-continue' -T - -o /dev/null -w '%{http_code}' "$@" "$url"
  printf -v "PID_$name" '%s' "$LAST_PID"
  exec {fd}>"$WORK/$name.fifo"  # waits for the curl to open its end
  printf -v "FD_$name" '%s' "$fd"
  OPEN_FDS="$OPEN_FDS $fd"
  printf 'part-one;' >&"$fd"
  HELD=$((HELD + 1))
  for _ in $(seq 1 200); do [ "$(decisions)" -ge "$HELD" ] && return 0; sleep 0.05; done
  fail "$name: the proxy never judged the request"
}
# ended NAME: waits (bounded: ~10 s) for that curl to exit; GOT becomes "exit:status".
ended() {
  local pid_var="PID_$1" rc=0
  for _ in $(seq 1 200); do kill -0 "${!pid_var}" 2>/dev/null || break; sleep 0.05; done
  kill -0 "${!pid_var}" 2>/dev/null && fail "$1: the held request never ended"
  wait "${!pid_var}" || rc=$?
  GOT="$rc:$(cat "$WORK/$1.out")"
}
# finish NAME: ends that upload's body (closes the FIFO's last writer).
finish() {
  local fd_var="FD_$1"
  eval "exec ${!fd_var}>&-"
}

H2=(--http2-prior-knowledge)
# A bodiless HTTP/2 GET to the silent h2c app, judged and in flight (started before the uploads:
# it must not inherit their FIFOs' write ends).
start get_h2 curl -s --max-time 60 -o /dev/null -w '%{http_code}' "${H2[@]}" "http://127.0.0.1:$IN_SILENT/anything/held"
PID_get_h2=$LAST_PID
HELD=$((HELD + 1))
for _ in $(seq 1 200); do [ "$(decisions)" -ge "$HELD" ] && break; sleep 0.05; done
[ "$(decisions)" -ge "$HELD" ] || fail "the bodiless GET was never judged"
wait_for_line "$WORK/silent.out" '^listening' >/dev/null
for _ in $(seq 1 200); do
  [ "$(ss -Htn state established "( sport = :$SILENT )" | wc -l)" -ge 1 ] && break
  sleep 0.05
done
[ "$(ss -Htn state established "( sport = :$SILENT )" | wc -l)" -ge 1 ] || fail "the GET never reached the silent app"
pass "a bodiless HTTP/2 GET to an h2c app is in flight"
hold h2_to_http "http://127.0.0.1:$IN_HTTP/anything/held" "${H2[@]}"
hold h2_to_h2 "http://127.0.0.1:$IN_H2/anything/held" "${H2[@]}"
hold h2_kept "http://127.0.0.1:$IN_HTTP/anything/kept" "${H2[@]}"
hold h1_to_http "http://127.0.0.1:$IN_HTTP/anything/held"
pass "four uploads held open (HTTP/2 to an HTTP/1.1 app, HTTP/2 to an h2c app, HTTP/2 on an allowed path, HTTP/1.1)"

deny_paths deny-held "app: details" /anything/held | put_file "$WORK/policies" deny.yaml
wait_for_count "$WORK/proxy.err" 'closing HTTP/2 stream from 127\.0\.0\.1:[0-9]+ on inbound\[[01]\]: no longer allowed after policy version 2' 2
wait_for_line "$WORK/proxy.err" 'closing HTTP/2 stream from .* on inbound\[0\]' >/dev/null
wait_for_line "$WORK/proxy.err" 'closing HTTP/2 stream from .* on inbound\[1\]' >/dev/null
pass "the denied HTTP/2 streams are closed after the reload, to the HTTP/1.1 app (inbound[0]) and to the h2c app (inbound[1])"
# (curl notices the reset when it next sends: the end of its upload.)
for name in h2_to_http h2_to_h2; do
  finish "$name"
  ended "$name"
  [ "${GOT%%:*}" != 0 ] || fail "$name: curl should see its stream reset, got '$GOT'"
  pass "$name: the client sees the stream reset (curl $GOT)"
done
expect_eq "$(grep '"event":"connection_closed_by_policy"' "$WORK/access.log" | grep -c '"protocol":"http2"')" 2 \
  "access log: two streams closed by the reload"
expect_eq "$(grep '"path":"/anything/held"' "$WORK/access.log" | grep -c '"response_code_details":"upgrade_closed_by_policy_reload"')" 2 \
  "access log: each closed stream's own line says how it ended"

# A bodiless stream was judged once, when it arrived (as an HTTP/1.1 request is), whatever the
# app speaks: still in flight, not reset, and no third closing in the log.
kill -0 "$PID_get_h2" 2>/dev/null || fail "the bodiless HTTP/2 GET ended with the reload"
expect_eq "$(grep -c 'closing HTTP/2 stream' "$WORK/proxy.err")" 2 "the reload closed only the two uploads, not the bodiless GET"
pass "the bodiless HTTP/2 GET to the h2c app is still in flight after the reload"

# The others were not touched: the allowed stream and the HTTP/1.1 request (judged once) complete.
finish h2_kept
ended h2_kept
expect_eq "$GOT" "0:200" "the HTTP/2 stream on an allowed path completes after the reload"
finish h1_to_http
ended h1_to_http
expect_eq "$GOT" "0:200" "the HTTP/1.1 request already relayed completes (judged once, when it arrived)"
expect_eq "$(http_status "http://127.0.0.1:$IN_HTTP/anything/held")" 403 "a new HTTP/1.1 request to the path is denied"
expect_eq "$(http_status "http://127.0.0.1:$IN_H2/anything/held" "${H2[@]}")" 403 "a new HTTP/2 stream to the path is denied"
echo "PASS reload_streams"
