#!/usr/bin/env bash
# End-to-end test of: meshguardctl ca init [--plug-in] | ca rotate | cert issue | cert inspect.
# Every issued certificate is cross-checked with the real openssl CLI.
# Usage: ca_cli_test.sh /path/to/meshguardctl
set -euo pipefail

CTL=${1:?usage: ca_cli_test.sh MESHGUARDCTL}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

PASS=0
FAILS=0
ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL - $*"; }
check() {  # check DESCRIPTION COMMAND...
  local desc=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$desc"; else bad "$desc"; fi
}
mode_of() { stat -c %a "$1"; }
count_certs() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1"; }

# expect_refusal DESCRIPTION COMMAND...: non-zero exit, exactly one "meshguardctl: " line on stderr.
expect_refusal() {
  local desc=$1; shift
  local rc=0
  "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
  local lines
  lines=$(wc -l <"$WORK/err.txt")
  if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && grep -q '^meshguardctl: ' "$WORK/err.txt"; then
    ok "$desc ($(cat "$WORK/err.txt"))"
  else
    bad "$desc: rc=$rc, stderr lines=$lines: $(cat "$WORK/err.txt")"
  fi
}

TD=cluster.local
ID=spiffe://cluster.local/ns/default/sa/sleep

# --- ca init (self-signed, default ECDSA P-256) ---------------------------------------------------
"$CTL" ca init --dir ca --trust-domain "$TD" >/dev/null
for f in root-cert.pem ca-cert.pem ca-key.pem cert-chain.pem; do check "ca init writes $f" test -s "ca/$f"; done
check "ca-key.pem is 0600" test "$(mode_of ca/ca-key.pem)" = 600
check "self-signed: ca-cert.pem == root-cert.pem" cmp ca/ca-cert.pem ca/root-cert.pem
check "self-signed: cert-chain.pem holds the CA cert" cmp ca/ca-cert.pem ca/cert-chain.pem
check "root key is EC P-256" bash -c "openssl x509 -in ca/ca-cert.pem -noout -text | grep -q 'NIST CURVE: P-256'"
check "root is CA:TRUE" bash -c "openssl x509 -in ca/ca-cert.pem -noout -text | grep -q 'CA:TRUE'"
check "openssl verifies the root against itself" openssl verify -CAfile ca/root-cert.pem ca/ca-cert.pem

# --- cert issue ------------------------------------------------------------------------------------
"$CTL" cert issue --ca-dir ca --spiffe-id "$ID" --out w1 --ttl 1h >/dev/null
check "cert issue writes key.pem 0600" test "$(mode_of w1/key.pem)" = 600
check "cert-chain.pem is leaf + CA" test "$(count_certs w1/cert-chain.pem)" = 2
check "root-cert.pem copied" cmp w1/root-cert.pem ca/root-cert.pem
check "openssl verify: leaf chains to the root" \
  openssl verify -CAfile w1/root-cert.pem -untrusted w1/cert-chain.pem w1/cert-chain.pem
openssl x509 -in w1/cert-chain.pem -noout -text >leaf.txt
check "openssl shows the URI SAN" grep -q "URI:$ID" leaf.txt
check "openssl shows exactly one URI SAN" test "$(grep -o 'URI:' leaf.txt | wc -l)" = 1
check "openssl shows SAN critical" grep -q "Subject Alternative Name: critical" leaf.txt
check "openssl shows CA:FALSE" grep -q "CA:FALSE" leaf.txt
check "openssl shows key usage critical" grep -q "Key Usage: critical" leaf.txt
check "openssl shows Digital Signature only" bash -c "grep -A1 'X509v3 Key Usage: critical' leaf.txt | tail -1 | grep -qx ' *Digital Signature'"
check "openssl shows EKU serverAuth+clientAuth" grep -q "TLS Web Server Authentication, TLS Web Client Authentication" leaf.txt
check "openssl shows SKI and AKI" bash -c "grep -q 'Subject Key Identifier' leaf.txt && grep -q 'Authority Key Identifier' leaf.txt"
check "key.pem matches the certificate" bash -c \
  "diff <(openssl x509 -in w1/cert-chain.pem -noout -pubkey) <(openssl pkey -in w1/key.pem -pubout)"
