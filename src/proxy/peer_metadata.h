// proxy/peer_metadata.h — who the far end of a request is, beyond its certificate: Istio's HTTP
// metadata exchange between two meshguard proxies, and the workload labels Istio's metrics are
// made of. The client proxy sends its workload's metadata on each request it forwards over mTLS
// (x-envoy-peer-metadata: base64 of a serialized google.protobuf.Struct with Istio's node-metadata
// keys NAME, NAMESPACE, WORKLOAD_NAME, SERVICE_ACCOUNT, LABELS; x-envoy-peer-metadata-id: the node
// id); the server proxy answers with its own on the response. Each side labels the other from it.
//
// A TCP connection between two proxies carries the same metadata once, before the app's bytes
// (Istio's TCP metadata exchange): the client proxy offers ALPN istio-peer-exchange on the mTLS
// connection of a TCP route; when the server proxy selects it, each side writes one frame — a
// 4-byte magic 0x3D230467 and a 4-byte length (both big-endian), then a google.protobuf.Any of a
// Struct holding x-envoy-peer-metadata (the node-metadata Struct) and x-envoy-peer-metadata-id —
// and reads the other's (proxy/peer_exchange.h does the I/O; the frame is built and parsed here).
//
// Trust: the headers (and frames) are believed only from an mTLS peer (a meshguard proxy proved by its
// certificate) and only when the metadata's namespace is the one the certificate names. Both
// proxies strip them from everything else — a plaintext client's request, the local app's request
// and response — so an app can neither spoof its labels nor see the exchange. Pure: no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "proxy/config.h"

namespace mg::proxy {

inline constexpr std::string_view kPeerMetadataHeader = "x-envoy-peer-metadata";
inline constexpr std::string_view kPeerMetadataIdHeader = "x-envoy-peer-metadata-id";

// What Istio's metrics say about one side's workload, from its name, namespace and labels, with
// Istio's fallbacks: app / version from the `app` / `version` labels ("unknown"), canonical
// service from service.istio.io/canonical-name, app.kubernetes.io/name, app, else the workload
// name; canonical revision from service.istio.io/canonical-revision, app.kubernetes.io/version,
// version, else "latest".
struct WorkloadLabels {
  std::string workload, ns, app, version, canonical_service, canonical_revision;
  static WorkloadLabels of(const WorkloadInfo& w);
  // A peer known only by its authenticated SPIFFE ID: its namespace, everything else "unknown".
  static WorkloadLabels of_principal(std::string_view principal);
  // A peer the registry names (an endpoint's workload in its service's namespace) but whose
  // labels are not known: app, version and canonical names "unknown".
  static WorkloadLabels of_name(std::string_view workload, std::string_view ns);
};

// This proxy's workload as its metrics name it and as it announces itself to peers. Immutable;
// replaced as a whole when the control plane relabels the workload (Report::set_own).
struct OwnMetadata {
  WorkloadInfo info;  // what the rest is made of
  WorkloadLabels labels;
  std::string header;     // x-envoy-peer-metadata value
  std::string header_id;  // x-envoy-peer-metadata-id value
  std::string frame;      // the TCP exchange frame (encode_exchange_frame)
  uint64_t generation = 0;  // bumps with each change: part of the metric series cache key
  static std::shared_ptr<const OwnMetadata> make(const WorkloadInfo& w, uint64_t generation);
};

// A peer's labels as its metadata gave them, with the series cache key they make.
struct PeerLabels {
  WorkloadLabels labels;
  std::string key;  // the labels joined by '\0': what tells two peers' series apart
  static std::shared_ptr<const PeerLabels> make(WorkloadLabels labels);
};

// The header value for `w` (deterministic: the same workload gives the same bytes).
std::string encode_peer_metadata(const WorkloadInfo& w);
// Istio's node id: sidecar~IP~NAME.NS~NS.svc.cluster.local.
std::string peer_metadata_id(const WorkloadInfo& w);

// The workload an untrusted header value describes (name, namespace, service account, labels);
// nullopt when it is not base64 of a well-formed Struct, lacks a namespace or a name, or is over
// the bounds (8 KiB of header, 64 labels, 316 bytes per key or value).
std::optional<WorkloadInfo> decode_peer_metadata(std::string_view header);

// The TCP exchange frame. Bounds: a body of 1..kMaxPeerExchangeBody bytes; its node metadata
// decoded with decode_peer_metadata's bounds (64 labels, 316 bytes per key or value).
inline constexpr uint32_t kPeerExchangeMagic = 0x3D230467;
inline constexpr size_t kPeerExchangeHeaderSize = 8;
inline constexpr size_t kMaxPeerExchangeBody = 8192;
// Magic, length and body for `w` (deterministic).
std::string encode_exchange_frame(const WorkloadInfo& w);
// The body's length from the frame's first kPeerExchangeHeaderSize bytes; an error for another
// magic (the peer did not send a frame) or a length out of bounds.
Result<size_t> parse_exchange_header(std::string_view header);
// The workload an untrusted frame body describes; an error when it is not an Any of a Struct with
// exactly one well-formed x-envoy-peer-metadata (name and namespace present, within the bounds).
Result<WorkloadInfo> decode_exchange_body(std::string_view body);

// Adds `own`'s x-envoy-peer-metadata and x-envoy-peer-metadata-id (to a request for the
// destination proxy, or a response for the source proxy).
void add_metadata(http::Headers& headers, const OwnMetadata& own);
void add_metadata(std::vector<http::Header>& headers, const OwnMetadata& own);

// Removes both exchange headers from `headers`; the x-envoy-peer-metadata value when it was there
// exactly once (else nullopt: nothing to believe).
std::optional<std::string> take_peer_metadata(http::Headers& headers);

// A decoded header accepted for a peer whose certificate proves `principal`: its namespace must be
// the principal's. Null when it does not decode or does not match.
std::shared_ptr<const PeerLabels> peer_labels_for(std::string_view header, std::string_view principal);
// The same for a workload already decoded (from a TCP exchange frame).
std::shared_ptr<const PeerLabels> peer_labels_for(const WorkloadInfo& w, std::string_view principal);

}  // namespace mg::proxy
