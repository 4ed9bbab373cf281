// Unit tests of Istio's metadata exchange as meshguard speaks it (proxy/peer_metadata.h): the
// header round-trips, untrusted values are bounded and refused when malformed, a namespace the
// certificate does not prove is not believed, and both headers are always stripped. The TCP
// exchange's frame (magic, length, Any of a Struct) round-trips and refuses what is not one.
#include <gtest/gtest.h>

#include "proxy/peer_metadata.h"
#include "proxy/report.h"
#include "rego/go_encoding.h"

namespace mg::proxy {
namespace {

WorkloadInfo reviews() {
  WorkloadInfo w;
  w.name = "reviews-v2";
  w.ns = "bookinfo";
  w.service_account = "bookinfo-reviews";
  w.labels = {{"app", "reviews"}, {"version", "v2"}, {"service.istio.io/canonical-revision", "rev7"}};
  return w;
}

std::string raw(std::string_view header) { return *rego::go::base64_decode(header, rego::go::Base64::Std); }
std::string b64(std::string_view bytes) { return rego::go::base64_encode(bytes, rego::go::Base64::Std); }

TEST(PeerMetadata, RoundTripsWorkloadNamespaceServiceAccountAndLabels) {
  const std::string header = encode_peer_metadata(reviews());
  auto w = decode_peer_metadata(header);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->name, "reviews-v2");
  EXPECT_EQ(w->ns, "bookinfo");
  EXPECT_EQ(w->service_account, "bookinfo-reviews");
  EXPECT_EQ(w->labels, reviews().labels);
  EXPECT_EQ(encode_peer_metadata(reviews()), header);  // deterministic
  // The serialized Struct carries Istio's node-metadata keys.
  const std::string bytes = raw(header);
  for (const char* key : {"NAME", "NAMESPACE", "WORKLOAD_NAME", "LABELS", "SERVICE_ACCOUNT"})
    EXPECT_NE(bytes.find(key), std::string::npos) << key;
}

TEST(PeerMetadata, NodeIdIsIstioShaped) {
  WorkloadInfo w = reviews();
  w.address = "10.0.0.7";
  EXPECT_EQ(peer_metadata_id(w), "sidecar~10.0.0.7~reviews-v2.bookinfo~bookinfo.svc.cluster.local");
}

TEST(PeerMetadata, LabelsFollowIstiosFallbacks) {
  const WorkloadLabels l = WorkloadLabels::of(reviews());
  EXPECT_EQ(l.workload, "reviews-v2");
  EXPECT_EQ(l.app, "reviews");
  EXPECT_EQ(l.version, "v2");
  EXPECT_EQ(l.canonical_service, "reviews");
  EXPECT_EQ(l.canonical_revision, "rev7");
}

TEST(PeerMetadata, MalformedOrOversizedValuesAreRefused) {
  EXPECT_FALSE(decode_peer_metadata(""));
  EXPECT_FALSE(decode_peer_metadata("not base64!"));
  EXPECT_FALSE(decode_peer_metadata(b64("\x0a\x05\x0a")));   // an entry longer than the input
  EXPECT_FALSE(decode_peer_metadata(b64("\x0b")));           // a group: not in a Struct
  EXPECT_FALSE(decode_peer_metadata(b64(std::string(12, '\xff'))));  // a varint past 64 bits
  const std::string good = raw(encode_peer_metadata(reviews()));
  for (size_t cut = 1; cut < good.size(); ++cut) {
    auto w = decode_peer_metadata(b64(good.substr(0, cut)));
    // A prefix fails, or (cut at an entry boundary past NAMESPACE) holds only what was sent.
    if (w) {
      EXPECT_EQ(w->ns, "bookinfo");
      EXPECT_EQ(w->name, "reviews-v2");
    }
  }
  WorkloadInfo no_ns = reviews();
  no_ns.ns.clear();
  EXPECT_FALSE(decode_peer_metadata(encode_peer_metadata(no_ns)));
  WorkloadInfo many = reviews();
  for (int i = 0; i < 70; ++i) many.labels["l" + std::to_string(i)] = "x";
  EXPECT_FALSE(decode_peer_metadata(encode_peer_metadata(many)));
  WorkloadInfo long_value = reviews();
  long_value.labels["app"] = std::string(400, 'a');
  EXPECT_FALSE(decode_peer_metadata(encode_peer_metadata(long_value)));
  EXPECT_FALSE(decode_peer_metadata(std::string(9000, 'A')));
}

TEST(PeerMetadata, BelievedOnlyForTheNamespaceTheCertificateProves) {
  const std::string header = encode_peer_metadata(reviews());
  auto ok = peer_labels_for(header, "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->labels.workload, "reviews-v2");
  EXPECT_EQ(ok->labels.version, "v2");
  EXPECT_FALSE(peer_labels_for(header, "spiffe://cluster.local/ns/other/sa/bookinfo-reviews"));
  EXPECT_FALSE(peer_labels_for(header, "unknown"));
  EXPECT_FALSE(peer_labels_for("garbage", "spiffe://cluster.local/ns/bookinfo/sa/x"));
}

TEST(PeerMetadata, TakeStripsBothHeadersAndBelievesOnlyOneValue) {
  http::Headers h;
  h.add("X-Envoy-Peer-Metadata", "abc");
  h.add("x-envoy-peer-metadata-id", "sidecar~x");
  h.add("accept", "*/*");
  EXPECT_EQ(take_peer_metadata(h), "abc");
  EXPECT_FALSE(h.contains("x-envoy-peer-metadata"));
  EXPECT_FALSE(h.contains("x-envoy-peer-metadata-id"));
  EXPECT_EQ(h.size(), 1u);

  http::Headers twice;
  twice.add("x-envoy-peer-metadata", "a");
  twice.add("x-envoy-peer-metadata", "b");
  EXPECT_FALSE(take_peer_metadata(twice));
  EXPECT_TRUE(twice.empty());

  http::Headers id_only;
  id_only.add("x-envoy-peer-metadata-id", "sidecar~x");
  EXPECT_FALSE(take_peer_metadata(id_only));
  EXPECT_TRUE(id_only.empty());
}

// The worker's cache answers a peer's header as peer_labels_for does, the last answer included:
// the same bytes from the same principal again, then another principal, another header, a header
// refused (null, remembered too), and the first peer again after those.
TEST(PeerMetadata, CachedLabelsAnswerAsDecodingDoes) {
  SeriesCache cache;
  const std::string header = encode_peer_metadata(reviews());
  const std::string principal = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews";
  auto first = cached_peer_labels(cache, header, principal);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->labels.workload, "reviews-v2");
  EXPECT_EQ(cached_peer_labels(cache, header, principal), first);  // the last answer
  EXPECT_FALSE(cached_peer_labels(cache, header, "spiffe://cluster.local/ns/other/sa/bookinfo-reviews"));
  WorkloadInfo ratings = reviews();
  ratings.name = "ratings-v1";
  auto other = cached_peer_labels(cache, encode_peer_metadata(ratings), principal);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->labels.workload, "ratings-v1");
  EXPECT_FALSE(cached_peer_labels(cache, "garbage", principal));
  EXPECT_FALSE(cached_peer_labels(cache, "garbage", principal));
  // Another principal of the same namespace sending the same header: its own answer, not the last.
  auto sibling = cached_peer_labels(cache, header, "spiffe://cluster.local/ns/bookinfo/sa/other");
  ASSERT_TRUE(sibling);
  auto sibling_again = cached_peer_labels(cache, header, "spiffe://cluster.local/ns/bookinfo/sa/other");
  EXPECT_EQ(sibling_again, sibling);
  EXPECT_NE(cached_peer_labels(cache, header, principal), sibling);
  auto again = cached_peer_labels(cache, header, principal);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->labels.workload, "reviews-v2");
}

