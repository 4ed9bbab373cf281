// proxy/report.h — what the proxy tells operators, in one place: the metric registry and the
// series every component counts into, the access log (one JSON line per request, TCP connection
// or connection event) and the proxy's stderr log line. Owns the Registry and the AccessLog.
//
// The request path counts through a worker's SeriesCache: a request then builds no Labels and
// renders no label text, and its access-log line is written with telemetry::JsonLine into the
// thread's reused buffer (issue 5), so recording a request allocates nothing once warm.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/listener.h"
#include "proxy/peer_metadata.h"
#include "proxy/registry.h"
#include "telemetry/access_log.h"
#include "telemetry/insights.h"
#include "telemetry/metrics.h"
#include "tls/tls.h"

namespace mg::proxy {

// "meshguard-proxy: <message>" on stderr, whole lines from any thread.
void log_line(const std::string& message);

// One worker's metric series by label values; touched only on the worker's thread. Registry
// series are never removed, so the pointers stay valid.
struct SeriesCache {
  struct RequestSeries {
    telemetry::Counter* requests;
    telemetry::Histogram* duration;
    telemetry::Histogram* request_bytes;
    telemetry::Histogram* response_bytes;
  };
  std::unordered_map<std::string, RequestSeries> request_series;
  std::unordered_map<std::string, telemetry::Counter*> decision_series;
  std::unordered_map<std::string, telemetry::Counter*> opa_series;  // meshguard_opa_decisions_total
  std::string key;  // the lookup key, capacity reused
  // Peers' x-envoy-peer-metadata decoded, by principal and header value: a keep-alive peer
  // sends the same bytes on every request, decoded once here.
  std::unordered_map<std::string, std::shared_ptr<const PeerLabels>> peer_metadata;
  // The last of those answers (null: refused) and its key: the next request from the same peer
  // (every stream of an HTTP/2 connection) finds it without hashing the header again.
  std::string last_peer_key;
  std::shared_ptr<const PeerLabels> last_peer_labels;
  bool last_peer_known = false;
};

// The labels a peer's metadata header gives (null: none believed), through the worker's cache.
std::shared_ptr<const PeerLabels> cached_peer_labels(SeriesCache& cache, std::string_view header,
                                                     std::string_view principal);
// A registry endpoint's workload as the registry names it (its name, its service's namespace; app
// and version unknown), through the worker's cache: the destination of a request its proxy said
// nothing about — one this proxy answered itself (503 not reached or reset, 504 timed out).
std::shared_ptr<const PeerLabels> cached_endpoint_labels(SeriesCache& cache, std::string_view workload,
                                                         std::string_view ns);

class Report {
 public:
  using Clock = std::chrono::steady_clock;

  // `config` outlives the Report (the workload's labels and outbound destinations are read from it).
  explicit Report(const ProxyConfig& config);
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;

  Status open_access_log(const std::string& path);

  // This workload as the metrics name it and as the metadata exchange announces it: from the
  // proxy config (or the registered Workload at start), then from each publish's Workload
  // document (set_own_labels), so a relabel pushed by the control plane needs no restart.
  std::shared_ptr<const OwnMetadata> own() const { return own_.load(); }
  void set_own_labels(const std::map<std::string, std::string>& labels);
  telemetry::Registry& registry() { return registry_; }
  // What the inbound enforcement decided, per flow, for the control plane's console (the agent
  // takes it every few seconds); recorded by http_exchange, inbound_tcp and connection_refused.
  telemetry::InsightRecorder& insights() { return insights_; }

  // meshguard_connections_refused_total{direction, reason}.
  void count_refused(ListenerKind direction, Refusal reason);
  // An inbound connection refused: counted, plus a "connection_refused" access-log event.
  void connection_refused(const std::string& source, uint16_t port, Refusal reason,
                          const std::string& detail);
  void outbound_refused(const std::string& source, const std::string& destination, const std::string& reason,
                        const std::string& detail);
  // What a policy reload closed: a TCP connection, a spliced WebSocket connection, an HTTP/2 stream.
  enum class Live { Tcp, WebSocket, Http2Stream };
  // One call through an egress gateway to a host outside the mesh (issue 20): the audit trail's
  // line, written for every request or connection, allowed or denied — who called (the verified
  // principal), which external host and SNI, what (method and path where visible: not through a
  // TLS or TCP passthrough), how much, and the decision with its policy. Event "egress_audit".
  struct EgressAudit {
    std::string source_principal = "unknown";  // the caller's SPIFFE ID, "unknown" without mTLS
    std::string source_address;
    std::string host;  // the external host asked for (no port)
    uint16_t port = 0;
    std::string sni;             // the server name originated / passed through; "" for plaintext
    std::string method, path;    // "" where not visible
    int status = 0;              // the HTTP status answered; 0 for a TCP connection
    uint64_t bytes_received = 0, bytes_sent = 0;
    bool allowed = false;
    std::string policy;  // "ns/name" of the deciding policy; "" when none decided
    std::string reason;
  };
  void egress_audit(const EgressAudit& a);
  // A live connection a policy reload no longer allows: counted, logged and given an access-log event.
  void closed_by_policy(Live what, size_t inbound_index, const std::string& source,
                        const std::optional<tls::PeerIdentity>& peer, uint64_t policy_version,
                        const Verdict& decision);

