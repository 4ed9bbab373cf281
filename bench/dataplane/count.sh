# shellcheck shell=bash
# bench/dataplane/count.sh — section "counts" of the data-plane benchmark (issues 13 and 15),
# sourced by run.sh (its helpers: start, stop_pid, forget, start_mg_pair, start_hap_pair,
# start_h2_app, record, median, …). Counts instead of times, so a shared and noisy machine gives
# the same answer twice:
#   system calls per request per hop   perf stat on each proxy (raw_syscalls:sys_enter and the
#                                       kinds the data path makes) over COUNT_REQUESTS requests;
#   instructions per request per hop    user space, valgrind --tool=callgrind: both proxies of a
#                                       pair run under it, counters zeroed after a warm-up and
#                                       dumped after COUNT_CG_REQUESTS requests.
# Chains, each beside HAProxy doing the same chain in the same run:
#   h1      h2load --h1 -c1 (one keep-alive connection, one request at a time) → client hop
#           ══mTLS══► server hop → mg-sample-app. meshguard twice: HTTP/2 between the proxies
#           (its default, UPGRADE: topology meshguard) and HTTP/1.1 between them like HAProxy's
#           pair (DO_NOT_UPGRADE: meshguard_h11).
#   h2      h2load -c1 -m100 (h2c, 100 concurrent streams on one connection) → client hop ══h2
#           over mTLS══► server hop → the h2c app (run.sh's start_h2_app).
#   opa     (issue 14) the h1 chain twice, every request carrying the section opa's JWT: without
#           OPA (meshguard_noopa) and with the OPAPolicy of OPA's Envoy primer at the server hop
#           (meshguard_opa) — what the in-proxy decision adds, in user-space instructions (the
#           whole request path: input document, JWT, evaluation, access log). Not turned into µs
#           here: the hop's CPU per request at a fixed rate is mostly kernel time and wake-ups that
#           callgrind does not count, so scaling by it overstates. No HAProxy row: it has no OPA.
# One connection keeps the counts free of the scheduling a loaded machine adds (how many requests
# one epoll_wait finds ready); they are the per-request cost of the code path itself.
# Knobs: COUNT_CHAINS="h1 h2 opa" (which chains) COUNT_REQUESTS=20000 (system calls) COUNT_CG_REQUESTS=2000 (callgrind, h1; the h2 rows
# take 5×) COUNT_CALLGRIND=1 (0: system calls only) COUNT_MG_ENV="" (environment for the meshguard
# proxies, e.g. LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 to compare allocators)
# COUNT_CG_KEEP=DIR (keep each hop's counted callgrind dump as DIR/TOPOLOGY.HOP.REP.out, for
# callgrind_annotate: where the instructions of a request go).

COUNT_REQUESTS="${COUNT_REQUESTS:-20000}"
COUNT_CG_REQUESTS="${COUNT_CG_REQUESTS:-2000}"
COUNT_CALLGRIND="${COUNT_CALLGRIND:-1}"
COUNT_TOPOS=(meshguard meshguard_h11 haproxy meshguard_h2 haproxy_h2 meshguard_noopa meshguard_opa)
read -ra COUNT_CHAINS <<<"${COUNT_CHAINS:-h1 h2 opa}"

# The system-call kinds shown one by one (the total is raw_syscalls:sys_enter).
COUNT_KINDS=(read write recvfrom sendto recvmsg sendmsg readv writev epoll_wait epoll_ctl timerfd_settime futex)

# count_start CHAIN REP: the processes of one chain (h1 or h2), wrapped in MG_WRAP / HAP_WRAP.
count_start() {
  local chain="$1" r="$2"
  if [ "$chain" = h1 ]; then
    start "app-count$r" "$APP_BIN" --listen 127.0.0.1:0
    APP_PID=$LAST_PID
    APP=$(port_of "$WORK/app-count$r.out" '^listening on 127\.0\.0\.1:[0-9]+$')
    start_mg_pair cnt "$r" "$WORK/policies" "$APP" http
    MG_H2_UPGRADE=DO_NOT_UPGRADE start_mg_pair cnt11 "$r" "$WORK/policies" "$APP" http
    start_hap_pair cnt "$r" "$APP" 0
    COUNT_PIDS=("${MG_PID[cnt.client]}" "${MG_PID[cnt.server]}" "${MG_PID[cnt11.client]}" "${MG_PID[cnt11.server]}"
      "${HAP_PID[cnt.client]}" "${HAP_PID[cnt.server]}" "$APP_PID")
  elif [ "$chain" = opa ]; then
    mkdir -p "$WORK/policies-count-opa"
    cp "$WORK/policies/allow.yaml" "$WORK/policies/strict.yaml" "$WORK/policies-count-opa/"
    cp "$HERE/policies/opa_primer.yaml" "$WORK/policies-count-opa/opa.yaml"
    start "app-count$r" "$APP_BIN" --listen 127.0.0.1:0
    APP_PID=$LAST_PID
    APP=$(port_of "$WORK/app-count$r.out" '^listening on 127\.0\.0\.1:[0-9]+$')
    start_mg_pair cntnoopa "$r" "$WORK/policies" "$APP" http
    start_mg_pair cntopa "$r" "$WORK/policies-count-opa" "$APP" http
    COUNT_PIDS=("${MG_PID[cntnoopa.client]}" "${MG_PID[cntnoopa.server]}" "${MG_PID[cntopa.client]}" "${MG_PID[cntopa.server]}"
      "$APP_PID")
  else
    start_h2_app "count$r"
    start_mg_pair cnth2 "$r" "$WORK/policies" "$H2APP" http2
    start_hap_pair cnth2 "$r" "$H2APP" 1
    COUNT_PIDS=("${MG_PID[cnth2.client]}" "${MG_PID[cnth2.server]}" "${HAP_PID[cnth2.client]}" "${HAP_PID[cnth2.server]}"
      "$H2APP_PID")
  fi
}
count_stop() {
  local pid
  for pid in "${COUNT_PIDS[@]}"; do
    stop_pid "$pid"
    forget "$pid"
  done
}