nb=$(date -d "$(openssl x509 -in w1/cert-chain.pem -noout -startdate | cut -d= -f2)" +%s)
na=$(date -d "$(openssl x509 -in w1/cert-chain.pem -noout -enddate | cut -d= -f2)" +%s)
check "--ttl 1h: validity is 1h plus the 5 min back-dating" test $((na - nb)) = 3900

# --- cert inspect ----------------------------------------------------------------------------------
"$CTL" cert inspect w1/cert-chain.pem --bundle w1/root-cert.pem -o json >inspect.json
check "inspect json: spiffeId" test "$(jq -r .spiffeId inspect.json)" = "$ID"
check "inspect json: verified" test "$(jq -r .verified inspect.json)" = true
check "inspect json: serial is upper-case hex" bash -c "jq -r .serial inspect.json | grep -Eq '^[0-9A-F]{1,34}$'"
check "inspect json: serial matches openssl" test "$(jq -r .serial inspect.json)" = \
  "$(openssl x509 -in w1/cert-chain.pem -noout -serial | cut -d= -f2)"
check "inspect json: RFC 3339 times" bash -c \
  "jq -r '.notBefore, .notAfter' inspect.json | grep -Eqx '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'"
check "inspect json: chain of 2" test "$(jq '.chain | length' inspect.json)" = 2
check "inspect json: fingerprint matches openssl" test "$(jq -r .sha256Fingerprint inspect.json)" = \
  "$(openssl x509 -in w1/cert-chain.pem -noout -fingerprint -sha256 | cut -d= -f2)"
check "inspect json: issuer names the root" bash -c "jq -r .issuer inspect.json | grep -q 'meshguard root CA'"
"$CTL" cert inspect w1/cert-chain.pem >inspect.txt
check "inspect table shows the SPIFFE ID" grep -q "SPIFFE ID: *$ID" inspect.txt
check "inspect without --bundle has no verdict" test "$("$CTL" cert inspect w1/cert-chain.pem -o json | jq 'has("verified")')" = false

"$CTL" ca init --dir other --trust-domain "$TD" >/dev/null
"$CTL" cert inspect w1/cert-chain.pem --bundle other/root-cert.pem -o json >wrong.json
check "inspect vs another CA's root: not verified" test "$(jq -r .verified wrong.json)" = false
check "inspect vs another CA's root: reason svid.chain_invalid" test "$(jq -r .reason wrong.json)" = svid.chain_invalid
"$CTL" ca init --dir foreign --trust-domain example.org >/dev/null
check "inspect vs a foreign trust domain: reason svid.wrong_trust_domain" test \
  "$("$CTL" cert inspect w1/cert-chain.pem --bundle foreign/root-cert.pem -o json | jq -r .reason)" = svid.wrong_trust_domain
check "inspect table says why not" bash -c "'$CTL' cert inspect w1/cert-chain.pem --bundle other/root-cert.pem | grep -q 'Verified: *no (svid.chain_invalid'"

# --- RSA CA ----------------------------------------------------------------------------------------
"$CTL" ca init --dir rsa --trust-domain "$TD" --key-type rsa-2048 >/dev/null
"$CTL" cert issue --ca-dir rsa --spiffe-id "$ID" --out w-rsa >/dev/null
check "rsa-2048 CA: openssl verify" openssl verify -CAfile w-rsa/root-cert.pem -untrusted w-rsa/cert-chain.pem w-rsa/cert-chain.pem
check "rsa-2048 CA: 2048-bit root" bash -c "openssl x509 -in rsa/ca-cert.pem -noout -text | grep -q 'Public-Key: (2048 bit)'"
check "rsa-2048 CA: sha256WithRSAEncryption leaf" bash -c \
  "openssl x509 -in w-rsa/cert-chain.pem -noout -text | grep -q 'Signature Algorithm: sha256WithRSAEncryption'"

