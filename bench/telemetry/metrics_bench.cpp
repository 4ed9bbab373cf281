// metrics_bench — what one proxied request costs in metric updates, with the label sets the
// proxy uses, on 1 and 2 threads sharing one Registry:
//   Locked:      every update finds its series under the registry's shared_mutex;
//   ThreadCache: the thread is bound with Registry::bind_thread_cache(), as the proxy's workers are.
// Run: build-f/bench/telemetry/metrics_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "telemetry/metrics.h"

namespace {

using mg::telemetry::Labels;
using mg::telemetry::Registry;

Registry& shared_registry() {
  static Registry* registry = new Registry();  // shared by the benchmark's threads; never freed
  return *registry;
}

const Labels& request_labels(int code) {
  static const Labels ok = {{"reporter", "destination"},
                            {"source_principal", "spiffe://cluster.local/ns/default/sa/sleep"},
                            {"destination_principal", "spiffe://cluster.local/ns/default/sa/details"},
                            {"destination_workload", "details"},
                            {"destination_workload_namespace", "default"},
                            {"request_protocol", "http"},
                            {"response_code", "200"},
                            {"response_flags", "-"},
                            {"connection_security_policy", "mutual_tls"}};
  static const Labels denied = [] {
    Labels l = ok;
    l[6].second = "403";
    return l;
  }();
  return code == 200 ? ok : denied;
}

const Labels& decision_labels() {
  static const Labels l = {
      {"action", "ALLOW"}, {"policy", "default/allow-details"}, {"result", "allowed"}, {"dry_run", "false"}};
  return l;
}

// One request's updates, as the proxy's serve_http + finish_request make them.
void one_request(Registry& r, int i) {
  r.counter("meshguard_authz_decisions_total", decision_labels()).inc();
  const Labels& labels = request_labels(i % 8 == 0 ? 403 : 200);
  r.counter("istio_requests_total", labels).inc();
  r.histogram("istio_request_duration_milliseconds", labels).observe_ms(0.7);
}

void BM_RequestMetrics_Locked(benchmark::State& state) {
  Registry& r = shared_registry();
  int i = 0;
  for (auto _ : state) one_request(r, i++);
  state.SetItemsProcessed(state.iterations());
}

void BM_RequestMetrics_ThreadCache(benchmark::State& state) {
  Registry& r = shared_registry();
  auto cache = r.bind_thread_cache();
  int i = 0;
  for (auto _ : state) one_request(r, i++);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_RequestMetrics_Locked)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_RequestMetrics_ThreadCache)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
