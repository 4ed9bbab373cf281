#include "proxy/report.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

#include "identity/spiffe_id.h"
#include "telemetry/json_line.h"

namespace mg::proxy {

namespace {

constexpr size_t kMaxCachedSeries = 4096;  // per worker; past it the cache starts over

double ms_since(Report::Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Report::Clock::now() - start).count();
}

nlohmann::json json_or_null(const std::optional<std::string>& s) {
  return s ? nlohmann::json(*s) : nlohmann::json();
}
nlohmann::json json_or_null(const std::optional<int>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

telemetry::Labels decision_labels(const Verdict& decision, bool allowed) {
  return {
      {"action",
       decision.action == policy::DecidingAction::None ? "NONE" : std::string(to_string(decision.action))},
      {"policy", decision.policy.value_or("none")},
      {"result", allowed ? "allowed" : "denied"},
      {"dry_run", "false"}};
}

// The decision's fields of an access-log line, in the order the line has always had them.
void write_decision(telemetry::JsonLine& line, const Verdict* decision, std::string_view no_reason) {
  if (decision && decision->action != policy::DecidingAction::None) {
    line.str("action", to_string(decision->action));
  } else {
    line.null("action");
  }
  if (!decision) {
    line.null("policy").null("rule").boolean("audit", false).null("dry_run").null("dry_run_policy");
    line.str("reason", no_reason);
    return;
  }
  line.str_or_null("policy", decision->policy)
      .num_or_null("rule", decision->rule)
      .boolean("audit", decision->audit)
      .boolean_or_null("dry_run", decision->dry_run_allow)
      .str_or_null("dry_run_policy", decision->dry_run_policy)
      .str("reason", decision->reason);
  // Every OPAPolicy evaluated: {"ns/name": {"outcome": ..., "dry_run": ...}}, only when one was.
  if (!decision->opa.empty()) {
    line.open("opa");
    for (const auto& o : decision->opa) line.open(o.policy).str("outcome", o.outcome).boolean("dry_run", o.dry_run).close();
    line.close();
  }
  // A CUSTOM policy's provider call: {"provider", "outcome", "latency_us"[, "error"]}.
  if (const auto& call = decision->ext_authz) {
    line.open("ext_authz").str("provider", call->provider).str("outcome", to_string(call->outcome));
    line.num("latency_us", static_cast<int64_t>(call->latency_ms * 1000));
    if (!call->error.empty()) line.str("error", call->error);
    line.close();
  }
}

}  // namespace

std::string_view to_string(ResponseFlag flag) {
  switch (flag) {
    case ResponseFlag::None:
      return "-";
    case ResponseFlag::UpstreamConnectFailure:
      return "UF";
    case ResponseFlag::UpstreamReset:
      return "UC";
    case ResponseFlag::DownstreamReset:
      return "DC";
    case ResponseFlag::UpstreamTimeout:
      return "UT";
    case ResponseFlag::NoRouteFound:
      return "NR";
    case ResponseFlag::NoHealthyUpstream:
      return "UH";
    case ResponseFlag::NoClusterFound:
      return "NC";
    case ResponseFlag::Denied:
      return "denied";
  }
  return "-";
}

std::string_view to_string(ResponseDetail detail) {
  switch (detail) {
    case ResponseDetail::ViaUpstream:
      return "via_upstream";
    case ResponseDetail::LocalReply:
      return "local_reply";
    case ResponseDetail::RbacAccessDenied:
      return "rbac_access_denied";
    case ResponseDetail::JwtAuthnAccessDenied:
      return "jwt_authn_access_denied";
    case ResponseDetail::LocalDeny:
      return "local_deny";
    case ResponseDetail::Upgrade:
      return "upgrade";
    case ResponseDetail::UpgradeClosedByPolicyReload:
      return "upgrade_closed_by_policy_reload";
    case ResponseDetail::ExtAuthzDenied:
      return "ext_authz_denied";
    case ResponseDetail::ExtAuthzError:
      return "ext_authz_error";
    case ResponseDetail::RouteNotFound:
      return "route_not_found";
    case ResponseDetail::DirectResponse:
      return "direct_response";
  }
  return "via_upstream";
}

void log_line(const std::string& message) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "meshguard-proxy: %s\n", message.c_str());
  std::fflush(stderr);
}

