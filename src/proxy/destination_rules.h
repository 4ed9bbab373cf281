// proxy/destination_rules.h — the DestinationRules in force as the upstream side uses them (issue
// 20): for a destination host, port and subset, whether to originate TLS (mode SIMPLE) and with
// what — the client context verifying against the rule's caCertificates (loaded once per publish
// and CA file; a file that does not load fails the publish, naming the rule's file:line), and the
// server name sent as SNI and checked against the certificate (the rule's sni, else the host) —
// and the load balancer the rule asks for. Built with each publish into a
// shared_ptr<const DestinationRules> (PublishedPolicy::destination_rules); lookups are pure.
#pragma once

#include <asio/ssl.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::proxy {

struct OriginTls {
  std::string rule;                             // "ns/name" of the DestinationRule
  std::string server_name;                      // SNI and the name the certificate must carry
  std::shared_ptr<asio::ssl::context> context;  // verifies the server (tls/origination.h)
};

class DestinationRules {
 public:
  // The rules of `resources`; `own_ns` is the proxy's namespace, whose rules win over others for
  // the same host (Istio looks in the client's namespace first), then the root namespace's.
  static Result<std::shared_ptr<const DestinationRules>> build(const policy::ResourceSet& resources,
                                                               const std::string& own_ns,
                                                               const std::string& root_ns);

  // The rule deciding `host` (case-insensitive, an optional :port ignored): an exact host before
  // a wildcard, then own namespace, root namespace, any other, then load order. Null when no rule
  // names the host.
  const policy::DestinationRule* find(std::string_view host) const;
  // TLS origination for `host`: set when the deciding rule's tls.mode in force for `port` and
  // `subset` (DestinationRule::effective) is SIMPLE (server_name: its sni, else the host).
  std::optional<OriginTls> origination(std::string_view host, uint32_t port = 0, std::string_view subset = "") const;

  // Everything a connection to `host` `port` `subset` takes from the rules. Fails (reason
  // "subset_not_found") when a subset is named and the deciding rule has no such subset (or no
  // rule names the host): Envoy has no cluster for it (flag NC).
  struct Upstream {
    std::optional<OriginTls> origin;
    std::optional<policy::DestinationRule::LoadBalancer> load_balancer;
  };
  Result<Upstream> upstream(std::string_view host, uint32_t port, std::string_view subset) const;

  size_t size() const { return rules_.size(); }

 private:
  struct Entry {
    policy::DestinationRule rule;
    int rank = 0;  // smaller decides first
  };
  const Entry* decide(std::string_view host) const;
  std::vector<Entry> rules_;
  // One verifying context per caCertificates file named by a SIMPLE tls anywhere in the rules
  // ("" = the system's roots).
  std::map<std::string, std::shared_ptr<asio::ssl::context>> contexts_;
};

// "Api.Example.com:443" → "api.example.com"; a bracketed IPv6 literal keeps its brackets off.
std::string host_without_port(std::string_view authority);

}  // namespace mg::proxy
