# Helpers of the egress end-to-end scripts (issue 20), sourced after lib.sh and certs.sh: the
# workloads' client proxies and their apps' calls.

# client NAME SVID: a workload's proxy (namespace default, service account SVID) with a by-Host
# listener, on the policies in $WORK/client-policies; sets NAME_OUT to the listener's port.
client() {
  run_proxy "$1" "${1^^}_OUT=outbound[0]" <<YAML
workload: {name: $1, namespace: default, serviceAccount: $2}
$(tls_yaml "$2")
policyDir: $WORK/client-policies
outbound:
  - {listen: "127.0.0.1:0", protocol: http}
accessLog: $WORK/$1-access.log
YAML
}

# call PORT URL [curl args]: the app's plain HTTP request through its proxy's by-Host listener.
call() { curl -s --max-time 10 --connect-to "::127.0.0.1:$1" "${@:3}" "$2" || true; }
call_status() { call "$1" "$2" -o /dev/null -w '%{http_code}' "${@:3}"; }