std::string destination_of(const OutboundRoute& route) {
  return route.destination_address + ":" + std::to_string(route.destination_port);
}

std::shared_ptr<const PeerLabels> cached_peer_labels(SeriesCache& cache, std::string_view header,
                                                     std::string_view principal) {
  // The same peer as the request before (a connection's every stream): compared, not hashed.
  const std::string& last = cache.last_peer_key;
  if (cache.last_peer_known && last.size() == principal.size() + 1 + header.size() &&
      std::string_view(last).substr(0, principal.size()) == principal && last[principal.size()] == '\0' &&
      std::string_view(last).substr(principal.size() + 1) == header) {
    return cache.last_peer_labels;
  }
  std::string& key = cache.key;
  key.assign(principal);
  key += '\0';
  key += header;
  std::shared_ptr<const PeerLabels> labels;
  if (auto it = cache.peer_metadata.find(key); it != cache.peer_metadata.end()) {
    labels = it->second;
  } else {
    if (cache.peer_metadata.size() >= kMaxCachedSeries) cache.peer_metadata.clear();
    labels = peer_labels_for(header, principal);
    cache.peer_metadata.emplace(key, labels);  // a refused header too: not decoded again
  }
  cache.last_peer_key = key;
  cache.last_peer_labels = labels;
  cache.last_peer_known = true;
  return labels;
}

std::shared_ptr<const PeerLabels> cached_endpoint_labels(SeriesCache& cache, std::string_view workload,
                                                         std::string_view ns) {
  std::string& key = cache.key;
  key.assign("\x01registry");  // never a principal (cached_peer_labels' keys start with one)
  key += '\0';
  key += workload;
  key += '\0';
  key += ns;
  if (auto it = cache.peer_metadata.find(key); it != cache.peer_metadata.end()) return it->second;
  if (cache.peer_metadata.size() >= kMaxCachedSeries) cache.peer_metadata.clear();
  auto labels = PeerLabels::make(WorkloadLabels::of_name(workload, ns));
  cache.peer_metadata.emplace(key, labels);
  return labels;
}

Report::Report(const ProxyConfig& config) : config_(config), own_(OwnMetadata::make(config.workload, 0)) {
  registry_.describe("istio_requests_total", "Requests handled by the proxy.");
  registry_.describe("istio_request_duration_milliseconds", "Request duration.");
  registry_.describe("istio_request_bytes", "Request size: head and body as received.");
  registry_.describe("istio_response_bytes", "Response size: head and body as sent.");
  registry_.describe("istio_tcp_connections_opened_total", "TCP connections opened.");
  registry_.describe("meshguard_authz_decisions_total", "Authorization decisions by policy and result.");
  registry_.describe("meshguard_connections_refused_total", "Connections refused before reaching the app.");
  registry_.describe("meshguard_certificate_expiry_timestamp_seconds",
                     "Workload certificate notAfter (unix seconds).");
  registry_.describe(
      "meshguard_certificate_state",
      "1 for the workload certificate's current state (Available, Unavailable, None = no tls).");
  registry_.describe("meshguard_config_reload_total", "policyDir reload attempts by result.");
  registry_.describe("meshguard_ext_authz_requests_total",
                     "CUSTOM policies' calls to extension providers by outcome (allowed, denied, error, timeout).");
  registry_.describe("meshguard_ext_authz_duration_milliseconds", "Extension provider call latency.");
  registry_.describe("meshguard_connections_closed_total",
                     "Live connections closed by the proxy (e.g. no longer allowed after a policy reload).");
}

void Report::set_own_labels(const std::map<std::string, std::string>& labels) {
  auto current = own_.load();
  if (current->info.labels == labels) return;
  WorkloadInfo w = current->info;
  w.labels = labels;
  own_.store(OwnMetadata::make(w, current->generation + 1));
}

