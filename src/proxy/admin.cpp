#include "proxy/admin.h"

#include "common/time.h"
#include "crypto/openssl.h"
#include "http/local_endpoint.h"
#include "proxy/balancer.h"
#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/gateway_mode.h"
#include "proxy/policy_state.h"
#include "proxy/proxy.h"
#include "proxy/report.h"

namespace mg::proxy {

namespace {

nlohmann::json json_or_null(const std::optional<std::string>& s) {
  return s ? nlohmann::json(*s) : nlohmann::json();
}

std::string rfc3339(std::time_t t) { return t > 0 ? timefmt::utc_rfc3339(t) : ""; }

nlohmann::json cert_json(X509* cert) {
  const auto c = crypto::summarize(cert);
  return {{"subject", c.subject},
          {"issuer", c.issuer},
          {"serial", c.serial_hex},
          {"fingerprint", c.fingerprint},
          {"notBefore", rfc3339(c.not_before)},
          {"notAfter", rfc3339(c.not_after)},
          {"isCa", c.is_ca},
          {"selfSigned", X509_check_issued(cert, cert) == X509_V_OK}};
}

// The chain as loaded (leaf first), the trust bundle, and which root issued the chain: the one
// the chain's last certificate was signed by (a rotation shows two roots, one of them issuing).
void add_secret(nlohmann::json& cert, const tls::Credentials& creds) {
  nlohmann::json chain = nlohmann::json::array();
  for (const auto& c : creds.chain) chain.push_back(cert_json(c.get()));
  cert["chain"] = chain;
  nlohmann::json roots = nlohmann::json::array();
  nlohmann::json issuing;
  X509* last = creds.chain.empty() ? nullptr : creds.chain.back().get();
  for (const auto& r : creds.bundle.roots()) {
    auto j = cert_json(r.get());
    if (last && X509_check_issued(r.get(), last) == X509_V_OK && issuing.is_null()) issuing = j;
    roots.push_back(std::move(j));
  }
  cert["trustBundle"] = {{"trustDomain", creds.bundle.trust_domain()}, {"roots", roots}};
  cert["issuingRoot"] = issuing;
  // Several meshes: the federated trust domains this proxy accepts peers of (docs/MESHES.md).
  nlohmann::json federated = nlohmann::json::array();
  for (const auto& b : creds.federated) {
    nlohmann::json fed_roots = nlohmann::json::array();
    for (const auto& r : b.roots()) fed_roots.push_back(cert_json(r.get()));
    federated.push_back({{"trustDomain", b.trust_domain()}, {"roots", std::move(fed_roots)}});
  }
  cert["federatedBundles"] = std::move(federated);
}

// The registry view in force: every service, its secure-naming identities, and per port the
// endpoints with their passive-health state (what `meshguardctl proxy-config endpoints` prints).
// A gateway listener's routes as in force: per VirtualService bound to it (in the order a request
// tries them), the hosts it serves there and, per http[] entry, its uri match and destinations.
nlohmann::json destinations_dump(const std::vector<policy::HttpRouteDestination>& route) {
  nlohmann::json destinations = nlohmann::json::array();
  for (const auto& d : route) {
    nlohmann::json dest = {{"host", d.host}};
    if (d.port) dest["port"] = d.port;
    if (!d.subset.empty()) dest["subset"] = d.subset;
    if (d.weight) dest["weight"] = d.weight;
    destinations.push_back(std::move(dest));
  }
  return destinations;
}

nlohmann::json gateway_routes_dump(const gateway::RouteTable& table, size_t listener) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& b : table.bound(listener)) {
    const policy::VirtualService& vs = *b.virtual_service;
    nlohmann::json http = nlohmann::json::array();
    for (const auto& route : vs.http) {
      nlohmann::json uris = nlohmann::json::array();
      for (const auto& m : route.match) {
        if (m.uri)
          uris.push_back(
              {{m.uri->kind == policy::HttpStringMatch::Kind::Exact ? "exact" : "prefix", m.uri->value}});
      }
      nlohmann::json entry = {{"destinations", destinations_dump(route.route)}};
      if (!route.match.empty()) entry["match"] = {{"entries", route.match.size()}, {"uri", std::move(uris)}};
      http.push_back(std::move(entry));
    }
    nlohmann::json view = {{"virtualService", vs.meta.ns + "/" + vs.meta.name}, {"hosts", b.hosts}, {"http", std::move(http)}};
    if (!vs.tls.empty()) {
      // TLS routes (a PASSTHROUGH listener's): the SNI hosts and ports each entry matches.
      nlohmann::json tls = nlohmann::json::array();
      for (const auto& route : vs.tls) {
        nlohmann::json matches = nlohmann::json::array();
        for (const auto& m : route.match) {
          nlohmann::json match = {{"sniHosts", m.sni_hosts}};
          if (m.port) match["port"] = m.port;
          if (!m.gateways.empty()) match["gateways"] = m.gateways;
          matches.push_back(std::move(match));
        }
        tls.push_back({{"match", std::move(matches)}, {"destinations", destinations_dump(route.route)}});
      }
      view["tls"] = std::move(tls);
    }
    out.push_back(std::move(view));
  }
  return out;
}

