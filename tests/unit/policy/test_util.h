// Shared helpers for the policy tests: a request builder and a one-call "decide".
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "policy/decide.h"
#include "policy/parse.h"

namespace mg::policy::test {

struct Req {
  std::string ns = "default";
  std::map<std::string, std::string> labels{{"app", "details"}};
  std::string service_account = "bookinfo-details";
  uint32_t port = 9080;
  std::string dest_ip = "10.0.0.2";
  std::string principal = "cluster.local/ns/default/sa/sleep";
  std::string source_ip = "10.0.0.1";
  std::string sni;
  bool http = true;
  std::string method = "GET";
  std::string path = "/details/1";
  std::string host = "details:9080";
  std::vector<std::pair<std::string, std::string>> headers;

  Request build() const {
    Request r;
    r.destination_namespace = ns;
    r.destination_labels = labels;
    r.destination_service_account = service_account;
    r.destination_ip = dest_ip;
    r.destination_port = port;
    r.source_principal = principal;
    r.source_ip = source_ip;
    r.sni = sni;
    if (http) r.http = HttpRequest{method, path, host, headers};
    return r;
  }
};

inline ResourceSet must_parse(const std::string& yaml) {
  auto set = parse_resources(yaml, "test.yaml");
  EXPECT_TRUE(set) << (set ? "" : set.error().message);
  return set ? std::move(*set) : ResourceSet{};
}

struct Outcome {
  bool allow = false;
  int status = -1;
  std::string policy;
  int rule = -1;
  ReasonCode reason{};
  bool audit = false;
  std::vector<DryRunResult> dry_run;
  std::string text;
  std::shared_ptr<const AuthzSnapshot> snapshot;  // keeps the views above valid
  bool lacks_credential = false;
};

// Runs the full pipeline; with `auth`, the request-authentication step is replaced by `auth`
// (for JWT-authenticated cases until the jwt module's validator is wired in).
inline Outcome run(const std::string& yaml, const Req& req, const jwt::RequestAuth* auth = nullptr,
                   MeshConfig mesh = {}) {
  auto set = must_parse(yaml);
  const auto request = req.build();
  auto snap = compile_snapshot(set, destination_workload(request), mesh);
  EXPECT_TRUE(snap);
  Decision d;
  if (auth) {
    std::string path;
    if (request.http) {
      EXPECT_EQ(normalize_path(request.http->path, mesh.path_normalization, path), PathVerdict::Ok);
    }
    d = authorize(**snap, make_attributes(request, path, auth, true, mesh.num_trusted_proxies));
  } else {
    d = decide(**snap, request, 1700000000);
  }
  Outcome o{d.allow, d.status,  std::string(d.policy), d.rule, d.reason,
            d.audit, d.dry_run, describe(d),           *snap,  d.lacks_credential};
  return o;
}

inline jwt::RequestAuth authenticated(std::string iss, std::string sub, nlohmann::json claims = nlohmann::json::object()) {
  jwt::RequestAuth a;
  a.outcome = jwt::RequestAuth::Outcome::Authenticated;
  a.issuer = iss;
  a.subject = sub;
  a.principal = iss + "/" + sub;
  claims["iss"] = iss;
  claims["sub"] = sub;
  a.claims = claims;
  if (claims.contains("aud")) {
    if (claims["aud"].is_string()) a.audiences.push_back(claims["aud"]);
    else {
      for (const auto& x : claims["aud"]) a.audiences.push_back(x);
    }
  }
  if (claims.contains("azp")) a.presenter = claims["azp"];
  return a;
}

// An AuthorizationPolicy document in namespace `ns` (no selector) with the given spec body.
inline std::string ap(const std::string& name, const std::string& spec, const std::string& ns = "default",
                      const std::string& annotations = "") {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\n" + annotations + "spec:\n" + spec + "\n---\n";
}

}  // namespace mg::policy::test