Status Report::open_access_log(const std::string& path) {
  auto log = telemetry::AccessLog::open(path);
  if (!log) return fail(log.error());
  access_log_ = std::move(*log);
  return {};
}

void Report::count_refused(std::string_view direction, std::string_view reason) {
  registry_
      .counter("meshguard_connections_refused_total",
               {{"direction", std::string(direction)}, {"reason", std::string(reason)}})
      .inc();
}

void Report::count_refused(ListenerKind direction, Refusal reason) {
  count_refused(to_string(direction), to_string(reason));
}

void Report::connection_refused(const std::string& source, uint16_t port, Refusal refusal,
                                const std::string& detail) {
  const std::string_view reason = to_string(refusal);
  count_refused("inbound", reason);
  // Refused before any identity was believed: a plaintext (or failed-handshake) denial.
  insights_.count("", false, false, "");
  insights_.sample({.time_unix_ms = telemetry::unix_millis_now(),
                    .source_address = source,
                    .reason = std::string(reason) + (detail.empty() ? "" : ": " + detail),
                    .allowed = false});
  access_log_->write({{"time", telemetry::now_rfc3339()},
                      {"direction", "inbound"},
                      {"event", "connection_refused"},
                      {"source", {{"address", source}}},
                      {"port", port},
                      {"reason", std::string(reason)},
                      {"detail", detail}});
}

void Report::egress_audit(const EgressAudit& a) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
  access_log_->write({{"time", telemetry::now_rfc3339()},
                      {"direction", "egress"},
                      {"event", "egress_audit"},
                      {"source", {{"principal", a.source_principal}, {"address", a.source_address}}},
                      {"destination", {{"host", a.host}, {"port", a.port}, {"sni", or_null(a.sni)}}},
                      {"method", or_null(a.method)},
                      {"path", or_null(a.path)},
                      {"status", a.status},
                      {"bytes_received", a.bytes_received},
                      {"bytes_sent", a.bytes_sent},
                      {"decision", a.allowed ? "allow" : "deny"},
                      {"policy", or_null(a.policy)},
                      {"reason", a.reason}});
}

void Report::outbound_refused(const std::string& source, const std::string& destination,
                              const std::string& reason, const std::string& detail) {
  count_refused("outbound", reason);
  log_line("outbound to " + destination + " refused: " + reason + ": " + detail);
  access_log_->write({{"time", telemetry::now_rfc3339()},
                      {"direction", "outbound"},
                      {"event", "connection_refused"},
                      {"source", {{"address", source}}},
                      {"destination", {{"address", destination}}},
                      {"reason", reason},
                      {"detail", detail}});
}

void Report::closed_by_policy(Live what, size_t inbound_index, const std::string& source,
                              const std::optional<tls::PeerIdentity>& peer, uint64_t policy_version,
                              const Verdict& decision) {
  const InboundPort& port = config_.inbound[inbound_index];
  registry_.counter("meshguard_connections_closed_total", {{"reason", "policy_reload"}}).inc();
  count_decision(decision, false);
  // The access log's "protocol", and what the log line calls it.
  const std::string_view protocol = what == Live::Tcp           ? "tcp"
                                    : what == Live::Http2Stream ? "http2"
                                                                : "websocket";
  const std::string_view named = what == Live::Tcp           ? "TCP connection"
                                 : what == Live::Http2Stream ? "HTTP/2 stream"
                                                             : "WebSocket connection";
  log_line("closing " + std::string(named) + " from " + source + " on inbound[" +
           std::to_string(inbound_index) + "]: no longer allowed after policy version " +
           std::to_string(policy_version) + ": " + decision.reason);
  access_log_->write({{"time", telemetry::now_rfc3339()},
                      {"direction", "inbound"},
                      {"protocol", protocol},
                      {"event", "connection_closed_by_policy"},
                      {"source", {{"principal", peer ? peer->id.str() : "unknown"}, {"address", source}}},
                      {"port", port.port},
                      {"policyVersion", policy_version},
                      {"action", std::string(to_string(decision.action))},
                      {"policy", json_or_null(decision.policy)},
                      {"rule", json_or_null(decision.rule)},
                      {"reason", decision.reason}});
}

