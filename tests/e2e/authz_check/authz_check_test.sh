#!/usr/bin/env bash
# Usage: authz_check_test.sh MESHGUARDCTL CASES_DIR
# Each case directory holds:
#   policies/            policy files (passed as one -f DIR; loaded sorted)
#   request.json         the request
#   args                 optional extra arguments (one line; @CASE@ stands for the case directory)
#   expect               the exact start of stdout, up to and including "rule":...,  (the contract's
#                        decision/status/policy/rule in their fixed order)
#   expect_contains      optional: lines that must each appear in stdout
#   expect_exit          optional: expected non-zero exit code ("nonzero" = any non-zero)
#   expect_stderr        optional: a substring of stderr (e.g. file:line)
set -u
CTL=$1
CASES=$2
pass=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL [$1]: $2"; failed=$((failed + 1)); }

for dir in "$CASES"/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  args=()
  [[ -f $dir/args ]] && read -r -a args < "$dir/args"
  args=("${args[@]//@CASE@/$dir}")
  "$CTL" authz check -f "$dir/policies" --request "$dir/request.json" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
  code=$?
  if [[ -f $dir/expect_exit ]]; then
    if [[ $code -eq 0 ]]; then fail "$name" "expected a non-zero exit, got 0 (stdout: $(cat "$tmp/out"))"; continue; fi
    if [[ -s $tmp/out ]]; then fail "$name" "bad input must print nothing on stdout"; continue; fi
    if [[ $(wc -l < "$tmp/err") -ne 1 ]]; then fail "$name" "expected one stderr line, got: $(cat "$tmp/err")"; continue; fi
  elif [[ $code -ne 0 ]]; then
    fail "$name" "exit $code: $(cat "$tmp/err")"; continue
  fi
  if [[ -f $dir/expect_stderr ]] && ! grep -qF -- "$(cat "$dir/expect_stderr")" "$tmp/err"; then
    fail "$name" "stderr lacks '$(cat "$dir/expect_stderr")': $(cat "$tmp/err")"; continue
  fi
  if [[ -f $dir/expect ]]; then
    want=$(cat "$dir/expect")
    got=$(cat "$tmp/out")
    if [[ $got != "$want"* ]]; then fail "$name" "stdout '$got' does not start with '$want'"; continue; fi
    if [[ $(wc -l < "$tmp/out") -ne 1 ]]; then fail "$name" "stdout must be one JSON line"; continue; fi
    # The six contract keys are always present.
    for key in decision status policy rule reason audit; do
      grep -q "\"$key\":" "$tmp/out" || { fail "$name" "missing key $key"; continue 2; }
    done
  fi
  if [[ -f $dir/expect_contains ]]; then
    while IFS= read -r line; do
      [[ -z $line ]] && continue
      grep -qF -- "$line" "$tmp/out" || { fail "$name" "stdout lacks '$line': $(cat "$tmp/out")"; continue 2; }
    done < "$dir/expect_contains"
  fi
  pass=$((pass + 1))
done

# Several -f (a file and a directory) merge into one set.
out=$("$CTL" authz check -f "$CASES/deny-path/policies/deny.yaml" -f "$CASES/allow-nothing/policies" \
      --request "$CASES/deny-path/request.json")
if [[ $out == '{"decision":"DENY","status":403,"policy":"foo/deny-headers","rule":0,'* ]]; then pass=$((pass + 1)); else fail multi-f "$out"; fi

# Bad flag values are bad input.
if "$CTL" authz check -f "$CASES/allow-nothing/policies" --request "$CASES/allow-nothing/request.json" \
     --path-normalization SOMETIMES >/dev/null 2>&1; then fail bad-mode "accepted"; else pass=$((pass + 1)); fi
if "$CTL" authz check -f "$CASES/missing-dir" --request "$CASES/allow-nothing/request.json" >/dev/null 2>&1; then
  fail missing-file "accepted"; else pass=$((pass + 1)); fi

# -o table explains: the policies that applied, per-rule verdicts, the decision.
table=$("$CTL" authz check -f "$CASES/deny-path/policies" --request "$CASES/deny-path/request.json" -o table)
for want in "DENY  foo/deny-headers" "rule 0: MATCH" "decision:        DENY status=403" "not applied:"; do
  grep -qF -- "$want" <<<"$table" || { fail table "lacks '$want': $table"; }