# count_topo TOPOLOGY: COUNT_URL, COUNT_PROCS ("client:pid server:pid") and COUNT_LOAD (h2load's
# shape and protocol options) of a topology of the running chain.
count_topo() {
  case "$1" in
    meshguard) COUNT_URL="http://127.0.0.1:${MG_PORT[cnt.client]}/details/1" COUNT_PROCS="client:${MG_PID[cnt.client]} server:${MG_PID[cnt.server]}" ;;
    meshguard_h11) COUNT_URL="http://127.0.0.1:${MG_PORT[cnt11.client]}/details/1" COUNT_PROCS="client:${MG_PID[cnt11.client]} server:${MG_PID[cnt11.server]}" ;;
    haproxy) COUNT_URL="http://127.0.0.1:${HAP_PORT[cnt.client]}/details/1" COUNT_PROCS="client:${HAP_PID[cnt.client]} server:${HAP_PID[cnt.server]}" ;;
    meshguard_h2) COUNT_URL="http://127.0.0.1:${MG_PORT[cnth2.client]}/details/1" COUNT_PROCS="client:${MG_PID[cnth2.client]} server:${MG_PID[cnth2.server]}" ;;
    haproxy_h2) COUNT_URL="http://127.0.0.1:${HAP_PORT[cnth2.client]}/details/1" COUNT_PROCS="client:${HAP_PID[cnth2.client]} server:${HAP_PID[cnth2.server]}" ;;
    meshguard_noopa) COUNT_URL="http://127.0.0.1:${MG_PORT[cntnoopa.client]}/details/1" COUNT_PROCS="client:${MG_PID[cntnoopa.client]} server:${MG_PID[cntnoopa.server]}" ;;
    meshguard_opa) COUNT_URL="http://127.0.0.1:${MG_PORT[cntopa.client]}/details/1" COUNT_PROCS="client:${MG_PID[cntopa.client]} server:${MG_PID[cntopa.server]}" ;;
  esac
  case "$1" in
    *_h2) COUNT_LOAD=(-t1 -c1 -m100) COUNT_SCALE=5 ;;
    *) COUNT_LOAD=(--h1 -t1 -c1 -m1) COUNT_SCALE=1 ;;
  esac
  # The OPAPolicy allows only a verified token; the same header on the row without it.
  case "$1" in *opa) COUNT_LOAD+=(-H "authorization: Bearer $BENCH_JWT") ;; esac
}
chain_of() { case "$1" in *_h2) echo h2 ;; *opa) echo opa ;; *) echo h1 ;; esac; }

# count_load N FILE: N requests through the current topology; prints how many got a 200. Fails
# when none did, or (STRICT=1) when any did not.
count_load() {
  timeout 600 h2load "${COUNT_LOAD[@]}" -n "$1" "$COUNT_URL" >"$2" 2>&1 || die "h2load -n $1 failed on $COUNT_URL: $(tail -n 20 "$2")"
  local ok
  ok=$(awk '/^status codes:/ { gsub(/,/, ""); print $3 }' "$2")
  if [ "${ok:-0}" -eq 0 ] || { [ "${STRICT:-1}" = 1 ] && [ "$ok" -ne "$1" ]; }; then
    die "h2load -n $1 on $COUNT_URL: ${ok:-0} answered 200: $(grep -E '^requests:|^status codes:' "$2" | tr '\n' ' ')"
  fi
  [ "$ok" -eq "$1" ] || log "  WARNING: $COUNT_URL: $((${1} - ok)) of $1 requests not answered 200 ($(grep -E '^requests:' "$2"))"
  echo "$ok"
}