void Report::count_decision(SeriesCache& cache, const Verdict& decision, bool allowed) {
  std::string& key = cache.key;
  key.clear();
  key += allowed ? 'a' : 'd';
  key += static_cast<char>('0' + static_cast<int>(decision.action));
  if (decision.policy) key += *decision.policy;
  auto it = cache.decision_series.find(key);
  if (it == cache.decision_series.end()) {
    if (cache.decision_series.size() >= kMaxCachedSeries) cache.decision_series.clear();
    auto* counter = &registry_.counter("meshguard_authz_decisions_total", decision_labels(decision, allowed));
    it = cache.decision_series.emplace(key, counter).first;
  }
  it->second->inc();
  count_opa(cache, decision);
  count_shadow_outcome(decision);
}

namespace {
telemetry::Labels opa_labels(const Verdict::Opa& o) {
  return {{"policy", o.policy}, {"outcome", o.outcome}, {"dry_run", o.dry_run ? "true" : "false"}};
}
}  // namespace

void Report::count_opa(SeriesCache& cache, const Verdict& decision) {
  for (const auto& o : decision.opa) {
    std::string& key = cache.key;
    key.clear();
    key += o.policy;
    key += '\0';
    key += o.outcome;
    key += '\0';
    key += o.dry_run ? 't' : 'f';
    auto it = cache.opa_series.find(key);
    if (it == cache.opa_series.end()) {
      if (cache.opa_series.size() >= kMaxCachedSeries) cache.opa_series.clear();
      auto* counter = &registry_.counter("meshguard_opa_decisions_total", opa_labels(o));
      it = cache.opa_series.emplace(key, counter).first;
    }
    it->second->inc();
  }
}

void Report::ext_authz_call(const Verdict::ExtAuthzCall& call) {
  registry_
      .counter("meshguard_ext_authz_requests_total",
               {{"provider", call.provider}, {"outcome", std::string(to_string(call.outcome))}})
      .inc();
  registry_.histogram("meshguard_ext_authz_duration_milliseconds", {{"provider", call.provider}}).observe_ms(call.latency_ms);
}

void Report::count_decision(const Verdict& decision, bool allowed) {
  registry_.counter("meshguard_authz_decisions_total", decision_labels(decision, allowed)).inc();
  count_dry_run(decision);
}

void Report::count_dry_run(const Verdict& decision) {
  for (const auto& o : decision.opa) registry_.counter("meshguard_opa_decisions_total", opa_labels(o)).inc();
  count_shadow_outcome(decision);
}

void Report::count_shadow_outcome(const Verdict& decision) {
  if (decision.dry_run_allow) {
    // The shadow outcome: what enforcing the dry-run policies would have done.
    registry_
        .counter("meshguard_authz_decisions_total",
                 {{"action", "DRY_RUN"},
                  {"policy", decision.dry_run_policy.value_or("none")},
                  {"result", *decision.dry_run_allow ? "allowed" : "denied"},
                  {"dry_run", "true"}})
        .inc();
  }
}

void Report::record_insight(std::string_view source_principal, std::string_view source_address, bool mtls,
                            std::string_view method, std::string_view path, int status, const Verdict& decision) {
  const std::string_view policy = decision.policy ? std::string_view(*decision.policy) : std::string_view();
  insights_.count(source_principal, mtls, decision.allow, policy, method, path);
  if (decision.allow && !decision.audit) return;
  insights_.sample({.time_unix_ms = telemetry::unix_millis_now(),
                    .source_principal = std::string(source_principal),
                    .source_address = std::string(source_address),
                    .method = std::string(method),
                    .path = std::string(path),
                    .status = status,
                    .policy = std::string(policy),
                    .rule = decision.rule.value_or(-1),
                    .reason = decision.reason,
                    .allowed = decision.allow,
                    .audit = decision.audit,
                    .mtls = mtls});
}

