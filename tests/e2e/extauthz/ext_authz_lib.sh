# Helpers of the CUSTOM (ext_authz) end-to-end scripts, sourced after tests/e2e/proxy/lib.sh: the
# test provider (server.cpp: HTTP and gRPC, its decision from the request's x-ext-authz header),
# Mesh extensionProviders entries for it and CUSTOM AuthorizationPolicies.

# start_authz_server SERVER_BIN: the provider, its logs in $WORK/authz; sets HTTP_AUTHZ and
# GRPC_AUTHZ to its two ports.
start_authz_server() {
  mkdir -p "$WORK/authz"
  start authz "$1" "$WORK/authz"
  HTTP_AUTHZ=$(wait_for_line "$WORK/authz.out" '^http [0-9]+$' | cut -d' ' -f2)
  GRPC_AUTHZ=$(wait_for_line "$WORK/authz.out" '^grpc [0-9]+$' | cut -d' ' -f2)
}

# http_provider NAME EXTRA-FIELDS: an extensionProviders entry (indented for a Mesh's list) for
# the provider's HTTP port: pathPrefix /check, timeout 1s, the x-ext-authz and x-incl-* headers
# sent, x-added-by-mesh added, its x-ext-authz-check-result / -user headers put on an allowed
# request and x-ext-authz-check-result on a denial; EXTRA-FIELDS are more lines of it.
http_provider() {
  cat <<YAML
  - name: $1
    envoyExtAuthzHttp:
      service: 127.0.0.1
      port: $HTTP_AUTHZ
      pathPrefix: /check
      timeout: 1s
      includeRequestHeadersInCheck: ["x-ext-authz", "x-incl-*"]
      includeAdditionalHeadersInCheck: {x-added-by-mesh: meshguard}
      headersToUpstreamOnAllow: ["x-ext-authz-check-result", "x-ext-authz-user"]
      headersToDownstreamOnDeny: ["x-ext-authz-check-result"]
$2
YAML
}

# custom NAME PROVIDER PATH-PREFIX [NAMESPACE [LABELS]]: a CUSTOM AuthorizationPolicy NAMESPACE/NAME
# (default: default) asking PROVIDER about requests whose path starts with PATH-PREFIX, selecting
# matchLabels LABELS (a flow map's inside; none: the whole namespace), followed by "---".
custom() {
  cat <<YAML
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: $1, namespace: ${4:-default}}
spec:
${5:+  selector: {matchLabels: {$5\}\}
}  action: CUSTOM
  provider: {name: $2}
  rules:
  - to:
    - operation: {paths: ["$3*"]}
---
YAML
}

# authz_count: the checks the provider answered, "http N grpc M".
authz_count() { curl -s --max-time 10 "http://127.0.0.1:$HTTP_AUTHZ/__count"; }