count_syscalls() {
  local topo="$1" p perfs=() events n k
  count_topo "$topo"
  STRICT=0 count_load 500 "$WORK/count.warm.$REP.$topo" >/dev/null
  events="raw_syscalls:sys_enter"
  for k in "${COUNT_KINDS[@]}"; do events+=",syscalls:sys_enter_$k"; done
  for p in $COUNT_PROCS; do
    perf stat -x, -e "$events" -p "${p#*:}" -o "$WORK/count.perf.$REP.$topo.${p%%:*}" 2>/dev/null &
    perfs+=($!)
  done
  sleep 0.5
  n=$(count_load "$COUNT_REQUESTS" "$WORK/count.load.$REP.$topo")
  kill -INT "${perfs[@]}" 2>/dev/null || true
  wait "${perfs[@]}" 2>/dev/null || true
  for p in $COUNT_PROCS; do
    awk -F, -v n="$n" '$3 ~ /sys_enter/ { e = $3; sub(/^.*sys_enter_?/, "", e); if (e == "") e = "total"; printf "%s\t%.2f\n", e, $1 / n }' \
      "$WORK/count.perf.$REP.$topo.${p%%:*}" | while IFS=$'\t' read -r k v; do record "$topo.sc.${p%%:*}.$k" "$v"; done
  done
  log "  $topo: system calls per request client $(awk -F'\t' -v k="$topo.sc.client.total" -v r="$REP" '$1 == r && $2 == k { print $3 }' "$RESULTS"), server $(awk -F'\t' -v k="$topo.sc.server.total" -v r="$REP" '$1 == r && $2 == k { print $3 }' "$RESULTS")"
}