SeriesCache::RequestSeries& Report::request_series(SeriesCache& cache, const Exchange& ex, const HttpSide& side,
                                                   bool mtls, std::string_view flags,
                                                   std::string_view source_principal,
                                                   std::string_view destination_principal, const OwnMetadata& own) {
  const bool inbound = side.inbound != nullptr;
  char code[16];
  auto code_end = std::to_chars(code, code + sizeof code, ex.status).ptr;
  std::string& key = cache.key;
  key.clear();
  key += inbound ? 'i' : 'o';
  key += mtls ? 'm' : 'n';
  key.append(code, code_end);
  key += '\0';
  if (!inbound && side.route) {
    char route[16];
    key.append(route, std::to_chars(route, route + sizeof route, *side.route).ptr);
    key += ex.destination_service;  // outbound by name: one listener, many services
  }
  key += '\0';
  key += flags;
  key += '\0';
  key += source_principal;
  key += '\0';
  key += destination_principal;
  key += '\0';
  key += ex.grpc ? 'g' : 'h';
  key += ex.grpc_status;
  key += '\0';
  char generation[24];
  key.append(generation, std::to_chars(generation, generation + sizeof generation, own.generation).ptr);
  if (ex.peer) {
    key += '\0';
    key += ex.peer->key;
  }
  auto it = cache.request_series.find(key);
  if (it != cache.request_series.end()) return it->second;
  if (cache.request_series.size() >= kMaxCachedSeries) cache.request_series.clear();
  // Built once per series (a cache miss).
  telemetry::Labels labels = workload_labels(own, inbound, source_principal, destination_principal,
                                             inbound || !side.route ? std::nullopt : side.route,
                                             ex.destination_service, ex.peer ? &ex.peer->labels : nullptr);
  labels.insert(labels.end(), {{"request_protocol", ex.grpc ? "grpc" : "http"},
                               {"response_code", std::string(code, code_end)},
                               {"response_flags", std::string(flags)},
                               {"connection_security_policy", mtls ? "mutual_tls" : "none"},
                               {"grpc_response_status", ex.grpc_status}});
  SeriesCache::RequestSeries series{&registry_.counter("istio_requests_total", labels),
                                    &registry_.histogram("istio_request_duration_milliseconds", labels),
                                    &registry_.histogram("istio_request_bytes", labels),
                                    &registry_.histogram("istio_response_bytes", labels)};
  return cache.request_series.emplace(key, series).first->second;
}

void Report::http_exchange(SeriesCache& cache, const Exchange& ex, const HttpSide& side,
                           const Verdict* decision, std::string_view own) {
  double duration = ms_since(ex.start);
  bool inbound = side.inbound != nullptr;
  std::string_view source_principal = !inbound    ? own
                                      : side.peer ? std::string_view(side.peer->id.str())
                                                  : std::string_view("unknown");
  std::string_view destination_principal = inbound                         ? own
                                           : ex.upstream_principal.empty() ? std::string_view("unknown")
                                                                           : ex.upstream_principal;
  std::string_view flags = to_string(ex.flags);
  const auto own_metadata = own_.load();
  auto& series = request_series(cache, ex, side, !inbound || side.peer, flags, source_principal,
                                destination_principal, *own_metadata);
  series.requests->inc();
  series.duration->observe(duration);
  series.request_bytes->observe(static_cast<double>(ex.bytes_received));
  series.response_bytes->observe(static_cast<double>(ex.bytes_sent));
  std::array<char, 64> time;
  telemetry::JsonLine line(telemetry::AccessLog::scratch());
  line.str("time", telemetry::now_rfc3339(time))
      // A gateway listener's request is neither a sidecar's inbound nor its outbound: it came from
      // outside the mesh (or from a workload, to an egress gateway) and leaves to a destination.
      .str("direction", side.gateway ? "gateway"
                        : inbound    ? "inbound"
                                     : "outbound")
      .str("protocol", ex.grpc ? "grpc" : "http")
      .open("source")
      .str("principal", source_principal)
      .str("address", side.source)
      .close()
      .open("destination")
      .str("principal", destination_principal);
  if (inbound) {
    line.num("port", side.listen_port).num("appPort", side.inbound->app_port);
  } else {
    const OutboundRoute& route = config_.outbound[*side.route];
    line.str("address", !ex.upstream_address.empty() ? ex.upstream_address
                        : route.by_registry()        ? std::string("-")  // no endpoint was chosen
                                                     : destination_of(route));
    if (!ex.destination_service.empty()) line.str("service", ex.destination_service);
  }
  line.close()
      .str("method", ex.method)
      .str("host", ex.host)
      .str("path", ex.path)
      .num("status", ex.status)
      .str("response_flags", flags)
      .str("response_code_details", to_string(ex.details));
  if (ex.grpc) line.str("grpc_status", ex.grpc_status);
  write_decision(line, decision, inbound ? "malformed request" : "");
  if (inbound && decision) {
    record_insight(side.peer ? source_principal : std::string_view(), side.source, side.peer.has_value(), ex.method,
                   ex.path, ex.status, *decision);
  }
  line.millis("duration_ms", duration)
      .num("bytes_received", ex.bytes_received)
      .num("bytes_sent", ex.bytes_sent);
  access_log_->write_line(line.finish());
}