TEST(PeerMetadata, OwnMetadataCarriesTheHeadersItsLabelsMake) {
  auto own = OwnMetadata::make(reviews(), 3);
  EXPECT_EQ(own->generation, 3u);
  EXPECT_EQ(own->labels.app, "reviews");
  EXPECT_EQ(own->header, encode_peer_metadata(reviews()));
  http::Headers h;
  add_metadata(h, *own);
  EXPECT_EQ(take_peer_metadata(h), own->header);
}

// A protobuf length-delimited field, for hand-made frames.
std::string field(uint32_t number, std::string_view bytes) {
  std::string out(1, static_cast<char>((number << 3) | 2));
  for (size_t v = bytes.size();; v >>= 7) {
    out += static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    if (v < 0x80) break;
  }
  return out + std::string(bytes);
}
// A Struct entry {key: Value{field value_field: value}}.
std::string entry(std::string_view key, uint32_t value_field, std::string_view value) {
  return field(1, field(1, key) + field(2, field(value_field, value)));
}
std::string any_of(std::string_view type_url, std::string_view value) {
  return field(1, type_url) + field(2, value);
}
constexpr std::string_view kStructUrl = "type.googleapis.com/google.protobuf.Struct";

TEST(PeerExchangeFrame, RoundTripsWithIstiosMagicAndLength) {
  const std::string frame = encode_exchange_frame(reviews());
  ASSERT_GT(frame.size(), kPeerExchangeHeaderSize);
  EXPECT_EQ(frame.substr(0, 4), std::string("\x3d\x23\x04\x67", 4));  // big-endian magic
  auto size = parse_exchange_header(std::string_view(frame).substr(0, kPeerExchangeHeaderSize));
  ASSERT_TRUE(size) << size.error().to_string();
  EXPECT_EQ(*size, frame.size() - kPeerExchangeHeaderSize);
  const std::string_view body = std::string_view(frame).substr(kPeerExchangeHeaderSize);
  auto w = decode_exchange_body(body);
  ASSERT_TRUE(w) << w.error().to_string();
  EXPECT_EQ(w->name, "reviews-v2");
  EXPECT_EQ(w->ns, "bookinfo");
  EXPECT_EQ(w->service_account, "bookinfo-reviews");
  EXPECT_EQ(w->labels, reviews().labels);
  // The Any names a Struct; the node id travels beside the node metadata, as Istio writes it.
  EXPECT_NE(body.find(kStructUrl), std::string::npos);
  EXPECT_NE(body.find(peer_metadata_id(reviews())), std::string::npos);
  EXPECT_EQ(OwnMetadata::make(reviews(), 1)->frame, frame);
  auto labels = peer_labels_for(*w, "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");
  ASSERT_TRUE(labels);
  EXPECT_EQ(labels->labels.app, "reviews");
  EXPECT_FALSE(peer_labels_for(*w, "spiffe://cluster.local/ns/other/sa/bookinfo-reviews"));
}

