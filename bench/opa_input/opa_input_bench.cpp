// opa_input_bench — what an OPAPolicy costs the server proxy per request, without TLS or sockets
// (docs/BENCHMARKS.md, issue 14). The policies are bench/dataplane/policies (the data-plane
// benchmark's own files): STRICT + ALLOW, plus the OPAPolicy in OPA's Envoy primer shape that
// verifies an HS256 token. The request is what the server proxy of that benchmark judges.
//   BM_DecideNoOpa    policy::decide() on STRICT + ALLOW: the mg_noopa row's decision
//   BM_DecideOpa      the same plus the OPAPolicy: the mg_opa row's decision (the difference is
//                     the in-proxy OPA cost the issue's ≤ 5 µs goal is about)
//   BM_OpaInput       policy::opa_input alone, the parts the snapshot's OPAPolicies read (as
//                     run_opa_policies builds it)
//   BM_OpaInputFull   policy::opa_input alone, the whole document
//   BM_OpaEvaluate    policy::evaluate_opa alone on that input (the Rego decision)
// Run (one line): opa_input_bench --benchmark_repetitions=3 --benchmark_min_time=0.5
//                  --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "crypto/openssl.h"
#include "jwt/base64url.h"
#include "policy/decide.h"
#include "policy/load.h"
#include "policy/opa.h"
#include "rego/engine.h"

namespace {

using namespace mg::policy;

const std::string kDir = MG_BENCH_POLICY_DIR;

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// As run.sh mints it: HS256 with the OPAPolicy's secret, role guest, an hour of validity.
std::string bench_token(int64_t now) {
  const std::string h = mg::jwt::base64url_encode(R"({"alg": "HS256", "typ": "JWT"})");
  const std::string p = mg::jwt::base64url_encode(R"({"sub": "bench-user", "role": "guest", "exp": )" +
                                                  std::to_string(now + 3600) + "}");
  return h + "." + p + "." +
         mg::jwt::base64url_encode(mg::crypto::hmac(EVP_sha256(), "bench-secret", h + "." + p));
}

// The server proxy's request model for `GET /details/1` from the client proxy (h2load's headers
// plus the client proxy's x-forwarded-proto), under mTLS.
Request bench_request(int64_t now) {
  Request r;
  r.destination_namespace = "bench";
  r.destination_labels = {{"app", "server"}};
  r.destination_service_account = "server";
  r.destination_port = 9080;
  r.source_principal = "cluster.local/ns/bench/sa/client";
  r.source_ip = "127.0.0.1";
  r.time = now;
  r.http = HttpRequest{"GET",
                       "/details/1",
                       "127.0.0.1:15001",
                       {{"host", "127.0.0.1:15001"},
                        {"user-agent", "h2load nghttp2/1.52.0"},
                        {"authorization", "Bearer " + bench_token(now)},
                        {"x-forwarded-proto", "http"}}};
  return r;
}

std::shared_ptr<const AuthzSnapshot> snapshot(bool with_opa, const Request& r) {
  std::vector<std::string> files = {kDir + "/allow.yaml", kDir + "/strict.yaml"};
  if (with_opa) files.push_back(kDir + "/opa_primer.yaml");
  auto set = load_resource_files(files);
  if (!set) {
    std::fprintf(stderr, "%s\n", set.error().message.c_str());
    return nullptr;
  }
  auto snap = compile_snapshot(*set, destination_workload(r), MeshConfig{});
  if (!snap) {
    std::fprintf(stderr, "%s\n", snap.error().message.c_str());
    return nullptr;
  }
  return *snap;
}

void run_decide(benchmark::State& state, bool with_opa) {
  const int64_t now = now_seconds();
  const Request r = bench_request(now);
  auto snap = snapshot(with_opa, r);
  if (!snap) return state.SkipWithError("the policies do not compile");
  if (with_opa && snap->opa_policies().size() != 1) return state.SkipWithError("expected one OPAPolicy");
  DecideIo io;
  const Decision first = decide(*snap, r, now, io);
  if (!first.allow || (with_opa && (first.opa.size() != 1 || first.opa[0].outcome != OpaOutcome::Allowed)))
    return state.SkipWithError("expected the request to be allowed");
  Request bad = r;
  bad.http->headers[2].second += "x";  // a broken signature must be refused, or the bench is wrong
  if (with_opa && decide(*snap, bad, now, io).allow) return state.SkipWithError("a bad token was allowed");
  for (auto _ : state) {
    Decision d = decide(*snap, r, now, io);
    benchmark::DoNotOptimize(d);
  }
}

void BM_DecideNoOpa(benchmark::State& state) { run_decide(state, false); }
void BM_DecideOpa(benchmark::State& state) { run_decide(state, true); }

OpaInputContext context(const AuthzSnapshot& s, int64_t now) {
  return {s.mesh().trust_domain, true, nullptr, now};
}

void run_input(benchmark::State& state, bool whole) {
  const int64_t now = now_seconds();
  const Request r = bench_request(now);
  auto snap = snapshot(true, r);
  if (!snap) return state.SkipWithError("the policies do not compile");
  const OpaInputContext c = context(*snap, now);
  const mg::rego::InputUse* use = whole ? nullptr : snap->opa_input_use();
  for (auto _ : state) {
    auto input = opa_input(r, c, use);
    benchmark::DoNotOptimize(input);
  }
}

void BM_OpaInput(benchmark::State& state) { run_input(state, false); }
void BM_OpaInputFull(benchmark::State& state) { run_input(state, true); }

void BM_OpaEvaluate(benchmark::State& state) {
  const int64_t now = now_seconds();
  const Request r = bench_request(now);
  auto snap = snapshot(true, r);
  if (!snap || snap->opa_policies().size() != 1) return state.SkipWithError("expected one OPAPolicy");
  const auto& policy = snap->opa_policies().front();
  auto input = opa_input(r, context(*snap, now), snap->opa_input_use());
  if (!input) return state.SkipWithError("no input document");
  if (evaluate_opa(policy, *input, now).outcome != OpaOutcome::Allowed)
    return state.SkipWithError("expected the OPAPolicy to allow");
  for (auto _ : state) {
    OpaEvaluation e = evaluate_opa(policy, *input, now);
    benchmark::DoNotOptimize(e);
  }
}

BENCHMARK(BM_DecideNoOpa);
BENCHMARK(BM_DecideOpa);
BENCHMARK(BM_OpaInput);
BENCHMARK(BM_OpaInputFull);
BENCHMARK(BM_OpaEvaluate);

}  // namespace

BENCHMARK_MAIN();
