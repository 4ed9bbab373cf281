// Any text must parse to resources or a clean error — never crash, hang or throw — and whatever
// parses must compile and decide.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/parse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mg::policy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto set = parse_resources(text, "fuzz.yaml");
  if (!set) return 0;
  MeshConfig mesh;
  Request req;
  req.destination_namespace = "default";
  req.destination_labels = {{"app", "details"}};
  req.destination_port = 9080;
  req.source_principal = "cluster.local/ns/default/sa/sleep";
  req.source_ip = "10.0.0.1";
  req.http = HttpRequest{"GET", "/details/1?x=1", "details:9080", {{"x-token", "abc"}}};
  for (const auto& ns : {"default", "istio-system", "foo"}) {
    req.destination_namespace = ns;
    auto snap = compile_snapshot(*set, destination_workload(req), mesh);
    if (!snap) __builtin_trap();  // a validated set always compiles
    (void)decide(**snap, req, 0);
    Request tcp = req;
    tcp.http.reset();
    (void)decide(**snap, tcp, 0);
  }
  (void)analyze(*set, mesh);
  return 0;
}