TEST(PeerExchangeFrame, HeaderRefusesAnotherMagicAndOutOfBoundsLengths) {
  auto header = [](uint32_t magic, uint32_t size) {
    std::string h;
    for (uint32_t word : {magic, size})
      for (int shift = 24; shift >= 0; shift -= 8) h += static_cast<char>((word >> shift) & 0xff);
    return h;
  };
  EXPECT_EQ(*parse_exchange_header(header(kPeerExchangeMagic, 100)), 100u);
  EXPECT_EQ(*parse_exchange_header(header(kPeerExchangeMagic, kMaxPeerExchangeBody)), kMaxPeerExchangeBody);
  EXPECT_EQ(parse_exchange_header("GET / HT").error().code,
            "peer_exchange.bad_magic");  // app bytes, no frame
  EXPECT_EQ(parse_exchange_header(header(0x6704233d, 100)).error().code, "peer_exchange.bad_magic");
  EXPECT_EQ(parse_exchange_header(header(kPeerExchangeMagic, 0)).error().code, "peer_exchange.bad_size");
  EXPECT_EQ(parse_exchange_header(header(kPeerExchangeMagic, kMaxPeerExchangeBody + 1)).error().code,
            "peer_exchange.bad_size");
  EXPECT_EQ(parse_exchange_header(header(kPeerExchangeMagic, 0xffffffff)).error().code,
            "peer_exchange.bad_size");
  EXPECT_EQ(parse_exchange_header("short").error().code, "peer_exchange.short");
}

TEST(PeerExchangeFrame, BodyRefusesWhatIsNotOneWellFormedNodeMetadata) {
  const std::string node = raw(encode_peer_metadata(reviews()));
  const std::string good = any_of(kStructUrl, entry("x-envoy-peer-metadata", 5, node));
  ASSERT_TRUE(decode_exchange_body(good));
  EXPECT_FALSE(decode_exchange_body(""));
  EXPECT_FALSE(decode_exchange_body("\x0b"));  // a group
  EXPECT_FALSE(decode_exchange_body(
      any_of("type.googleapis.com/google.protobuf.Value", entry("x-envoy-peer-metadata", 5, node))));
  EXPECT_FALSE(decode_exchange_body(field(1, kStructUrl)));                         // no value
  EXPECT_FALSE(decode_exchange_body(any_of(kStructUrl, entry("other", 5, node))));  // no node metadata
  EXPECT_FALSE(decode_exchange_body(any_of(kStructUrl, entry("x-envoy-peer-metadata", 3, "a string"))));
  EXPECT_FALSE(decode_exchange_body(
      any_of(kStructUrl, entry("x-envoy-peer-metadata", 5, node) + entry("x-envoy-peer-metadata", 5, node))));
  WorkloadInfo no_name = reviews();
  no_name.name.clear();
  EXPECT_FALSE(decode_exchange_body(
      any_of(kStructUrl, entry("x-envoy-peer-metadata", 5, raw(encode_peer_metadata(no_name))))));
  EXPECT_FALSE(decode_exchange_body(std::string(kMaxPeerExchangeBody + 1, '\x0a')));
  // Every truncation of a good body is refused (the Any's length prefixes no longer fit).
  const std::string frame_body = encode_exchange_frame(reviews()).substr(kPeerExchangeHeaderSize);
  for (size_t cut = 0; cut < frame_body.size(); ++cut) {
    EXPECT_FALSE(decode_exchange_body(std::string_view(frame_body).substr(0, cut))) << "cut at " << cut;
  }
}

}  // namespace
}  // namespace mg::proxy
