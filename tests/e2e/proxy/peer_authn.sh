#!/usr/bin/env bash
# PeerAuthentication decides each inbound port's mTLS mode, hot-applied from policyDir:
# STRICT → plaintext refused at the connection (curl exit 52/56) while mTLS through an outbound
# proxy gets 200, and an open (idle) plaintext keep-alive connection is closed by the reload
# (never forwarded); portLevelMtls keyed by appPort; deleted → plaintext 200 again; a STRICT
# policy on a proxy without certificates refuses plaintext rather than falling back to it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certs.sh"

make_mesh_svids

start_app app APP
start_app app2 APP2
mkdir -p "$WORK/policies"
run_proxy server S_IN='inbound[0]' S_IN2='inbound[1]' S_ADMIN=admin <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
$(tls_yaml details)
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
  - {port: 0, address: 127.0.0.1, appPort: $APP2, protocol: http}
admin: {port: 0}
accessLog: $WORK/server-access.log
policyDir: $WORK/policies
workers: 2
YAML
run_proxy client C_OUT='outbound[0]' <<YAML
workload: {name: productpage, namespace: default, serviceAccount: productpage}
$(tls_yaml productpage)
outbound:
  - {listen: "127.0.0.1:0", destination: "127.0.0.1:$S_IN", identities: ["$DETAILS"], protocol: http}
workers: 1
YAML
dump() { curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/config_dump"; }

expect_eq "$(http_status "http://127.0.0.1:$S_IN/status/200")" 200 "no PeerAuthentication, certificates: PERMISSIVE accepts plaintext"
expect_eq "$(http_status "http://127.0.0.1:$C_OUT/status/200")" 200 "PERMISSIVE accepts mTLS"
expect_contains "$(dump)" '"mtlsModeSource": "default (no PeerAuthentication; certificates configured)"' "config_dump: mode source (default)"

# A plaintext keep-alive connection opened while the port is PERMISSIVE.
exec 3<>"/dev/tcp/127.0.0.1/$S_IN"
printf 'GET /status/200 HTTP/1.1\r\nHost: details\r\n\r\n' >&3
IFS= read -r -t 10 -u 3 status_line || fail "no response on the keep-alive connection"
expect_contains "$status_line" "HTTP/1.1 200" "keep-alive plaintext connection: first request 200"
while IFS= read -r -t 0.3 -u 3 _; do :; done || true  # rest of the response

peer_strict details-strict "app: details" | put_file "$WORK/policies" peer-authn.yaml
wait_for_line "$WORK/server.err" 'policy reloaded: version 2.*inbound\[0\] mTLS PERMISSIVE -> STRICT' >/dev/null
pass "reload logged the mode change"
expect_refused "http://127.0.0.1:$S_IN/strict-plaintext-marker" "STRICT hot-applied: plaintext refused at the connection"
expect_eq "$(http_status "http://127.0.0.1:$C_OUT/status/200")" 200 "STRICT: mTLS through the outbound proxy → 200"
headers=$(curl -s --max-time 10 "http://127.0.0.1:$C_OUT/headers")
expect_contains "$headers" "URI=$PRODUCTPAGE" "STRICT: the app sees the verified client identity"
# The plaintext keep-alive connection, idle when the port became STRICT, is closed by the reload
# itself (EOF without sending anything).
expect_eof 3 "idle plaintext keep-alive connection closed at the reload (EOF, no request needed)"
wait_for_line "$WORK/server-access.log" 'idle plaintext keep-alive connection closed' >/dev/null
pass "the close is in the access log"
expect_not_contains "$(cat "$WORK/app.out")" "marker" "no refused request reached the app"
d=$(dump)
expect_contains "$d" '"mtlsMode": "STRICT"' "config_dump: effective mode STRICT"
expect_contains "$d" '"mtlsModeSource": "PeerAuthentication default/details-strict"' "config_dump: decided by the PeerAuthentication"

# portLevelMtls is keyed by the app port: app2's port stays PERMISSIVE, app's is STRICT.
{ peer_strict details-strict "app: details"; printf '  portLevelMtls:\n    %s: {mode: PERMISSIVE}\n' "$APP2"; } |
  put_file "$WORK/policies" peer-authn.yaml
wait_for_line "$WORK/server.err" 'policy reloaded: version 3' >/dev/null
expect_eq "$(http_status "http://127.0.0.1:$S_IN2/status/200")" 200 "portLevelMtls (appPort $APP2) PERMISSIVE: plaintext 200"
expect_refused "http://127.0.0.1:$S_IN/status/200" "the other port stays STRICT"

rm -f "$WORK/policies/peer-authn.yaml"
wait_for_line "$WORK/server.err" 'policy reloaded: version 4.*inbound\[0\] mTLS STRICT -> PERMISSIVE' >/dev/null
expect_eq "$(http_status "http://127.0.0.1:$S_IN/status/200")" 200 "PeerAuthentication deleted: plaintext 200 again"
expect_contains "$(curl -s --max-time 10 "http://127.0.0.1:$S_ADMIN/metrics")" \
  'meshguard_connections_refused_total{direction="inbound",reason="plaintext_on_strict_port"}' "refusals counted"

# No tls section: STRICT from a PeerAuthentication refuses plaintext (never falls back to it).
mkdir -p "$WORK/nocert-policies"
peer_strict strict-ns | put_file "$WORK/nocert-policies" peer-authn.yaml
run_proxy nocert N_IN='inbound[0]' <<YAML
workload: {name: details, namespace: default, serviceAccount: details, labels: {app: details}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
policyDir: $WORK/nocert-policies
YAML
expect_refused "http://127.0.0.1:$N_IN/nocert-marker" "STRICT without certificates: plaintext refused"
expect_not_contains "$(cat "$WORK/app.out")" "nocert-marker" "…and never reached the app"
echo "PASS peer_authn"