telemetry::Labels Report::workload_labels(const OwnMetadata& own_metadata, bool inbound,
                                         std::string_view source_principal,
                                         std::string_view destination_principal, std::optional<size_t> route,
                                         std::string_view registry_service, const WorkloadLabels* known_peer) const {
  // The peer as its metadata (or the registry) gave it; else by its authenticated principal: its
  // namespace.
  const WorkloadLabels& self = own_metadata.labels;
  const WorkloadLabels peer =
      known_peer ? *known_peer : WorkloadLabels::of_principal(inbound ? source_principal : destination_principal);
  const WorkloadLabels& src = inbound ? peer : self;
  const WorkloadLabels& dst = inbound ? self : peer;
  // The destination service: this workload's canonical service (inbound), or the route's
  // destination host (outbound: what the app addressed).
  std::string service = "unknown", service_name = "unknown", service_ns = "unknown";
  if (inbound) {
    service_name = self.canonical_service;
    service_ns = self.ns;
    service = service_name + "." + service_ns + ".svc.cluster.local";
  } else if (!registry_service.empty()) {
    // "name.ns.svc.cluster.local": Istio's destination_service, _name and _namespace.
    service = std::string(registry_service);
    size_t dot = service.find('.');
    service_name = service.substr(0, dot);
    // Istio's BlackHoleCluster (REGISTRY_ONLY) has no namespace.
    if (dot != std::string::npos) service_ns = service.substr(dot + 1, service.find('.', dot + 1) - dot - 1);
  } else if (route) {
    service = config_.outbound[*route].destination_address;
  }
  return {{"reporter", inbound ? "destination" : "source"},
          {"source_workload", src.workload},
          {"source_canonical_service", src.canonical_service},
          {"source_canonical_revision", src.canonical_revision},
          {"source_workload_namespace", src.ns},
          {"source_principal", std::string(source_principal)},
          {"source_app", src.app},
          {"source_version", src.version},
          {"destination_workload", dst.workload},
          {"destination_workload_namespace", dst.ns},
          {"destination_principal", std::string(destination_principal)},
          {"destination_app", dst.app},
          {"destination_version", dst.version},
          {"destination_service", std::move(service)},
          {"destination_canonical_service", dst.canonical_service},
          {"destination_canonical_revision", dst.canonical_revision},
          {"destination_service_name", std::move(service_name)},
          {"destination_service_namespace", std::move(service_ns)}};
}

telemetry::Labels Report::tcp_labels(bool inbound, const std::string& source_principal,
                                     const std::string& destination_principal, bool mtls,
                                     const WorkloadLabels* peer) const {
  auto labels = workload_labels(*own_.load(), inbound, source_principal, destination_principal, std::nullopt, {}, peer);
  labels.emplace_back("connection_security_policy", mtls ? "mutual_tls" : "none");
  return labels;
}

