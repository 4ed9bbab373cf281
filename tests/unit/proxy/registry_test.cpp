// Unit tests of the proxy's registry view (proxy/registry.h: name forms, ports, secure-naming
// identities, health carried across publishes) and of endpoint choice and outlier ejection
// (proxy/balancer.h), on hand-built ResourceSets.
#include <gtest/gtest.h>

#include <map>

#include "proxy/balancer.h"
#include "proxy/registry.h"

namespace mg::proxy {
namespace {

using namespace std::chrono_literals;
using LB = policy::Service::LoadBalancer;

policy::Service service(const std::string& name, const std::string& ns, std::vector<policy::ServicePort> ports,
                        LB lb = LB::LeastRequest) {
  policy::Service s;
  s.meta.name = name;
  s.meta.ns = ns;
  s.workload_selector = {{"app", name}};
  s.ports = std::move(ports);
  s.load_balancer = lb;
  return s;
}

policy::ServiceEndpoint endpoint(const std::string& workload, const std::string& sa, std::map<uint32_t, uint32_t> ports,
                                 bool healthy = true) {
  policy::ServiceEndpoint e;
  e.workload = workload;
  e.address = "127.0.0.1";
  e.ports = std::move(ports);
  e.service_account = sa;
  e.healthy = healthy;
  return e;
}

policy::ResourceSet bookinfo(LB lb = LB::LeastRequest) {
  policy::ResourceSet set;
  set.services.push_back(service("details", "default", {{"http", 9080, 9080, policy::ServiceProtocol::Http}}, lb));
  set.services.push_back(service("ratings", "prod",
                                 {{"http", 80, 9080, policy::ServiceProtocol::Http},
                                  {"tcp-db", 5432, 5432, policy::ServiceProtocol::Tcp}}));
  policy::ServiceEndpoints eps;
  eps.meta.name = "details";
  eps.meta.ns = "default";
  eps.endpoints = {endpoint("details-v1", "details", {{9080, 15006}}), endpoint("details-v2", "details-v2", {{9080, 15007}})};
  set.service_endpoints.push_back(eps);
  policy::ServiceEndpoints r;
  r.meta.name = "ratings";
  r.meta.ns = "prod";
  r.endpoints = {endpoint("ratings-v1", "ratings", {{80, 16000}}), endpoint("ratings-db", "ratings", {{5432, 16001}})};
  set.service_endpoints.push_back(r);
  return set;
}

TEST(Registry, NameForms) {
  auto reg = Registry::build(bookinfo(), "example.org", "default");
  for (const char* name : {"details", "details:9080", "details.default", "details.default:9080", "Details.Default.svc",
                           "details.default.svc.cluster.local:9080", "details.default.svc.cluster.local.",
                           "details.default.svc.example.org"}) {
    auto m = reg->resolve(name);
    ASSERT_TRUE(m) << name;
    EXPECT_EQ(m->service->host(), "details.default") << name;
    EXPECT_EQ(m->port->port, 9080) << name;
  }
  for (const char* name : {"details:9081", "details.other", "detail", "details.default.svc.cluster", "details:x",
                           "details:0", "details:99999", "", ":9080", "ratings" /* another namespace */,
                           "10.0.0.1:9080"}) {
    EXPECT_FALSE(reg->resolve(name)) << name;
  }
  // From a workload of namespace prod, the short name is ratings', not details'.
  auto prod = Registry::build(bookinfo(), "cluster.local", "prod");
  EXPECT_FALSE(prod->resolve("details"));
  ASSERT_TRUE(prod->resolve("ratings"));
  EXPECT_EQ(prod->resolve("ratings")->port->port, 80);  // two ports, none given: port 80
  EXPECT_EQ(prod->resolve("ratings.prod:5432")->port->protocol, Protocol::Tcp);
  // No port 80: the one HTTP port; two HTTP ports and no 80: ambiguous.
  policy::ResourceSet mixed;
  mixed.services.push_back(service("mixed", "default",
                                   {{"tcp", 5432, 5432, policy::ServiceProtocol::Tcp},
                                    {"http", 9080, 9080, policy::ServiceProtocol::Http}}));
  mixed.services.push_back(service("two", "default",
                                   {{"a", 9080, 9080, policy::ServiceProtocol::Http},
                                    {"b", 9081, 9081, policy::ServiceProtocol::Grpc}}));
  auto m = Registry::build(mixed, "cluster.local", "default");
  ASSERT_TRUE(m->resolve("mixed"));
  EXPECT_EQ(m->resolve("mixed")->port->port, 9080);
  EXPECT_FALSE(m->resolve("two"));
  EXPECT_EQ(m->resolve("two:9081")->port->protocol, Protocol::Grpc);
}

TEST(Registry, EndpointsPerPortAndIdentities) {
  auto reg = Registry::build(bookinfo(), "cluster.local", "default");
  auto m = reg->find("details", "default", 9080);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->port->endpoints.size(), 2u);
  EXPECT_EQ(m->port->endpoints[1].port, 15007);
  EXPECT_EQ(m->port->endpoints[1].identity, "spiffe://cluster.local/ns/default/sa/details-v2");
  EXPECT_EQ(m->service->identities, (std::vector<std::string>{"spiffe://cluster.local/ns/default/sa/details",
                                                              "spiffe://cluster.local/ns/default/sa/details-v2"}));
  // Each port lists only the endpoints that serve it.
  auto http = reg->find("ratings", "prod", 80);
  auto db = reg->find("ratings", "prod", 5432);
  ASSERT_TRUE(http && db);
  ASSERT_EQ(http->port->endpoints.size(), 1u);
  EXPECT_EQ(http->port->endpoints[0].workload, "ratings-v1");
  ASSERT_EQ(db->port->endpoints.size(), 1u);
  EXPECT_EQ(db->port->endpoints[0].port, 16001);
  EXPECT_EQ(db->port->target_port, 5432);
  EXPECT_FALSE(reg->find("ratings", "prod", 81));
  // A Service without ServiceEndpoints has ports but no endpoints and no identities.
  policy::ResourceSet lone;
  lone.services.push_back(service("lone", "default", {{"", 80, 80, policy::ServiceProtocol::Http}}));
  auto l = Registry::build(lone, "cluster.local", "default");
  ASSERT_TRUE(l->resolve("lone"));
  EXPECT_TRUE(l->resolve("lone")->port->endpoints.empty());
  EXPECT_TRUE(l->services()[0].identities.empty());
}

TEST(Registry, HealthCarriedAcrossPublishes) {
  auto first = Registry::build(bookinfo(), "cluster.local", "default");
  auto second = Registry::build(bookinfo(), "cluster.local", "default");
  const auto& a = first->find("details", "default", 9080)->port->endpoints;
  EXPECT_NE(a[0].health, second->find("details", "default", 9080)->port->endpoints[0].health);
  second->carry_health(*first);
  const auto& b = second->find("details", "default", 9080)->port->endpoints;
  EXPECT_EQ(a[0].health, b[0].health);
  EXPECT_EQ(a[1].health, b[1].health);
  // An endpoint that moved port is a new endpoint.
  auto set = bookinfo();
  set.service_endpoints[0].endpoints[1].ports[9080] = 15999;
  auto third = Registry::build(set, "cluster.local", "default");
  third->carry_health(*second);
  const auto& c = third->find("details", "default", 9080)->port->endpoints;
  EXPECT_EQ(c[0].health, a[0].health);
  EXPECT_NE(c[1].health, a[1].health);
}

TEST(Balancer, RoundRobinAlternates) {
  auto reg = Registry::build(bookinfo(LB::RoundRobin), "cluster.local", "default");
  const RegistryPort& port = *reg->find("details", "default", 9080)->port;
  auto now = BalancerClock::now();
  std::map<size_t, int> seen;
  for (int i = 0; i < 10; ++i) ++seen[*pick_endpoint(port, LB::RoundRobin, now, 0)];
  EXPECT_EQ(seen[0], 5);
  EXPECT_EQ(seen[1], 5);
}

TEST(Balancer, LeastRequestPrefersTheIdleEndpoint) {
  auto reg = Registry::build(bookinfo(), "cluster.local", "default");
  const RegistryPort& port = *reg->find("details", "default", 9080)->port;
  auto now = BalancerClock::now();
  ActiveRequest busy(*port.endpoints[0].health);
  ActiveRequest busier(*port.endpoints[0].health);
  for (uint64_t r = 0; r < 20; ++r) EXPECT_EQ(*pick_endpoint(port, LB::LeastRequest, now, r * 7919), 1u);
  // With equal load both are chosen.
  ActiveRequest other(*port.endpoints[1].health);
  ActiveRequest other2(*port.endpoints[1].health);
  std::map<size_t, int> seen;
  for (uint64_t r = 0; r < 20; ++r) ++seen[*pick_endpoint(port, LB::LeastRequest, now, r)];
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
}

TEST(Balancer, ExcludeUnhealthyAndRetry) {
  auto set = bookinfo();
  set.service_endpoints[0].endpoints[0].healthy = false;
  auto reg = Registry::build(set, "cluster.local", "default");
  const RegistryPort& port = *reg->find("details", "default", 9080)->port;
  auto now = BalancerClock::now();
  for (uint64_t r = 0; r < 10; ++r) EXPECT_EQ(*pick_endpoint(port, LB::LeastRequest, now, r), 1u);
  // A retry excluding the only healthy one still gets it (nothing else to try).
  EXPECT_EQ(*pick_endpoint(port, LB::LeastRequest, now, 0, 1), 1u);
  set.service_endpoints[0].endpoints[1].healthy = false;
  auto none = Registry::build(set, "cluster.local", "default");
  EXPECT_FALSE(pick_endpoint(*none->find("details", "default", 9080)->port, LB::LeastRequest, now, 0));
  // A retry avoids the endpoint that failed.
  auto two = Registry::build(bookinfo(), "cluster.local", "default");
  const RegistryPort& p2 = *two->find("details", "default", 9080)->port;
  for (uint64_t r = 0; r < 10; ++r) EXPECT_EQ(*pick_endpoint(p2, LB::LeastRequest, now, r, 0), 1u);
}

TEST(Balancer, EjectionBackoffAndMaxEjection) {
  auto set = bookinfo();
  set.service_endpoints[0].endpoints.push_back(endpoint("details-v3", "details", {{9080, 15008}}));
  auto reg = Registry::build(set, "cluster.local", "default");
  const RegistryPort& port = *reg->find("details", "default", 9080)->port;
  OutlierSettings s;
  s.consecutive_errors = 3;
  s.base_ejection = 1000ms;
  s.max_ejection = 2500ms;
  auto t = BalancerClock::now();
  const RegistryEndpoint& e0 = port.endpoints[0];
  EXPECT_FALSE(record_outcome(port, e0, true, t, s));
  EXPECT_FALSE(record_outcome(port, e0, true, t, s));
  EXPECT_FALSE(record_outcome(port, e0, false, t, s));  // a success resets the count
  EXPECT_FALSE(record_outcome(port, e0, true, t, s));
  EXPECT_FALSE(record_outcome(port, e0, true, t, s));
  EXPECT_TRUE(record_outcome(port, e0, true, t, s));
  EXPECT_TRUE(e0.health->ejected(t + 999ms));
  EXPECT_FALSE(e0.health->ejected(t + 1000ms));
  for (uint64_t r = 0; r < 10; ++r) EXPECT_NE(*pick_endpoint(port, LB::LeastRequest, t + 10ms, r), 0u);
  // Max ejection: max(1, 10% of 3) = 1 at a time — a second endpoint failing is not ejected.
  const RegistryEndpoint& e1 = port.endpoints[1];
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(record_outcome(port, e1, true, t + 10ms, s));
  EXPECT_FALSE(e1.health->ejected(t + 20ms));
  // Back after the first ejection; ejected again: twice as long; the third is capped (2.5 s).
  auto t2 = t + 1000ms;
  for (int i = 0; i < 2; ++i) record_outcome(port, e0, true, t2, s);
  EXPECT_TRUE(record_outcome(port, e0, true, t2, s));
  EXPECT_TRUE(e0.health->ejected(t2 + 1999ms));
  EXPECT_FALSE(e0.health->ejected(t2 + 2000ms));
  auto t3 = t2 + 2000ms;
  for (int i = 0; i < 2; ++i) record_outcome(port, e0, true, t3, s);
  EXPECT_TRUE(record_outcome(port, e0, true, t3, s));
  EXPECT_TRUE(e0.health->ejected(t3 + 2499ms));
  EXPECT_FALSE(e0.health->ejected(t3 + 2500ms));
  EXPECT_EQ(e0.health->view(t3).ejections_total, 3u);
  EXPECT_EQ(e0.health->view(t3).ejections, 3u);
  // Successes after clean periods lower the multiplier.
  record_outcome(port, e0, false, t3 + 2500ms + 1000ms, s);
  EXPECT_EQ(e0.health->view(t3 + 3500ms).ejections, 2u);
}

TEST(Balancer, NeverEjectsAll) {
  policy::ResourceSet set = bookinfo();
  set.service_endpoints[0].endpoints.pop_back();
  auto reg = Registry::build(set, "cluster.local", "default");
  const RegistryPort& port = *reg->find("details", "default", 9080)->port;
  OutlierSettings s;
  s.consecutive_errors = 1;
  auto t = BalancerClock::now();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(record_outcome(port, port.endpoints[0], true, t, s));
  EXPECT_EQ(*pick_endpoint(port, LB::LeastRequest, t, 0), 0u);
  // Two endpoints, 10%: one may go, never the second.
  auto two = Registry::build(bookinfo(), "cluster.local", "default");
  const RegistryPort& p2 = *two->find("details", "default", 9080)->port;
  EXPECT_TRUE(record_outcome(p2, p2.endpoints[0], true, t, s));
  EXPECT_FALSE(record_outcome(p2, p2.endpoints[1], true, t, s));
  EXPECT_FALSE(p2.endpoints[1].health->ejected(t));
}

}  // namespace
}  // namespace mg::proxy
