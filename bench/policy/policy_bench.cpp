// policy_bench — the authorization engine's cost as the mesh grows.
//
// A mesh of N AuthorizationPolicies spread over N/10 namespaces (about ten policies per
// namespace, as in a real mesh): workload-scoped ALLOW rules with principals, namespaces, prefix
// and suffix paths, methods and header conditions; namespace-wide DENY rules on exact admin paths;
// a few mesh-wide policies in the root namespace. Only the policies of one namespace (plus the
// mesh-wide ones) apply to the evaluated workload.
//   BM_Authorize/N         one decision on the compiled snapshot (engine only)
//   BM_DecidePipeline/N    the whole pipeline: peer authn, path normalization, authz
//   BM_Compile/N           selection + compilation of the workload's snapshot from N policies
//   BM_AuthorizeAllApply/N worst case: all N policies apply to the workload (exact-path rules are
//                          bucketed; one in ten uses a prefix path and is always visited)
// Run: policy_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <string>

#include "policy/decide.h"

namespace {

using namespace mg::policy;

std::string ns_name(int i) { return "ns-" + std::to_string(i); }

Source principals_from(int ns, int count) {
  Source s;
  for (int i = 0; i < count; ++i) {
    s.principals.push_back("cluster.local/ns/" + ns_name(ns) + "/sa/client-" + std::to_string(i));
  }
  return s;
}

// The policy mix; `k` is the policy's position, `namespaces` how many namespaces there are.
AuthorizationPolicy make_policy(int k, int namespaces) {
  AuthorizationPolicy p;
  const int ns = k % namespaces;
  const int svc = (k / namespaces) % 5;
  p.meta.ns = ns_name(ns);
  p.meta.name = "policy-" + std::to_string(k);
  Rule r;
  switch (k % 4) {
    case 0: {  // ALLOW callers by principal to a service's API prefix
      p.selector = {true, {{"app", "svc-" + std::to_string(svc)}}};
      r.from.push_back(principals_from(ns, 3));
      Operation op;
      op.methods = {"GET", "POST"};
      op.paths = {"/api/v1/svc-" + std::to_string(svc) + "/*", "*.json"};
      r.to.push_back(op);
      break;
    }
    case 1: {  // ALLOW a tenant header from other namespaces
      p.selector = {true, {{"app", "svc-" + std::to_string(svc)}}};
      Source s;
      s.namespaces = {ns_name((ns + 1) % namespaces), "team-*"};
      r.from.push_back(s);
      Condition c;
      c.key = "request.headers[x-tenant]";
      c.values = {"tenant-" + std::to_string(k), "gold-*"};
      r.when.push_back(c);
      break;
    }
    case 2: {  // namespace-wide DENY of admin paths unless from the ops namespace
      Source s;
      s.not_namespaces = {"ops"};
      r.from.push_back(s);
      Operation op;
      op.paths = {"/admin/" + std::to_string(k), "/debug/pprof"};
      r.to.push_back(op);
      p.action = Action::Deny;
      break;
    }
    default: {  // ALLOW health checks and metrics from anywhere in the mesh
      p.selector = {true, {{"app", "svc-" + std::to_string(svc)}}};
      Operation op;
      op.methods = {"GET"};
      op.paths = {"/healthz", "/metrics"};
      r.to.push_back(op);
      break;
    }
  }
  p.rules.push_back(r);
  return p;
}

ResourceSet make_mesh(int n) {
  ResourceSet set;
  const int namespaces = std::max(1, n / 10);
  for (int k = 0; k < n; ++k) set.authorization_policies.push_back(make_policy(k, namespaces));
  // Mesh-wide: deny a known-bad header; allow the ingress gateway's identity.
  AuthorizationPolicy deny;
  deny.meta = {"deny-bad-agent", "istio-system"};
  deny.action = Action::Deny;
  Rule r;
  Condition c;
  c.key = "request.headers[user-agent]";
  c.values = {"evil-bot", "sqlmap*"};
  r.when.push_back(c);
  deny.rules.push_back(r);
  set.authorization_policies.push_back(deny);
  PeerAuthentication strict;
  strict.meta = {"default", "istio-system"};
  strict.mode = MtlsMode::Strict;
  set.peer_authentications.push_back(strict);
  return set;
}

Request make_request() {
  Request r;
  r.destination_namespace = ns_name(0);
  r.destination_labels = {{"app", "svc-0"}, {"version", "v1"}};
  r.destination_port = 9080;
  r.destination_ip = "10.0.0.2";
  r.source_principal = "cluster.local/ns/ns-0/sa/client-2";
  r.source_ip = "10.0.0.1";
  r.http = HttpRequest{"POST", "/api/v1/svc-0/orders/17", "svc-0.ns-0.svc.cluster.local",
                       {{"user-agent", "curl/8.0"}, {"x-tenant", "tenant-9"}, {"accept", "*/*"}}};
  return r;
}

void BM_Authorize(benchmark::State& state) {
  const auto set = make_mesh(static_cast<int>(state.range(0)));
  const auto req = make_request();
  auto snap = compile_snapshot(set, destination_workload(req), MeshConfig{});
  std::string path;
  (void)normalize_path(req.http->path, PathNormalization::Base, path);
  const mg::jwt::RequestAuth none;
  const auto attrs = make_attributes(req, path, &none, true, /*num_trusted_proxies=*/0);
  if (!authorize(**snap, attrs).allow) state.SkipWithError("expected ALLOW");
  for (auto _ : state) {
    auto d = authorize(**snap, attrs);
    benchmark::DoNotOptimize(d);
  }
  state.counters["applicable_policies"] = static_cast<double>((*snap)->policies().size());
  state.counters["decisions/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_DecidePipeline(benchmark::State& state) {
  const auto set = make_mesh(static_cast<int>(state.range(0)));
  const auto req = make_request();
  auto snap = compile_snapshot(set, destination_workload(req), MeshConfig{});
  if (!decide(**snap, req, 0).allow) state.SkipWithError("expected ALLOW");
  for (auto _ : state) {
    auto d = decide(**snap, req, 0);
    benchmark::DoNotOptimize(d);
  }
  state.counters["decisions/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Compile(benchmark::State& state) {
  const auto set = make_mesh(static_cast<int>(state.range(0)));
  const auto req = make_request();
  const auto workload = destination_workload(req);
  for (auto _ : state) {
    auto snap = compile_snapshot(set, workload, MeshConfig{});
    benchmark::DoNotOptimize(snap);
  }
}

void BM_AuthorizeAllApply(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ResourceSet set;
  for (int k = 0; k < n; ++k) {
    AuthorizationPolicy p;
    p.meta = {"route-" + std::to_string(k), ns_name(0)};
    Rule r;
    r.from.push_back(principals_from(0, 2));
    Operation op;
    op.methods = {"GET"};
    op.paths = {k % 10 == 9 ? "/static/" + std::to_string(k) + "/*" : "/api/route/" + std::to_string(k)};
    r.to.push_back(op);
    p.rules.push_back(r);
    set.authorization_policies.push_back(p);
  }
  Request req = make_request();
  req.source_principal = "cluster.local/ns/ns-0/sa/client-1";
  req.http->method = "GET";
  req.http->path = "/api/route/" + std::to_string(n / 2);
  auto snap = compile_snapshot(set, destination_workload(req), MeshConfig{});
  std::string path = req.http->path;
  const mg::jwt::RequestAuth none;
  const auto attrs = make_attributes(req, path, &none, true, /*num_trusted_proxies=*/0);
  if (!authorize(**snap, attrs).allow) state.SkipWithError("expected ALLOW");
  for (auto _ : state) {
    auto d = authorize(**snap, attrs);
    benchmark::DoNotOptimize(d);
  }
}

BENCHMARK(BM_Authorize)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK(BM_DecidePipeline)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK(BM_Compile)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AuthorizeAllApply)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);

}  // namespace

BENCHMARK_MAIN();