void Report::tcp_opened(const telemetry::Labels& labels) {
  registry_.counter("istio_tcp_connections_opened_total", labels).inc();
}

void Report::tcp_closed(const telemetry::Labels& labels, uint64_t received, uint64_t sent) {
  registry_.counter("istio_tcp_connections_closed_total", labels).inc();
  registry_.counter("istio_tcp_received_bytes_total", labels).inc(received);
  registry_.counter("istio_tcp_sent_bytes_total", labels).inc(sent);
}

void Report::inbound_tcp(const std::string& source, const std::string& source_principal,
                         const std::string& own_principal, const InboundPort& port, uint64_t received,
                         uint64_t sent, Clock::time_point start, ResponseFlag flags, const Verdict& decision,
                         const WorkloadLabels* source_labels) {
  std::array<char, 64> time;
  telemetry::JsonLine line(telemetry::AccessLog::scratch());
  line.str("time", telemetry::now_rfc3339(time))
      .str("direction", "inbound")
      .str("protocol", "tcp")
      .open("source")
      .str("principal", source_principal)
      .str("address", source);
  if (source_labels) line.str("workload", source_labels->workload).str("namespace", source_labels->ns);
  line.close()
      .open("destination")
      .str("principal", own_principal)
      .num("port", port.port)
      .num("appPort", port.app_port)
      .close()
      .str("response_flags", to_string(flags));
  write_decision(line, &decision, "");
  const bool mtls = source_principal != "unknown" && !source_principal.empty();
  record_insight(mtls ? std::string_view(source_principal) : std::string_view(), source, mtls, {}, {}, 0, decision);
  line.millis("duration_ms", ms_since(start)).num("bytes_received", received).num("bytes_sent", sent);
  access_log_->write_line(line.finish());
}

void Report::registry_outcome(const RegistryService& service, const RegistryPort& port, bool retried,
                              uint32_t ejections) {
  if (!retried && ejections == 0) return;
  const telemetry::Labels cluster{
      {"cluster_name", "outbound|" + std::to_string(port.port) + "||" + service.fqdn()}};
  if (retried) registry_.counter("envoy_cluster_upstream_rq_retry", cluster).inc();
  if (ejections) registry_.counter("envoy_cluster_outlier_detection_ejections_enforced_total", cluster).inc(ejections);
}

void Report::outbound_tcp(const std::string& own_principal, const std::string& source,
                          const std::string& peer_principal, const std::string& destination,
                          Clock::time_point start, uint64_t received, uint64_t sent,
                          const WorkloadLabels* peer) {
  nlohmann::json to{{"principal", peer_principal}, {"address", destination}};
  if (peer) {
    to["workload"] = peer->workload;
    to["namespace"] = peer->ns;
  }
  access_log_->write({{"time", telemetry::now_rfc3339()},
                      {"direction", "outbound"},
                      {"protocol", "tcp"},
                      {"source", {{"principal", own_principal}, {"address", source}}},
                      {"destination", std::move(to)},
                      {"response_flags", to_string(ResponseFlag::None)},
                      {"policy", nullptr},
                      {"rule", nullptr},
                      {"duration_ms", ms_since(start)},
                      {"bytes_received", received},
                      {"bytes_sent", sent}});
}

void Report::outbound_passthrough(const std::string& own_principal, const std::string& source, const std::string& sni,
                                  const std::string& service, const std::string& peer_principal,
                                  const std::string& destination, Clock::time_point start, uint64_t received,
                                  uint64_t sent) {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); };
  access_log_->write({{"time", telemetry::now_rfc3339()},
                      {"direction", "outbound"},
                      {"protocol", "tls"},
                      {"sni", or_null(sni)},
                      {"service", service},
                      {"source", {{"principal", own_principal}, {"address", source}}},
                      {"destination", {{"principal", or_null(peer_principal)}, {"address", destination}}},
                      {"response_flags", to_string(ResponseFlag::None)},
                      {"duration_ms", ms_since(start)},
                      {"bytes_received", received},
                      {"bytes_sent", sent}});
}

}  // namespace mg::proxy