nlohmann::json registry_dump(const Registry& registry, const OutlierSettings& outlier) {
  const auto now = BalancerClock::now();
  nlohmann::json services = nlohmann::json::array();
  for (const auto& s : registry.services()) {
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& p : s.ports) {
      nlohmann::json endpoints = nlohmann::json::array();
      for (const auto& e : p.endpoints) {
        const auto h = e.health->view(now);
        endpoints.push_back({{"workload", e.workload},
                             {"address", e.address + ":" + std::to_string(e.port)},
                             {"serviceAccount", e.service_account},
                             {"identity", e.identity},
                             {"healthy", e.healthy},
                             {"ejected", h.ejected_for_ms > 0},
                             {"ejectedForMs", h.ejected_for_ms},
                             {"ejections", h.ejections_total},
                             {"consecutiveFailures", h.consecutive_failures},
                             {"activeRequests", e.health->active.load(std::memory_order_relaxed)}});
      }
      ports.push_back({{"name", p.name},
                       {"port", p.port},
                       {"targetPort", p.target_port},
                       {"protocol", to_string(p.protocol)},
                       {"cluster", "outbound|" + std::to_string(p.port) + "||" + s.fqdn()},
                       {"endpoints", endpoints}});
    }
    services.push_back({{"name", s.name},
                        {"namespace", s.ns},
                        {"host", s.fqdn()},
                        {"loadBalancer", s.load_balancer == policy::Service::LoadBalancer::RoundRobin
                                             ? "ROUND_ROBIN"
                                             : "LEAST_REQUEST"},
                        {"identities", s.identities},
                        {"ports", ports}});
  }
  return {{"trustDomain", registry.trust_domain()},
          {"services", services},
          {"outlierDetection",
           {{"consecutiveErrors", outlier.consecutive_errors},
            {"baseEjectionTimeMs", outlier.base_ejection.count()},
            {"maxEjectionTimeMs", outlier.max_ejection.count()},
            {"maxEjectionPercent", outlier.max_ejection_percent}}}};
}

}  // namespace

Admin::Admin(const ProxyConfig& config, const http::Limits& limits, Report& report,
             const Credentials& credentials, const PolicyState& policy, const ConnectionManager& connections,
             Runtime runtime)
    : config_(config),
      limits_(limits),
      report_(report),
      credentials_(credentials),
      policy_(policy),
      connections_(connections),
      runtime_(runtime) {}

