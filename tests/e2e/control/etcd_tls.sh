#!/usr/bin/env bash
# Control-plane replicas on an etcd that requires TLS and client certificates (docs/ETCD.md:
# --etcd-cacert / --etcd-cert / --etcd-key), all on 127.0.0.1. Two replicas with the client
# certificate share the store (an apply through one is listed and enforced through the other; the
# shared token key reaches etcd sealed); a replica without a client certificate, one trusting
# another CA, and one speaking plaintext to the TLS port are each refused with a sentence naming
# etcd, within a bounded time, and write nothing. Skipped (exit 77) without etcd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd_lib.sh"

ETCD_BIN="$(command -v etcd || true)"
if [ -z "$ETCD_BIN" ]; then
  echo "skip: no etcd (Debian etcd-server; scripts/install-deps.sh)"
  exit 77
fi

# The etcd cluster's own PKI (an operator's, unrelated to the mesh CA): a CA, etcd's serving
# certificate for 127.0.0.1, a client certificate for the replicas; and a second CA that etcd
# does not trust, with a client certificate of its own.
PKI="$WORK/etcd-pki"
mkdir -p "$PKI" && chmod 700 "$PKI"
# issue NAME CA EXT...: a P-256 key and a certificate signed by CA (self-signed when CA is "self").
issue() {
  local name="$1" ca="$2"
  shift 2
  local ext="$PKI/$name.ext"
  printf '%s\n' "$@" >"$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name-key.pem" 2>/dev/null || fail "key $name"
  chmod 600 "$PKI/$name-key.pem"
  if [ "$ca" = self ]; then
    openssl req -x509 -new -key "$PKI/$name-key.pem" -subj "/CN=$name" -days 2 -sha256 \
      -extensions v3 -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat "$ext") \
      -out "$PKI/$name.pem" 2>/dev/null || fail "certificate $name"
  else
    openssl req -new -key "$PKI/$name-key.pem" -subj "/CN=$name" -out "$PKI/$name.csr" 2>/dev/null || fail "csr $name"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca-key.pem" -CAcreateserial \
      -days 2 -sha256 -extfile "$ext" -out "$PKI/$name.pem" 2>/dev/null || fail "certificate $name"
  fi
}
issue etcd-ca self "basicConstraints=critical,CA:true" "keyUsage=critical,keyCertSign,cRLSign"
# etcd's own gateway dials etcd with the serving certificate: it needs clientAuth as well.
issue server etcd-ca "subjectAltName=IP:127.0.0.1" "extendedKeyUsage=serverAuth,clientAuth"
issue client etcd-ca "extendedKeyUsage=clientAuth"
issue other-ca self "basicConstraints=critical,CA:true" "keyUsage=critical,keyCertSign,cRLSign"
issue other-client other-ca "extendedKeyUsage=clientAuth"

read -r CLIENT_PORT PEER_PORT <<<"$(free_ports 2)"
start etcd "$ETCD_BIN" --name e0 --data-dir "$WORK/etcd0" \
  --listen-client-urls "https://127.0.0.1:$CLIENT_PORT" --advertise-client-urls "https://127.0.0.1:$CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "e0=http://127.0.0.1:$PEER_PORT" --initial-cluster-state new \
  --cert-file "$PKI/server.pem" --key-file "$PKI/server-key.pem" \
  --client-cert-auth --trusted-ca-file "$PKI/etcd-ca.pem"
# etcd_curl PATH [ARGS...]: etcd's JSON gateway with the replicas' client certificate.
etcd_curl() {
  local path="$1"
  shift
  curl -s --max-time 5 --cacert "$PKI/etcd-ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" \
    "https://127.0.0.1:$CLIENT_PORT$path" "$@"
}
for _ in $(seq 1 200); do
  etcd_curl /health | grep -q '"true"' && break
  sleep 0.05
done
etcd_curl /health | grep -q '"true"' || fail "etcd (TLS, client-cert-auth) not healthy"
no_cert=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$PKI/etcd-ca.pem" \
  "https://127.0.0.1:$CLIENT_PORT/health" || true)
[ "$no_cert" != 200 ] || fail "etcd answered a client without a certificate: the test's etcd does not require them"
pass "etcd serves TLS on 127.0.0.1:$CLIENT_PORT and requires client certificates"

