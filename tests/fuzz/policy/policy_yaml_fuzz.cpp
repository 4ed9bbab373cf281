// Any text must parse to resources or a clean error — never crash, hang or throw — and whatever
// parses must compile and decide. Every resource's Meta::document, parsed alone, must give back
// exactly that one resource with the same text (the control plane stores and pushes these texts),
// also when the text was parsed with a -n/--namespace that wrote a namespace into a document.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/analyze.h"
#include "policy/decide.h"
#include "policy/parse.h"
#include "policy/select.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mg::policy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto set = parse_resources(text, "fuzz.yaml");
  if (!set) return 0;
  // The Mesh text the control plane writes reads back to the same extension providers.
  {
    const MeshConfig mesh = mesh_config_of(*set);
    auto written = parse_resources(mesh_document(mesh), "written");
    if (!written || !(mesh_config_of(*written).extension_providers == mesh.extension_providers)) __builtin_trap();
  }
  auto check_documents = [](const auto& resources) {
    for (const auto& r : resources) {
      auto alone = parse_resources(r.meta.document, "stored");
      if (!alone || alone->size() != 1) __builtin_trap();
      auto check_same = [&](const auto& list) {
        for (const auto& x : list) {
          if (x.meta.document != r.meta.document || x.meta.name != r.meta.name || x.meta.ns != r.meta.ns)
            __builtin_trap();
        }
      };
      check_same(alone->authorization_policies);
      check_same(alone->peer_authentications);
      check_same(alone->request_authentications);
      check_same(alone->workloads);
      check_same(alone->meshes);
    }
  };
  auto check_set = [&](const ResourceSet& checked) {
    check_documents(checked.authorization_policies);
    check_documents(checked.peer_authentications);
    check_documents(checked.request_authentications);
    check_documents(checked.workloads);
    check_documents(checked.meshes);
  };
  check_set(*set);
  if (auto placed = parse_resources(text, "fuzz.yaml", "fuzz-ns")) {
    check_set(*placed);
  }
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
