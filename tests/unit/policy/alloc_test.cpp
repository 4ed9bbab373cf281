// The engine's promise: after a snapshot is compiled, deciding a request (without dry-run
// policies) allocates nothing. Counted by replacing the global allocation functions.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>

#include "test_util.h"

namespace {
thread_local long allocations = 0;
}

void* operator new(std::size_t size) {
  ++allocations;
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// The nothrow forms too (std::stable_sort's temporary buffer, in rego values OPAPolicies build):
// their memory comes back through the plain operator delete above, so they must come from malloc.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  ++allocations;
  return std::malloc(size ? size : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace mg::policy::test {
namespace {

TEST(EngineAllocation, DecisionsDoNotAllocate) {
  std::string yaml =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\n  namespace: istio-system\n"
      "spec:\n  mtls:\n    mode: STRICT\n---\n";
  yaml += ap("deny", "  action: DENY\n  rules:\n  - to:\n    - operation:\n        paths: [\"/admin\", \"/debug/*\"]\n"
                     "  - when:\n    - key: request.headers[user-agent]\n      values: [\"evil*\"]");
  yaml += ap("allow", "  rules:\n  - from:\n    - source:\n        principals: [\"cluster.local/ns/default/*\"]\n"
                      "        ipBlocks: [\"10.0.0.0/8\"]\n    to:\n    - operation:\n        methods: [\"GET\"]\n"
                      "        paths: [\"/details/*\"]\n        hosts: [\"details*\"]\n    when:\n"
                      "    - key: request.headers[x-tenant]\n      notValues: [\"blocked\"]\n  - to:\n    - operation:\n"
                      "        ports: [\"9080\"]");
  yaml += ap("audit", "  action: AUDIT\n  rules:\n  - to:\n    - operation:\n        methods: [\"GET\"]");
  const auto set = must_parse(yaml);
  Req http;
  http.headers = {{"user-agent", "curl"}, {"x-tenant", "t1"}, {"x-forwarded-for", "192.0.2.1"}};
  Req tcp;
  tcp.http = false;
  Req plaintext;
  plaintext.principal.clear();
  for (const Req* r : {&http, &tcp, &plaintext}) {
    const auto request = r->build();
    auto snap = compile_snapshot(set, destination_workload(request), MeshConfig{});
    ASSERT_TRUE(snap);
    const auto warm = decide(**snap, request, 0);  // warms the thread-local path buffers
    allocations = 0;
    for (int i = 0; i < 100; ++i) {
      const auto d = decide(**snap, request, 0);
      ASSERT_EQ(d.allow, warm.allow);
    }
    EXPECT_EQ(allocations, 0) << describe(warm);
  }
  // The counter itself works.
  allocations = 0;
  int* volatile p = new int(1);  // volatile: the allocation cannot be elided
  delete p;
  EXPECT_EQ(allocations, 1);
}

}  // namespace
}  // namespace mg::policy::test
