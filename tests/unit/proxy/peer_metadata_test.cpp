// Unit tests of Istio's metadata exchange as meshguard speaks it (proxy/peer_metadata.h): the
// header round-trips, untrusted values are bounded and refused when malformed, a namespace the
// certificate does not prove is not believed, and both headers are always stripped.
#include <gtest/gtest.h>

#include "proxy/peer_metadata.h"
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

TEST(PeerMetadata, OwnMetadataCarriesTheHeadersItsLabelsMake) {
  auto own = OwnMetadata::make(reviews(), 3);
  EXPECT_EQ(own->generation, 3u);
  EXPECT_EQ(own->labels.app, "reviews");
  EXPECT_EQ(own->header, encode_peer_metadata(reviews()));
  http::Headers h;
  add_metadata(h, *own);
  EXPECT_EQ(take_peer_metadata(h), own->header);
}

}  // namespace
}  // namespace mg::proxy