done
pass=$((pass + 1))

# analyze: stable codes, one line per finding.
analysis=$("$CTL" analyze -f "$CASES/analyze/policies")
for code in MG0001 MG0002 MG0003 MG0004; do
  grep -q "^$code warning " <<<"$analysis" || fail analyze "no $code in: $analysis"
done
if "$CTL" analyze -f "$CASES/analyze/policies" --fail-on-warning >/dev/null; then fail analyze "--fail-on-warning exited 0"; fi
pass=$((pass + 1))

# --jwks NAME=FILE: the key set a proxy would fetch. The jwks-flag case gives it for the rule's
# jwksUri (alice → 200 above); here bob → 403, a token of another key → 401, no --jwks → 401 with
# a reason naming the flag, and a rule whose keys come by OpenID discovery takes them by issuer.
J=$CASES/jwks-flag
URI_KEYS="https://issuer.example/keys?set=current=$J/jwks.json"
check_jwks() {  # NAME WANT_PREFIX ARGS...
  local name=$1 want=$2
  shift 2
  local got
  got=$("$CTL" authz check "$@" 2>&1)
  if [[ $got == "$want"* ]]; then pass=$((pass + 1)); else fail "$name" "'$got' does not start with '$want'"; fi
}
check_jwks jwks-bob '{"decision":"DENY","status":403,"policy":null,"rule":null,"reason":"denied: ALLOW policies apply to the workload but none matched"' \
  -f "$J/policies" --request "$J/request-bob.json" --jwks "$URI_KEYS"
check_jwks jwks-other-key '{"decision":"DENY","status":401,"policy":"foo/jwt"' \
  -f "$J/policies" --request "$J/request-other-key.json" --jwks "$URI_KEYS"
check_jwks jwks-none '{"decision":"DENY","status":401,"policy":"foo/jwt"' -f "$J/policies" --request "$J/request.json"
"$CTL" authz check -f "$J/policies" --request "$J/request.json" | grep -qF \
  'give them with --jwks NAME=FILE for https://issuer.example/keys?set=current' || fail jwks-none "the reason does not name --jwks"
mkdir -p "$tmp/discovery"
grep -v '^    jwksUri:' "$J/policies/jwt.yaml" >"$tmp/discovery/jwt.yaml"
check_jwks jwks-discovery '{"decision":"ALLOW","status":200,"policy":"foo/only-alice"' \
  -f "$tmp/discovery" --request "$J/request.json" --jwks "https://issuer.example=$J/jwks.json"
check_jwks jwks-discovery-bob '{"decision":"DENY","status":403' \
  -f "$tmp/discovery" --request "$J/request-bob.json" --jwks "https://issuer.example=$J/jwks.json"
check_jwks jwks-unknown-name "meshguardctl: --jwks https://issuer.example/keys?set=current: no jwtRule fetches keys" \
  -f "$tmp/discovery" --request "$J/request.json" --jwks "$URI_KEYS"
check_jwks jwks-not-a-file "meshguardctl: --jwks https://issuer.example/keys?set=current: $J/nothing.json" \
  -f "$J/policies" --request "$J/request.json" --jwks "https://issuer.example/keys?set=current=$J/nothing.json"

# analyze refuses an OPAPolicy whose module does not compile, pointing into the file.
if out=$("$CTL" analyze -f "$CASES/opa-broken-module/policies" 2>&1); then fail analyze-opa "exited 0: $out"
elif ! grep -qF "broken.yaml:14:7: OPAPolicy default/broken: spec.policy: rego_unsafe_var_error" <<<"$out"; then
  fail analyze-opa "no file:line:col in: $out"
else pass=$((pass + 1)); fi

# -o table lists the OPAPolicies evaluated and their outcome.
table=$("$CTL" authz check -f "$CASES/opa-walkthrough-wrong-role/policies" \
        --request "$CASES/opa-walkthrough-wrong-role/request.json" -o table)
for want in "OPA  default/productpage-opa — denied" "decision:        DENY status=403 — denied by OPAPolicy default/productpage-opa"; do
  grep -qF -- "$want" <<<"$table" || { fail table-opa "lacks '$want': $table"; }
done
pass=$((pass + 1))

echo "authz_check: $pass passed, $failed failed"
[[ $failed -eq 0 ]]