# --- ca rotate -------------------------------------------------------------------------------------
cp ca/root-cert.pem old-root.pem
"$CTL" ca rotate --dir ca >/dev/null
check "rotate: root-cert.pem holds new + old" test "$(count_certs ca/root-cert.pem)" = 2
check "rotate: old root still in the bundle" bash -c "grep -q \"\$(sed -n 2p old-root.pem)\" ca/root-cert.pem"
check "rotate: ca-key.pem still 0600" test "$(mode_of ca/ca-key.pem)" = 600
check "rotate: new ca-cert differs from the old root" bash -c "! cmp -s ca/ca-cert.pem old-root.pem"
check "rotate: old leaf still verifies (openssl, new bundle)" \
  openssl verify -CAfile ca/root-cert.pem -untrusted w1/cert-chain.pem w1/cert-chain.pem
check "rotate: old leaf still verifies (inspect)" test \
  "$("$CTL" cert inspect w1/cert-chain.pem --bundle ca/root-cert.pem -o json | jq -r .verified)" = true
"$CTL" cert issue --ca-dir ca --spiffe-id "$ID" --out w2 >/dev/null
check "rotate: new leaf verifies against the bundle" \
  openssl verify -CAfile ca/root-cert.pem -untrusted w2/cert-chain.pem w2/cert-chain.pem
check "rotate: new leaf chains to the new root, not the old one" bash -c \
  "! openssl verify -CAfile old-root.pem -untrusted w2/cert-chain.pem w2/cert-chain.pem"

# --- plug-in CA made with the openssl CLI ---------------------------------------------------------
mkdir op && cd op
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root-key.pem -out root-cert.pem \
  -subj "/O=Operator/CN=Operator Root" -days 3650 \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out inter.csr \
  -subj "/O=Operator/CN=Operator Intermediate" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >inter.ext
openssl x509 -req -in inter.csr -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -days 365 \
  -extfile inter.ext -out ca-cert.pem 2>/dev/null
cat ca-cert.pem root-cert.pem >cert-chain.pem
chmod 600 ca-key.pem
mkdir ../cacerts && cp ca-cert.pem ca-key.pem cert-chain.pem root-cert.pem ../cacerts/
cd ..
chmod 600 cacerts/ca-key.pem
"$CTL" ca init --dir plug --trust-domain "$TD" --plug-in cacerts >/dev/null
check "plug-in: four files written" bash -c "for f in root-cert ca-cert ca-key cert-chain; do test -s plug/\$f.pem || exit 1; done"
check "plug-in: ca-key.pem 0600" test "$(mode_of plug/ca-key.pem)" = 600
check "plug-in: ca-cert is the operator's intermediate" cmp plug/ca-cert.pem cacerts/ca-cert.pem
"$CTL" cert issue --ca-dir plug --spiffe-id "$ID" --out w-plug >/dev/null
check "plug-in: leaf chain is leaf + intermediate + root" test "$(count_certs w-plug/cert-chain.pem)" = 3
check "plug-in: openssl verify through the intermediate" \
  openssl verify -CAfile op/root-cert.pem -untrusted w-plug/cert-chain.pem w-plug/cert-chain.pem
check "plug-in: inspect verifies" test \
  "$("$CTL" cert inspect w-plug/cert-chain.pem --bundle w-plug/root-cert.pem -o json | jq -r .verified)" = true
expect_refusal "plug-in: rotate is refused" "$CTL" ca rotate --dir plug

