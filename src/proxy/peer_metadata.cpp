#include "proxy/peer_metadata.h"

#include "identity/spiffe_id.h"
#include "rego/go_encoding.h"

namespace mg::proxy {

namespace {

constexpr size_t kMaxHeader = 8192;
constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxText = 316;  // a Kubernetes label key: a 253-byte prefix, '/', a 62-byte name

// google.protobuf.Struct on the wire: Struct{1: repeated entry{1: key, 2: Value}};
// Value{3: string_value, 5: struct_value, ...}. Only the parts the exchange uses are written.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_varint(out, (field << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}
// A map entry whose Value is a string (field 3) or an already-encoded Struct (field 5).
void put_entry(std::string& out, std::string_view key, uint32_t value_field, std::string_view value) {
  std::string v;
  put_bytes(v, value_field, value);
  std::string entry;
  put_bytes(entry, 1, key);
  put_bytes(entry, 2, v);
  put_bytes(out, 1, entry);
}

// A bounded reader of protobuf fields; every failure leaves ok() false.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool more() const { return ok_ && pos_ < in_.size(); }
  bool ok() const { return ok_; }
  // The next field: its number and, for a length-delimited one, its bytes (others are skipped).
  bool next(uint32_t& field, std::optional<std::string_view>& bytes) {
    bytes.reset();
    uint64_t tag = 0;
    if (!varint(tag) || tag >> 3 == 0 || tag >> 3 > UINT32_MAX) return ok_ = false;
    field = static_cast<uint32_t>(tag >> 3);
    switch (tag & 7) {
      case 0: {
        uint64_t ignored = 0;
        return varint(ignored);
      }
      case 1:
        return skip(8);
      case 5:
        return skip(4);
      case 2: {
        uint64_t len = 0;
        if (!varint(len) || len > in_.size() - pos_) return ok_ = false;
        bytes = in_.substr(pos_, len);
        pos_ += len;
        return true;
      }
      default:  // groups (3, 4) and 6, 7: not in a Struct
        return ok_ = false;
    }
  }