  // meshguard_authz_decisions_total (and its dry-run shadow): the request path's form finds the
  // series in the worker's cache; the other is for connections and re-judging.
  void count_decision(SeriesCache& cache, const Verdict& decision, bool allowed);
  void count_decision(const Verdict& decision, bool allowed);
  // A CUSTOM policy's call to its extension provider: meshguard_ext_authz_requests_total{provider,
  // outcome} and meshguard_ext_authz_duration_milliseconds{provider}.
  void ext_authz_call(const Verdict::ExtAuthzCall& call);

  // One HTTP exchange: istio_requests_total, istio_request_duration_milliseconds and its access-log
  // line. `own_principal` is this workload's SPIFFE ID ("unknown" without a certificate).
  void http_exchange(SeriesCache& cache, const Exchange& ex, const HttpSide& side, const Verdict* decision,
                     std::string_view own_principal);

  // istio_tcp_* labels of a TCP connection: reported by the destination (inbound) or the source.
  // `peer`: the far end's workload when known otherwise than by its principal (the registry's
  // endpoint, outbound); else its principal's namespace only.
  telemetry::Labels tcp_labels(bool inbound, const std::string& source_principal,
                               const std::string& destination_principal, bool mtls,
                               const WorkloadLabels* peer = nullptr) const;
  void tcp_opened(const telemetry::Labels& labels);
  void tcp_closed(const telemetry::Labels& labels, uint64_t received, uint64_t sent);
  // The access-log line of an inbound TCP connection; `source_labels`: the source's workload when
  // its proxy's metadata frame named it (source.workload and source.namespace in the line).
  void inbound_tcp(const std::string& source, const std::string& source_principal,
                   const std::string& own_principal, const InboundPort& port, uint64_t received,
                   uint64_t sent, Clock::time_point start, ResponseFlag flags, const Verdict& decision,
                   const WorkloadLabels* source_labels = nullptr);
  // A request (or TCP connection) to a registry service port: Envoy's cluster counters
  // envoy_cluster_upstream_rq_retry and envoy_cluster_outlier_detection_ejections_enforced_total
  // {cluster_name="outbound|PORT||FQDN"}, when it retried or ejected.
  void registry_outcome(const RegistryService& service, const RegistryPort& port, bool retried, uint32_t ejections);
  // The access-log line of an outbound TCP connection; `peer`: the destination's workload when
  // known (its metadata frame, or the registry's endpoint): destination.workload and .namespace.
  void outbound_tcp(const std::string& own_principal, const std::string& source,
                    const std::string& peer_principal, const std::string& destination,
                    Clock::time_point start, uint64_t received, uint64_t sent,
                    const WorkloadLabels* peer = nullptr);
  // The access-log line of an app's TLS a client proxy passed through by SNI (protocol "tls"):
  // the SNI, the service it went to (a mesh service's FQDN, or the external host), the peer's
  // principal ("" for a host outside the mesh) and address.
  void outbound_passthrough(const std::string& own_principal, const std::string& source, const std::string& sni,
                            const std::string& service, const std::string& peer_principal,
                            const std::string& destination, Clock::time_point start, uint64_t received,
                            uint64_t sent);

 private:
  void count_refused(std::string_view direction, std::string_view reason);
  SeriesCache::RequestSeries& request_series(SeriesCache& cache, const Exchange& ex, const HttpSide& side,
                                             bool mtls, std::string_view flags, std::string_view source_principal,
                                             std::string_view destination_principal, const OwnMetadata& own);
  void count_dry_run(const Verdict& decision);
  // meshguard_opa_decisions_total for each OPAPolicy that ran, through the worker's series cache:
  // a policy decides on every request, and the registry lookup renders and locks.
  void count_opa(SeriesCache& cache, const Verdict& decision);
  void count_shadow_outcome(const Verdict& decision);
  // One inbound decision into insights_: its flow counted; a denial or an audit also sampled.
  void record_insight(std::string_view source_principal, std::string_view source_address, bool mtls,
                      std::string_view method, std::string_view path, int status, const Verdict& decision);
  // reporter and the source_* / destination_* labels Istio's request and TCP metrics share.
  // `peer`: the far end's labels from its metadata (or the registry); null: from its principal.
  telemetry::Labels workload_labels(const OwnMetadata& own, bool inbound, std::string_view source_principal,
                                    std::string_view destination_principal, std::optional<size_t> route,
                                    std::string_view service, const WorkloadLabels* peer) const;

  const ProxyConfig& config_;
  std::atomic<std::shared_ptr<const OwnMetadata>> own_;  // never null
  telemetry::Registry registry_;
  telemetry::InsightRecorder insights_;
  std::unique_ptr<telemetry::AccessLog> access_log_;
};

// "address:port" of an outbound route's destination.
std::string destination_of(const OutboundRoute& route);

}  // namespace mg::proxy