# --- refusals: non-zero exit, one stderr line, nothing written ------------------------------------
expect_refusal "bad SPIFFE ID" "$CTL" cert issue --ca-dir ca --spiffe-id "spiffe://cluster.local/ns/a/../b" --out r1
check "bad SPIFFE ID: nothing written" test ! -e r1
expect_refusal "foreign trust domain" "$CTL" cert issue --ca-dir ca --spiffe-id "spiffe://evil.example/ns/a/sa/b" --out r2
check "foreign trust domain: nothing written" test ! -e r2
expect_refusal "missing CA dir" "$CTL" cert issue --ca-dir nope --spiffe-id "$ID" --out r3
check "missing CA dir: nothing written" test ! -e r3
expect_refusal "bad ttl" "$CTL" cert issue --ca-dir ca --spiffe-id "$ID" --out r4 --ttl 1y
check "bad ttl: nothing written" test ! -e r4

chmod 644 ca/ca-key.pem
expect_refusal "0644 CA key is refused" "$CTL" cert issue --ca-dir ca --spiffe-id "$ID" --out r5
check "0644 CA key: message says why and how to fix" grep -q "mode 0644.*chmod 600" err.txt
check "0644 CA key: nothing written" test ! -e r5
expect_refusal "0644 CA key: rotate refused" "$CTL" ca rotate --dir ca
chmod 600 ca/ca-key.pem

chmod 644 cacerts/ca-key.pem
expect_refusal "plug-in with a 0644 key" "$CTL" ca init --dir plug2 --trust-domain "$TD" --plug-in cacerts
check "plug-in with a 0644 key: nothing written" test ! -e plug2
chmod 600 cacerts/ca-key.pem
cp -r cacerts mismatch && cp ca/ca-key.pem mismatch/ca-key.pem && chmod 600 mismatch/ca-key.pem
expect_refusal "plug-in with a key that does not match" "$CTL" ca init --dir plug3 --trust-domain "$TD" --plug-in mismatch
check "plug-in mismatch: nothing written" test ! -e plug3
cp -r cacerts wrongroot && cp ca/root-cert.pem wrongroot/root-cert.pem
expect_refusal "plug-in whose ca-cert does not chain to root-cert" "$CTL" ca init --dir plug4 --trust-domain "$TD" --plug-in wrongroot
check "plug-in wrong root: nothing written" test ! -e plug4
expect_refusal "plug-in dir missing files" "$CTL" ca init --dir plug5 --trust-domain "$TD" --plug-in op/nope

expect_refusal "upper-case trust domain" "$CTL" ca init --dir bad-td --trust-domain Cluster.local
check "upper-case trust domain: nothing written" test ! -e bad-td
before=$(sha256sum ca/ca-key.pem)
expect_refusal "ca init over an existing CA" "$CTL" ca init --dir ca --trust-domain "$TD"
check "existing CA untouched" test "$(sha256sum ca/ca-key.pem)" = "$before"

printf -- '-----BEGIN CERTIFICATE-----\nnot base64!!\n-----END CERTIFICATE-----\n' >garbage.pem
expect_refusal "inspect malformed PEM" "$CTL" cert inspect garbage.pem
expect_refusal "inspect missing file" "$CTL" cert inspect does-not-exist.pem
expect_refusal "inspect with a malformed bundle" "$CTL" cert inspect w1/cert-chain.pem --bundle garbage.pem
expect_refusal "rotate a missing CA" "$CTL" ca rotate --dir nowhere
expect_refusal "unknown --key-type (ca init)" "$CTL" ca init --dir bad-kt --trust-domain "$TD" --key-type rsa-1024
check "unknown --key-type: nothing written" test ! -e bad-kt
expect_refusal "unknown --key-type (cert issue)" "$CTL" cert issue --ca-dir ca --spiffe-id "$ID" --out r6 --key-type dsa
check "unknown --key-type (cert issue): nothing written" test ! -e r6
expect_refusal "unknown -o format" "$CTL" cert inspect w1/cert-chain.pem -o yaml

echo "ca_cli e2e: $PASS passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
