#!/usr/bin/env bash
# What a newcomer meets first (issue 18 items 7 and 8): every binary answers --version and --help
# (flags with defaults); `meshguardctl version` shows client and server; shell completion; an
# unreachable control plane is one sentence; token create checks DNS labels; `workload list` is
# aligned and its JSON has RFC 3339 times, upper-case serials and the proxy's version.
source "$(dirname "$0")/lib.sh"
export LC_ALL=C.UTF-8  # ${#var} counts characters: the table is aligned by characters

for bin in "$PROXY_BIN" "$APP_BIN" "$CONTROL_BIN" "$CTL_BIN"; do
  name=$(basename "$bin")
  expect_eq "$("$bin" --version)" "$name 0.1.0" "$name --version"
  help=$("$bin" --help) || fail "$name --help exits non-zero"
  expect_contains "$help" "--version" "$name --help lists its flags"
done
expect_contains "$("$CONTROL_BIN" --help)" "--listen TEXT=127.0.0.1:15012" "meshguard-control --help: defaults"
expect_contains "$("$PROXY_BIN" --help)" "(default: 30)" "meshguard-proxy --help: defaults"
expect_contains "$(ctl --help)" "Getting started" "meshguardctl --help: the newcomer's index"
expect_contains "$(ctl get --help)" "jsonpath=TEMPLATE" "meshguardctl get --help: output formats"

# --- unreachable / no control plane -------------------------------------------------------------
ctl version --client | grep -qx "Client Version: 0.1.0" || fail "version --client"
pass "version --client needs no control plane"
start_control
rc=0
err=$(ctl get all --server 127.0.0.1:1 2>&1) || rc=$?
expect_eq "$rc:$(echo "$err" | wc -l)" "1:1" "unreachable control plane: exit 1, one line"
expect_eq "$err" "meshguardctl: cannot reach the control plane at 127.0.0.1:1 (is meshguard-control running there? set --server or MESHGUARD_SERVER)" \
  "unreachable control plane: one clear sentence"

if [ ! -d /var/lib/meshguard-control/admin ]; then
  rc=0
  err=$(MESHGUARD_ADMIN_DIR= ctl get all 2>&1) || rc=$?
  expect_eq "$rc" 1 "no admin identity: exit 1"
  expect_contains "$err" "(default /var/lib/meshguard-control/admin, not present here)" "no admin identity: names the default"
fi

# --- version ------------------------------------------------------------------------------------
expect_eq "$(ctl version)" "Client Version: 0.1.0
Server Version: 0.1.0" "version: client and server"
expect_eq "$(ctl version -o json | jq -c .)" '{"clientVersion":"0.1.0","serverVersion":"0.1.0"}' "version -o json"

# --- completion ---------------------------------------------------------------------------------
# complete_words WORDS...: what bash completion offers after WORDS (the last one is being typed).
complete_words() {
  bash -c 'source <("$0" completion bash) || exit 1
           COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _meshguardctl; echo "${COMPREPLY[*]}"' "$CTL_BIN" meshguardctl "$@"
}
expect_contains "$(complete_words de)" "delete describe" "bash completion: commands"
expect_contains "$(complete_words get a)" "all ap authorizationpolicies" "bash completion: resource types after get"
expect_eq "$(complete_words workload l)" "list" "bash completion: sub-commands"
expect_contains "$(complete_words get -n foo --s)" "--selector --server" "bash completion: flags after a flag's value"
expect_contains "$(ctl completion zsh)" "bashcompinit" "zsh completion"
fish=$(ctl completion fish)
expect_contains "$fish" "-a describe" "fish completion: commands"
expect_contains "$fish" "__fish_seen_subcommand_from get' -l selector" "fish completion: flags"
if command -v fish >/dev/null; then fish -n <(echo "$fish") || fail "fish completion does not parse"; fi
if command -v zsh >/dev/null; then zsh -n <(ctl completion zsh) || fail "zsh completion does not parse"; fi

# --- token create: DNS labels, client- and server-side ------------------------------------------
for bad in "--namespace Default --service-account sleep" "--namespace default --service-account sleep_1" \
           "--namespace -x --service-account sleep"; do
  rc=0
  # shellcheck disable=SC2086
  err=$(ctl token create $bad 2>&1) || rc=$?
  expect_eq "$rc" 1 "token create $bad: refused"
  expect_contains "$err" "is not a DNS label" "token create $bad: says why"
done

# --- workload list: aligned, RFC 3339, upper-case serials ---------------------------------------
start_app app APP
start_workload details details "$APP"
workload_resource ratings ratings "app: ratings" | ctl apply -f - >/dev/null
for _ in $(seq 1 100); do
  ctl workload list -o json | jq -e '.[] | select(.name == "details" and .certSerial != "")' >/dev/null && break
  sleep 0.1
done
json=$(ctl workload list -o json)
rfc3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
echo "$json" | jq -r '.[] | select(.name == "details") | .certNotAfter, .lastSeen' | grep -Eqx "$rfc3339" ||
  fail "workload list -o json: times are not RFC 3339: $json"
pass "workload list -o json: RFC 3339 times"
expect_eq "$(echo "$json" | jq -r '.[] | select(.name == "ratings") | .lastSeen')" null "never seen: null"
echo "$json" | jq -r '.[] | select(.name == "details") | .certSerial' | grep -Eqx '[0-9A-F]+' ||
  fail "workload list: serial not upper-case hex"
pass "workload list: upper-case serial"
expect_eq "$(echo "$json" | jq -r '.[] | select(.name == "details") | .labels.app')" details "workload list: labels"
expect_eq "$(echo "$json" | jq -r '.[] | select(.name == "details") | .proxyVersion')" 0.1.0 "workload list: the proxy's version"
table=$(ctl workload list)
header=$(echo "$table" | head -1)
for col in CONNECTED EXPIRES REVISION SYNC "LAST SEEN" VERSION; do
  pre=${header%%"$col"*}
  while IFS= read -r row; do
    [ "${row:${#pre}-1:1}" = " " ] && [ "${row:${#pre}:1}" != " " ] ||
      fail "workload list: column $col not aligned in: $row"
  done < <(echo "$table" | tail -n +2)
done
pass "workload list: every column aligned (the serial's … counts as one character)"
