#!/usr/bin/env bash
# Who may get a certificate and who may administer: forged, foreign and misused tokens are refused,
# a token for one identity never yields another, workloads cannot use the admin API, and a proxy
# cannot speak for a registered Workload of another service account.
source "$(dirname "$0")/lib.sh"

start_control
start_app app APP

# bootstrap NAME NS SA TOKEN_TEXT: runs the proxy of workload NAME (namespace NS, service account
# SA) once, bootstrapping with TOKEN_TEXT (bounded: 30 s); returns its exit status.
bootstrap() {
  local name="$1"
  printf '%s\n' "$4" >"$WORK/$name.token"
  cat >"$WORK/$name.yaml" <<YAML
workload: {name: $name, namespace: $2, serviceAccount: $3, labels: {app: $name}}
inbound:
  - {port: 0, address: 127.0.0.1, appPort: $APP, protocol: http}
YAML
  timeout 30 "$PROXY_BIN" --config "$WORK/$name.yaml" --control-plane "$CP_ADDR" --ca-bundle "$DATA/ca/root-cert.pem" \
    --token-file "$WORK/$name.token" --state-dir "$WORK/$name-state" --bootstrap-timeout 3 \
    >"$WORK/$name.out" 2>"$WORK/$name.err"
}

# try_proxy NAME NS SA TOKEN_TEXT: a bootstrap that must fail and write no SVID; prints its stderr.
try_proxy() {
  local name="$1" rc=0
  bootstrap "$@" || rc=$?
  [ "$rc" != 0 ] || fail "$name: the proxy started"
  [ ! -e "$WORK/$name-state/cert-chain.pem" ] || fail "$name: a certificate was written"
  [ ! -e "$WORK/$name-state/key.pem" ] || fail "$name: a key was written"
  cat "$WORK/$name.err"
}

good=$(ctl token create --namespace default --service-account details --ttl 10m)
# A token minted by another control plane (another key, another CA).
"$CONTROL_BIN" --data-dir "$WORK/other-cp" --listen 127.0.0.1:0 >"$WORK/other.out" 2>"$WORK/other.err" &
OTHER=$!
PIDS+=("$OTHER")
OTHER_ADDR="127.0.0.1:$(port_of "$WORK/other.out" '^listening grpc ')"
foreign=$(MESHGUARD_SERVER="$OTHER_ADDR" MESHGUARD_ADMIN_DIR="$WORK/other-cp/admin" ctl token create --namespace default --service-account details)
expect_contains "$(try_proxy garbage default details "not-a-token")" "token.malformed" "garbage token refused"
expect_contains "$(try_proxy foreign default details "$foreign")" "token.bad_signature" "token from another control plane refused"
# Our header and claims under another key's signature.
forged="${good%.*}.${foreign##*.}"
expect_contains "$(try_proxy forged default details "$forged")" "token.bad_signature" "token with a forged signature refused"
# Claims edited (another service account) under the original signature.
header="${good%%.*}"
claims=$(echo "$good" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null || true)
edited=$(echo "$claims" | sed 's#/sa/details#/sa/admin#' | base64 -w0 | tr '/+' '_-' | tr -d '=')
expect_contains "$(try_proxy edited default admin "$header.$edited.${good##*.}")" "token.bad_signature" "token with edited claims refused"
# A token for default/details used by a proxy that claims another namespace: the CA issues only
# default/details (the token decides), and the agent refuses to run as something it is not.
crossns=$(try_proxy crossns payments details "$good")
expect_contains "$crossns" "agent.wrong_identity" "token for ns default cannot serve ns payments"
expect_contains "$crossns" "issued spiffe://cluster.local/ns/default/sa/details" "the CA signed only the identity the token names"

rc=0
err=$(ctl token create --namespace meshguard-system --service-account meshguard-admin 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a token for meshguard-system was minted"
expect_contains "$err" "reserved" "no token for the reserved meshguard-system namespace"

# A workload identity is not an admin.
start_workload details details "$APP"
rc=0
err=$(MESHGUARD_ADMIN_DIR="$WORK/details-state" ctl get all 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a workload SVID used the admin API"
expect_contains "$err" "PERMISSION_DENIED" "a workload SVID cannot use the admin API"
rc=0
err=$(MESHGUARD_ADMIN_DIR="$WORK/other-cp/admin" ctl get all 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "another control plane's admin was accepted"
pass "another control plane's admin identity is refused ($(echo "$err" | head -c 120))"

# A registered Workload binds its name to a service account.
workload_resource ratings ratings "app: ratings" >"$WORK/workload.yaml"
ctl apply -f "$WORK/workload.yaml" >/dev/null || fail "apply Workload"
imposter_token=$(ctl token create --namespace default --service-account details --ttl 10m)
rc=0
bootstrap ratings default details "$imposter_token" || rc=$?
[ "$rc" != 0 ] || fail "a proxy of service account details served the registered Workload ratings"
expect_contains "$(cat "$WORK/ratings.err")" "hello.wrong_service_account" "registered Workload: another service account is refused"
[ ! -e "$WORK/ratings-state/policies/snapshot.yaml" ] || [ ! -s "$WORK/ratings-state/policies/snapshot.yaml" ] || fail "the imposter received a snapshot"
pass "the imposter received no configuration"
echo "auth: all checks passed"