STORE="etcd://127.0.0.1:$CLIENT_PORT"
"$CTL_BIN" ca init --dir "$WORK/cacerts" --trust-domain cluster.local >/dev/null || fail "ca init"
REPLICA_FLAGS=(--etcd-cacert "$PKI/etcd-ca.pem" --etcd-cert "$PKI/client.pem" --etcd-key "$PKI/client-key.pem")

# refused NAME MESSAGE-PATTERN FLAGS...: a replica started with FLAGS exits non-zero on its own
# (bounded: 60 s) with a message matching MESSAGE-PATTERN, and writes no shared state locally.
refused() {
  local name="$1" pattern="$2" rc=0
  shift 2
  timeout 60 "$CONTROL_BIN" --data-dir "$WORK/$name" --listen 127.0.0.1:0 --store "$STORE" \
    --plug-in-ca "$WORK/cacerts" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
  [ "$rc" != 0 ] || fail "$name: the replica started"
  [ "$rc" != 124 ] || fail "$name: the replica hung (no answer within 60 s): $(tail -3 "$WORK/$name.err")"
  grep -qiE "$pattern" "$WORK/$name.err" || fail "$name: no clear error (want /$pattern/): $(tail -5 "$WORK/$name.err")"
  ! grep -q '^listening grpc ' "$WORK/$name.out" || fail "$name: the replica listened before its store was usable"
  [ ! -e "$WORK/$name/store.db" ] || fail "$name: fell back to a local store"
  pass "$name refused: $(grep -iE "$pattern" "$WORK/$name.err" | head -1)"
}
refused no-client-cert "etcd.*without a client certificate" --etcd-cacert "$PKI/etcd-ca.pem"
refused foreign-client-cert "etcd.*trusts the issuer of --etcd-cert" --etcd-cacert "$PKI/etcd-ca.pem" \
  --etcd-cert "$PKI/other-client.pem" --etcd-key "$PKI/other-client-key.pem"
refused wrong-roots "etcd.*certificate verify failed" --etcd-cacert "$PKI/other-ca.pem" \
  --etcd-cert "$PKI/client.pem" --etcd-key "$PKI/client-key.pem"
refused plaintext-to-tls "etcd.*needs --etcd-cacert"

# Two replicas with the client certificate (REPLICA_FLAGS).
start_replica 1
start_replica 2
pass "two replicas on etcd over TLS with a client certificate"

token_key=$(etcd_curl /v3/kv/range -X POST -d "{\"key\": \"$(printf '/meshguard/shared/token-key' | base64 -w0)\"}" |
  jq -r '.kvs[0].value' | base64 -d)
case "$token_key" in
  mg-sealed-v1:*) pass "the shared token key reached etcd (over TLS), sealed" ;;
  *) fail "the shared token key in etcd is missing or not sealed: ${token_key:0:40}" ;;
esac

# Proxies bootstrap through replica 1 with a token minted by replica 2; a policy applied through
# replica 2 is listed through replica 1 (its etcd watch, over TLS) and enforced by the proxies.
start_mesh_via "$R1"
deny_paths deny-admin "app: details" "/admin/*" >"$WORK/deny.yaml"
on 2 apply -f "$WORK/deny.yaml" >/dev/null || fail "apply through replica 2"
wait_listed 1 "name: deny-admin" ap deny-admin -n default
pass "applied through replica 2, listed through replica 1 (watch over TLS)"
wait_status "http://127.0.0.1:$sleep_OUT/admin/x" 403
expect_eq "$(http_status "http://127.0.0.1:$sleep_OUT/details/2")" 200 "other paths still allowed"
pass "the policy reached the proxies of replica 1"

# The resource is in etcd, readable with the client certificate only.
count=$(etcd_curl /v3/kv/range -X POST \
  -d "{\"key\": \"$(printf '/meshguard/' | base64 -w0)\", \"range_end\": \"$(printf '/meshguard0' | base64 -w0)\", \"count_only\": true}" |
  jq -r '.count // 0')
[ "${count:-0}" -gt 0 ] || fail "no keys under /meshguard/ in etcd"
pass "$count keys under /meshguard/ in the TLS etcd"
pass "all etcd TLS checks"