nlohmann::json Admin::config_dump() const {
  auto policy = policy_.current();
  nlohmann::json j;
  j["version"] = runtime_.config_version.load();
  j["source"] = config_.source;
  j["workload"] = {{"name", config_.workload.name},
                   {"namespace", config_.workload.ns},
                   {"serviceAccount", config_.workload.service_account},
                   {"labels", config_.workload.labels}};
  nlohmann::json ls = nlohmann::json::array();
  const auto gateway_routes = runtime_.gateway.routes();
  for (const auto& l : runtime_.listeners) {
    nlohmann::json e = {{"kind", to_string(l.kind)}, {"address", l.address}};
    if (l.kind == ListenerKind::Inbound || l.kind == ListenerKind::Gateway) {
      const size_t index = l.kind == ListenerKind::Gateway ? l.inbound : l.index;
      const auto& p = config_.inbound[index];
      e["appPort"] = p.app_port;
      e["protocol"] = to_string(p.protocol);
      if (index < policy->inbound_modes.size()) {
        e["mtlsMode"] = to_string(policy->inbound_modes[index].mode);
        e["mtlsModeSource"] = policy->inbound_modes[index].source;
      }
      if (l.kind == ListenerKind::Gateway) {
        e["name"] = l.name();
        e["tls"] = p.edge_tls ? "SIMPLE" : p.passthrough ? "PASSTHROUGH" : p.mtls == MtlsMode::Strict ? "ISTIO_MUTUAL" : "none";
        if (gateway_routes->table) e["routes"] = gateway_routes_dump(*gateway_routes->table, l.index);
      }
    } else if (l.kind == ListenerKind::Outbound) {
      const auto& r = config_.outbound[l.index];
      if (!r.by_registry()) {
        e["destination"] = destination_of(r);
        e["identities"] = r.identities;
      } else if (r.service.empty()) {
        e["route"] = "byHost";  // each request's Host through the registry
      } else {
        e["service"] = r.service + "." + r.service_ns;
        e["port"] = r.service_port;
      }
    }
    ls.push_back(e);
  }
  j["listeners"] = ls;
  j["registry"] = registry_dump(*policy->registry, config_.outlier);
  nlohmann::json cert = {{"state", to_string(credentials_.state())}};
  if (auto state = credentials_.current()) {
    cert["spiffeId"] = state->creds->own_id.str();
    cert["serial"] = state->creds->serial_hex;
    cert["fingerprint"] = state->creds->fingerprint;
    cert["notBefore"] = state->creds->not_before;
    cert["notAfter"] = state->creds->not_after;
    add_secret(cert, *state->creds);
  }
  if (std::string error = credentials_.last_error(); !error.empty()) cert["lastError"] = error;
  j["certificate"] = cert;
  if (policy->snapshot) {
    size_t enforced = 0, dry_run = 0;
    for (const auto& p : policy->snapshot->policies()) (p.dry_run ? dry_run : enforced)++;
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : policy->files) files.push_back({{"name", f.name}, {"sha256", f.sha256}});
    nlohmann::json origins = nlohmann::json::array();
    for (const auto& o : policy->origins) {
      origins.push_back({{"kind", o.kind},
                         {"name", o.name},
                         {"origin", o.source + ":" + std::to_string(o.line)},
                         {"appliesToWorkload", o.applies}});
    }
    nlohmann::json applied = nlohmann::json::array();
    for (const auto& p : policy->snapshot->policies()) {
      applied.push_back({{"name", p.name}, {"action", policy::to_string(p.action)}, {"dryRun", p.dry_run}});
    }
    j["policy"] = {{"dir", json_or_null(config_.policy_dir)},
                   {"engine", "policy"},
                   {"version", policy->version},
                   {"hash", policy->hash},
                   {"loadedAt", policy->loaded_at},
                   {"files", files},
                   {"resources", origins},
                   {"resourcesLoaded", policy->resources},
                   {"authorizationPolicies", applied},
                   {"authorizationPoliciesApplied", enforced},
                   {"dryRunPoliciesApplied", dry_run},
                   {"numTrustedProxies", policy->snapshot->mesh().num_trusted_proxies}};
    nlohmann::json uris = nlohmann::json::array();
    for (const auto& u : policy_.jwks().status()) {
      uris.push_back({{"uri", u.uri},
                      {"keys", u.has_keys ? "Available" : "Unavailable"},
                      {"fetches", u.fetches},
                      {"lastError", u.last_error.empty() ? nlohmann::json() : nlohmann::json(u.last_error)}});
    }
    j["policy"]["jwksUri"] = uris;
    auto error = policy_.last_error();
    j["policy"]["lastError"] = error.message.empty() ? nlohmann::json() : nlohmann::json(error.message);
    if (!error.at.empty()) j["policy"]["lastErrorAt"] = error.at;
    const auto loads = policy_.loads();
    j["policy"]["loads"] = {{"directory", loads.directory},
                            {"pushed", loads.pushed},
                            {"compiles", loads.compiles},
                            {"endpointsOnly", loads.endpoints_only}};
  } else {
    j["policy"] = {{"dir", json_or_null(config_.policy_dir)},
                   {"engine", "none: no AuthorizationPolicy applies"}};
  }
  if (runtime_.control_plane) {
    // The one version operators correlate: the store revision `apply` printed and `workload list` shows.
    const ControlPlaneView cp = runtime_.control_plane();
    j["controlPlane"] = {
        {"address", cp.address},
        {"connected", cp.connected},
        {"revision", cp.revision},
        {"version", cp.version},
        {"received", cp.received.empty() ? nlohmann::json() : nlohmann::json(cp.received)},
        {"lastError", cp.last_error.empty() ? nlohmann::json() : nlohmann::json(cp.last_error)}};
  }
  j["draining"] = runtime_.draining.load();
  j["activeConnections"] = connections_.active();
  return j;
}

net::awaitable<void> Admin::serve(net::tcp::socket socket) {
  net::PlainStream stream(std::move(socket));
  net::Watchdog watchdog(co_await asio::this_coro::executor, [&stream] { stream.close(); });
  watchdog.arm(std::chrono::milliseconds(config_.limits.header_timeout_ms));
  std::string buffer;
  http::HeadScanner scanner;
  char chunk[4096];
  while (true) {
    auto scan = scanner.scan(buffer, 16 * 1024);
    if (scan.state == http::HeadScan::State::Complete) {
      const std::string response = http::answer_local_request(
          std::string_view(buffer).substr(0, scan.length), limits_, [this](std::string_view path) {
            http::LocalReply reply;
            if (path == "/healthz/ready") {
              const bool ready =
                  runtime_.started && !runtime_.draining && credentials_.state() != CertState::Unavailable;
              reply = {ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n"};
            } else if (path == "/metrics") {
              // The certificate state machine as a gauge per state (1 = current), read at scrape time.
              const CertState state = credentials_.state();
              for (CertState st : {CertState::Available, CertState::Unavailable, CertState::None}) {
                report_.registry()
                    .gauge("meshguard_certificate_state", {{"state", std::string(to_string(st))}})
                    .set(state == st ? 1 : 0);
              }
              reply = {200, "text/plain; version=0.0.4", report_.registry().render_prometheus()};
            } else if (path == "/config_dump") {
              reply = {200, "application/json",
                       config_dump().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
            }
            return reply;
          });
      std::error_code ec;
      co_await stream.write_all(asio::buffer(response), ec);
      stream.shutdown_send();
      co_return;
    }
    if (scan.state != http::HeadScan::State::Incomplete) co_return;
    std::error_code ec;
    size_t n = co_await stream.read_some(asio::buffer(chunk), ec);
    if (ec) co_return;
    buffer.append(chunk, n);
  }
}

}  // namespace mg::proxy