 private:
  bool varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return ok_ = false;
      const auto b = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return ok_ = false;
  }
  bool skip(size_t n) {
    if (n > in_.size() - pos_) return ok_ = false;
    pos_ += n;
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Calls f(key, value) for each entry of an encoded Struct, `value` being the encoded Value;
// false when malformed.
template <class F>
bool for_each_entry(std::string_view encoded, F&& f) {
  Reader r(encoded);
  while (r.more()) {
    uint32_t field = 0;
    std::optional<std::string_view> entry;
    if (!r.next(field, entry)) return false;
    if (field != 1 || !entry) continue;  // not `fields`: ignored, as protobuf does
    Reader e(*entry);
    std::optional<std::string_view> key, value;
    while (e.more()) {
      uint32_t f2 = 0;
      std::optional<std::string_view> bytes;
      if (!e.next(f2, bytes)) return false;
      if (f2 == 1 && bytes) key = bytes;
      if (f2 == 2 && bytes) value = bytes;
    }
    if (!e.ok() || !key) return false;
    if (!f(*key, value.value_or(std::string_view()))) return false;
  }
  return r.ok();
}

// The string (field 3) or struct (field 5) of an encoded Value; nullopt for any other kind.
std::optional<std::string_view> value_field(std::string_view value, uint32_t wanted) {
  Reader r(value);
  std::optional<std::string_view> found;
  while (r.more()) {
    uint32_t field = 0;
    std::optional<std::string_view> bytes;
    if (!r.next(field, bytes)) return std::nullopt;
    if (bytes && field == wanted) found = bytes;
  }
  return r.ok() ? found : std::nullopt;
}

// The serialized Struct of Istio's node-metadata keys for `w`: what x-envoy-peer-metadata carries
// in base64 and the TCP exchange frame as a struct value.
std::string node_metadata(const WorkloadInfo& w) {
  std::string labels;
  for (const auto& [k, v] : w.labels) put_entry(labels, k, 3, v);
  // Keys in sorted order, as a serialized map usually is (the bytes are the same for one workload).
  std::string s;
  put_entry(s, "LABELS", 5, labels);
  put_entry(s, "NAME", 3, w.name);
  put_entry(s, "NAMESPACE", 3, w.ns);
  if (!w.service_account.empty()) put_entry(s, "SERVICE_ACCOUNT", 3, w.service_account);
  put_entry(s, "WORKLOAD_NAME", 3, w.name);
  return s;
}

// The workload a serialized node-metadata Struct describes; nullopt when malformed, over the
// bounds, or without a name or a namespace.
std::optional<WorkloadInfo> decode_node_metadata(std::string_view bytes) {
  WorkloadInfo w;
  std::string name, workload_name;
  auto text = [](std::string_view value, std::string& into) {
    auto s = value_field(value, 3);
    if (!s || s->size() > kMaxText) return false;
    into = std::string(*s);
    return true;
  };
  const bool ok = for_each_entry(bytes, [&](std::string_view key, std::string_view value) {
    if (key == "NAME") return text(value, name);
    if (key == "WORKLOAD_NAME") return text(value, workload_name);
    if (key == "NAMESPACE") return text(value, w.ns);
    if (key == "SERVICE_ACCOUNT") return text(value, w.service_account);
    if (key == "LABELS") {
      auto labels = value_field(value, 5);
      if (!labels) return false;
      return for_each_entry(*labels, [&](std::string_view k, std::string_view v) {
        std::string s;
        if (k.empty() || k.size() > kMaxText || !text(v, s) || w.labels.size() >= kMaxLabels) return false;
        w.labels[std::string(k)] = std::move(s);
        return true;
      });
    }
    return true;  // another key of Istio's node metadata: not used here
  });
  if (!ok) return std::nullopt;
  w.name = !workload_name.empty() ? workload_name : name;
  if (w.name.empty() || w.ns.empty()) return std::nullopt;
  return w;
}

// The TCP exchange's payload: google.protobuf.Any{1: type_url, 2: value}, the value a Struct with
// the node metadata under x-envoy-peer-metadata (a struct) and the node id under
// x-envoy-peer-metadata-id (a string), as Istio's metadata_exchange network filter writes it.
constexpr std::string_view kStructTypeUrl = "type.googleapis.com/google.protobuf.Struct";

}  // namespace

WorkloadLabels WorkloadLabels::of(const WorkloadInfo& w) {
  auto label = [&w](std::initializer_list<const char*> keys, std::string fallback) {
    for (const char* k : keys) {
      if (auto it = w.labels.find(k); it != w.labels.end() && !it->second.empty()) return it->second;
    }
    return fallback;
  };
  return {w.name.empty() ? "unknown" : w.name,
          w.ns.empty() ? "unknown" : w.ns,
          label({"app"}, "unknown"),
          label({"version"}, "unknown"),
          label({"service.istio.io/canonical-name", "app.kubernetes.io/name", "app"},
                w.name.empty() ? "unknown" : w.name),
          label({"service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"}, "latest")};
}

WorkloadLabels WorkloadLabels::of_principal(std::string_view principal) {
  WorkloadLabels out{"unknown", "unknown", "unknown", "unknown", "unknown", "unknown"};
  if (auto id = identity::SpiffeId::parse(principal); id) {
    if (auto ns = id->istio_namespace()) out.ns = std::string(*ns);
  }
  return out;
}

WorkloadLabels WorkloadLabels::of_name(std::string_view workload, std::string_view ns) {
  return {std::string(workload), std::string(ns), "unknown", "unknown", "unknown", "unknown"};
}

std::shared_ptr<const OwnMetadata> OwnMetadata::make(const WorkloadInfo& w, uint64_t generation) {
  auto out = std::make_shared<OwnMetadata>();
  out->info = w;
  out->labels = WorkloadLabels::of(w);
  out->header = encode_peer_metadata(w);
  out->header_id = peer_metadata_id(w);
  out->frame = encode_exchange_frame(w);
  out->generation = generation;
  return out;
}

std::shared_ptr<const PeerLabels> PeerLabels::make(WorkloadLabels labels) {
  auto out = std::make_shared<PeerLabels>();
  for (const std::string* s : {&labels.workload, &labels.ns, &labels.app, &labels.version,
                               &labels.canonical_service, &labels.canonical_revision}) {
    out->key += *s;
    out->key += '\0';
  }
  out->labels = std::move(labels);
  return out;
}

std::string encode_peer_metadata(const WorkloadInfo& w) {
  return rego::go::base64_encode(node_metadata(w), rego::go::Base64::Std);
}

std::string peer_metadata_id(const WorkloadInfo& w) {
  return "sidecar~" + (w.address.empty() ? std::string("0.0.0.0") : w.address) + "~" + w.name + "." + w.ns + "~" +
         w.ns + ".svc.cluster.local";
}

std::optional<WorkloadInfo> decode_peer_metadata(std::string_view header) {
  if (header.empty() || header.size() > kMaxHeader) return std::nullopt;
  auto bytes = rego::go::base64_decode(header, rego::go::Base64::Std);
  if (!bytes) return std::nullopt;
  return decode_node_metadata(*bytes);
}

std::string encode_exchange_frame(const WorkloadInfo& w) {
  std::string data;
  put_entry(data, kPeerMetadataHeader, 5, node_metadata(w));
  put_entry(data, kPeerMetadataIdHeader, 3, peer_metadata_id(w));
  std::string any;
  put_bytes(any, 1, kStructTypeUrl);
  put_bytes(any, 2, data);
  std::string frame;
  for (uint32_t word : {kPeerExchangeMagic, static_cast<uint32_t>(any.size())}) {
    for (int shift = 24; shift >= 0; shift -= 8) frame += static_cast<char>((word >> shift) & 0xff);
  }
  return frame + any;
}

Result<size_t> parse_exchange_header(std::string_view header) {
  if (header.size() != kPeerExchangeHeaderSize) return fail("peer_exchange.short", "incomplete frame header");
  auto word = [&header](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(header[at + i]);
    return v;
  };
  if (word(0) != kPeerExchangeMagic) {
    return fail("peer_exchange.bad_magic", "the peer's first bytes are not a metadata exchange frame");
  }
  const uint32_t size = word(4);
  if (size == 0 || size > kMaxPeerExchangeBody) {
    return fail("peer_exchange.bad_size", "metadata frame of " + std::to_string(size) + " bytes (1.." +
                                              std::to_string(kMaxPeerExchangeBody) + " allowed)");
  }
  return static_cast<size_t>(size);
}

Result<WorkloadInfo> decode_exchange_body(std::string_view body) {
  if (body.size() > kMaxPeerExchangeBody) return fail("peer_exchange.bad_size", "metadata frame too large");
  Reader any(body);
  std::optional<std::string_view> type_url, value;
  while (any.more()) {
    uint32_t field = 0;
    std::optional<std::string_view> bytes;
    if (!any.next(field, bytes)) break;
    if (field == 1 && bytes) type_url = bytes;
    if (field == 2 && bytes) value = bytes;
  }
  if (!any.ok() || !type_url || *type_url != kStructTypeUrl || !value) {
    return fail("peer_exchange.malformed", "the metadata frame is not a google.protobuf.Any of a Struct");
  }
  std::optional<WorkloadInfo> workload;
  bool node_seen = false;
  const bool ok = for_each_entry(*value, [&](std::string_view key, std::string_view v) {
    if (key != kPeerMetadataHeader) return true;  // the node id, or a key not used here
    if (node_seen) return false;                  // two: nothing to believe
    node_seen = true;
    auto node = value_field(v, 5);
    if (!node) return false;
    workload = decode_node_metadata(*node);
    return workload.has_value();
  });
  if (!ok || !workload) {
    return fail("peer_exchange.malformed",
                "the metadata frame's x-envoy-peer-metadata is missing or malformed (or over the bounds)");
  }
  return std::move(*workload);
}

void add_metadata(http::Headers& headers, const OwnMetadata& own) {
  headers.add(std::string(kPeerMetadataHeader), own.header);
  headers.add(std::string(kPeerMetadataIdHeader), own.header_id);
}

void add_metadata(std::vector<http::Header>& headers, const OwnMetadata& own) {
  headers.push_back({std::string(kPeerMetadataHeader), own.header});
  headers.push_back({std::string(kPeerMetadataIdHeader), own.header_id});
}

std::optional<std::string> take_peer_metadata(http::Headers& headers) {
  // One pass to count them (most requests from an app carry neither), one to remove them.
  size_t seen = 0;
  bool any = false;
  for (const auto& h : headers) {
    if (http::iequals(h.name, kPeerMetadataHeader)) {
      ++seen;
      any = true;
    } else if (http::iequals(h.name, kPeerMetadataIdHeader)) {
      any = true;
    }
  }
  if (!any) return std::nullopt;
  std::optional<std::string> value;
  // Moved, not copied: the field is removed next.
  if (seen == 1) value = std::move(headers.find(kPeerMetadataHeader)->value);
  headers.remove_if([](std::string_view name) {
    return http::iequals(name, kPeerMetadataHeader) || http::iequals(name, kPeerMetadataIdHeader);
  });
  return value;
}

std::shared_ptr<const PeerLabels> peer_labels_for(std::string_view header, std::string_view principal) {
  auto w = decode_peer_metadata(header);
  if (!w) return nullptr;
  return peer_labels_for(*w, principal);
}

std::shared_ptr<const PeerLabels> peer_labels_for(const WorkloadInfo& w, std::string_view principal) {
  auto id = identity::SpiffeId::parse(principal);
  if (!id) return nullptr;
  auto ns = id->istio_namespace();
  if (!ns || *ns != w.ns) return nullptr;
  return PeerLabels::make(WorkloadLabels::of(w));
}

}  // namespace mg::proxy
