// Request input: the first byte picks the check.
//   odd:  the rest is a request path, normalized in every mode; the result must be a clean
//         absolute path (no dot segments; no "//" after merging);
//   even: the rest is request.json, parsed and decided against a fixed policy set (an OPAPolicy
//         among them, so the OPA input document is built from hostile paths, queries and
//         headers, and hostile header values come back in its result).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/decide.h"
#include "policy/parse.h"

namespace {

const mg::policy::ResourceSet& policies() {
  static const mg::policy::ResourceSet set = [] {
    auto r = mg::policy::parse_resources(R"(
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
  - when: [{key: "request.headers[x-evil]", values: ["*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: default}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/*"], remoteIpBlocks: ["10.0.0.0/8", "::1"]}}]
    to: [{operation: {hosts: ["*.svc"], methods: ["GET"], paths: ["/a", "/b*", "*c"]}}]
    when: [{key: "request.auth.claims[groups]", values: ["admin"]}]
  - to: [{operation: {ports: ["9080"]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  jwtRules: [{issuer: iss, jwksUri: "https://example.com/jwks"}]
---
apiVersion: meshguard.io/v1alpha1
kind: OPAPolicy
metadata: {name: opa, namespace: default}
spec:
  policy: |
    package envoy.authz

    http := input.attributes.request.http

    allow := {"allowed": true, "headers": {"x-user": http.headers["x-user"]},
              "request_headers_to_remove": object.keys(input.parsed_query)} if {
      count(input.parsed_path) < 8
      http.headers["x-user"]
    } else := {"allowed": false, "http_status": 418, "body": concat("/", input.parsed_path),
               "headers": {"x-path": http.path}}
)");
    if (!r) __builtin_trap();
    return std::move(*r);
  }();
  return set;
}

void check_path(std::string_view path) {
  using mg::policy::PathNormalization;
  std::string out;
  for (auto mode : {PathNormalization::None, PathNormalization::Base, PathNormalization::MergeSlashes,
                    PathNormalization::DecodeAndMergeSlashes}) {
    if (mg::policy::normalize_path(path, mode, out) != mg::policy::PathVerdict::Ok) continue;
    if (out.empty() || out.front() != '/') __builtin_trap();
    if (mode == PathNormalization::None) continue;
    const std::string wrapped = out + "/";
    if (wrapped.find("/./") != std::string::npos || wrapped.find("/../") != std::string::npos) __builtin_trap();
    if (mode != PathNormalization::Base && out.find("//") != std::string::npos) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    check_path(rest);
    return 0;
  }
  auto req = mg::policy::parse_request_json(rest);
  if (!req) return 0;
  auto snap = mg::policy::compile_snapshot(policies(), mg::policy::destination_workload(*req), mg::policy::MeshConfig{});
  if (!snap) __builtin_trap();
  (void)mg::policy::decide(**snap, *req, req->time.value_or(0));
  return 0;
}