# callgrind_do PID ACTION: a callgrind_control action (-z, --dump) on a process that may sit in
# epoll_wait: vgdb wakes it; bounded.
callgrind_do() { timeout 60 callgrind_control "$2" "$1" >/dev/null 2>&1 || die "callgrind_control $2 $1 failed"; }
# A process's latest dump (cg.PID.out.1, .2, …: each holds the costs since the dump before it)
# and the instructions (Ir) in it.
last_dump_file() {
  local f last="" i=0
  for f in "$WORK"/cg."$1".out.*; do
    [ -e "$f" ] && [ "${f##*.}" -gt "$i" ] && i=${f##*.} last=$f
  done
  [ -n "$last" ] || die "no callgrind dump for pid $1"
  echo "$last"
}
last_dump_ir() { awk '/^(summary|totals):/ { print $2; exit }' "$(last_dump_file "$1")"; }

count_instructions() {
  local topo="$1" p n
  count_topo "$topo"
  # The warm-up opens the connections between the hops (TLS handshakes under valgrind are slow
  # enough for the first streams to fail): not counted, not required to succeed.
  STRICT=0 count_load $((200 * COUNT_SCALE)) "$WORK/count.cgwarm.$REP.$topo" >/dev/null
  for p in $COUNT_PROCS; do callgrind_do "${p#*:}" --dump=before; done
  # Divided by the requests answered 200 (all of them, unless the log says otherwise).
  n=$(STRICT=0 count_load $((COUNT_CG_REQUESTS * COUNT_SCALE)) "$WORK/count.cgload.$REP.$topo")
  for p in $COUNT_PROCS; do
    callgrind_do "${p#*:}" --dump=after
    record "$topo.ir.${p%%:*}" "$(awk -v a="$(last_dump_ir "${p#*:}")" -v n="$n" 'BEGIN { printf "%.0f", a / n }')"
    [ -z "${COUNT_CG_KEEP:-}" ] || cp "$(last_dump_file "${p#*:}")" "$COUNT_CG_KEEP/$topo.${p%%:*}.$REP.out"
  done
  log "  $topo: instructions per request client $(awk -F'\t' -v k="$topo.ir.client" -v r="$REP" '$1 == r && $2 == k { print $3 }' "$RESULTS"), server $(awk -F'\t' -v k="$topo.ir.server" -v r="$REP" '$1 == r && $2 == k { print $3 }' "$RESULTS")"
}

run_counts_section() {
  local chain topo
  command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || [ "$COUNT_CALLGRIND" = 0 ] ||
    die "section counts needs valgrind (COUNT_CALLGRIND=0 counts system calls only)"
  [ "$PERF_SYSCALLS" = 1 ] || die "section counts needs perf with the raw_syscalls tracepoint"
  for REP in $(seq 1 "$REPS"); do
    for chain in "${COUNT_CHAINS[@]}"; do
      log "counts repetition $REP/$REPS, chain $chain: system calls ($COUNT_REQUESTS requests per row)"
      MG_WRAP=()
      # shellcheck disable=SC2206 # COUNT_MG_ENV is NAME=VALUE words
      [ -n "${COUNT_MG_ENV:-}" ] && MG_WRAP=(env $COUNT_MG_ENV)
      count_start "$chain" "$REP"
      for topo in "${COUNT_TOPOS[@]}"; do [ "$(chain_of "$topo")" = "$chain" ] && count_syscalls "$topo"; done
      count_stop
      [ "$COUNT_CALLGRIND" = 1 ] || continue
      log "counts repetition $REP/$REPS, chain $chain: instructions under callgrind ($COUNT_CG_REQUESTS requests per h1 row, ×5 for h2)"
      HAP_WRAP=(valgrind --tool=callgrind "--callgrind-out-file=$WORK/cg.%p.out")
      MG_WRAP=("${HAP_WRAP[@]}")
      # shellcheck disable=SC2206
      [ -n "${COUNT_MG_ENV:-}" ] && MG_WRAP=(env $COUNT_MG_ENV "${HAP_WRAP[@]}")
      WAIT_TRIES=2400 # start-up under valgrind: ≤ 2 minutes
      count_start "$chain" "cg$REP"
      for topo in "${COUNT_TOPOS[@]}"; do [ "$(chain_of "$topo")" = "$chain" ] && count_instructions "$topo"; done
      count_stop
      MG_WRAP=() HAP_WRAP=() WAIT_TRIES=200
    done
  done
}

print_counts() {
  local t p k row
  echo "### Counted per request (section counts, issues 13 and 15)"
  echo
  echo "h1 rows: h2load --h1 -c1, $COUNT_REQUESTS requests (system calls) / $COUNT_CG_REQUESTS (callgrind); h2 rows: h2load -c1 -m100, $COUNT_REQUESTS / $((COUNT_CG_REQUESTS * 5)). Medians of $REPS."
  echo
  echo "| topology: hop | instructions / request | system calls / request | $(printf '%s | ' "${COUNT_KINDS[@]}")"
  echo "|---|---|---|$(printf '%s' "${COUNT_KINDS[@]/*/---|}")"
  for t in "${COUNT_TOPOS[@]}"; do
    [ -n "$(median "$t.sc.client.total")$(median "$t.ir.client")" ] || continue  # a chain not run
    for p in client server; do
      row="| $t: $p | $(fmt "$(median "$t.ir.$p")") | $(fmt "$(median "$t.sc.$p.total")" 2) |"
      for k in "${COUNT_KINDS[@]}"; do row+=" $(fmt "$(median "$t.sc.$p.$k")" 2) |"; done
      echo "$row"
    done
  done
  echo
  [ -n "$(median haproxy.ir.client)$(median haproxy.sc.client.total)" ] && echo "Ratios meshguard ÷ HAProxy (instructions, system calls), client / server hop:" \
    "h1 with HTTP/2 between $(ratio "$(median meshguard.ir.client)" "$(median haproxy.ir.client)") / $(ratio "$(median meshguard.ir.server)" "$(median haproxy.ir.server)")," \
    "$(ratio "$(median meshguard.sc.client.total)" "$(median haproxy.sc.client.total)") / $(ratio "$(median meshguard.sc.server.total)" "$(median haproxy.sc.server.total)");" \
    "h1 like for like $(ratio "$(median meshguard_h11.ir.client)" "$(median haproxy.ir.client)") / $(ratio "$(median meshguard_h11.ir.server)" "$(median haproxy.ir.server)")," \
    "$(ratio "$(median meshguard_h11.sc.client.total)" "$(median haproxy.sc.client.total)") / $(ratio "$(median meshguard_h11.sc.server.total)" "$(median haproxy.sc.server.total)");" \
    "h2 100 streams $(ratio "$(median meshguard_h2.ir.client)" "$(median haproxy_h2.ir.client)") / $(ratio "$(median meshguard_h2.ir.server)" "$(median haproxy_h2.ir.server)")," \
    "$(ratio "$(median meshguard_h2.sc.client.total)" "$(median haproxy_h2.sc.client.total)") / $(ratio "$(median meshguard_h2.sc.server.total)" "$(median haproxy_h2.sc.server.total)")."
  echo
  print_counts_opa
}

# What the OPAPolicy adds at the server hop, counted (and, with section opa in the run, in µs).
print_counts_opa() {
  local none opa added
  none=$(median meshguard_noopa.ir.server) opa=$(median meshguard_opa.ir.server)
  [ -n "$none" ] && [ -n "$opa" ] || return 0
  added=$(awk -v a="$opa" -v b="$none" 'BEGIN { printf "%.0f", a - b }')
  echo -n "OPAPolicy (OPA's Envoy primer) at the server hop adds $added instructions per request" \
    "($(awk -v a="$added" -v b="$none" 'BEGIN { printf "%+.1f%%", 100 * a / b }') of the hop's $none)"
  echo "."
  echo
}
