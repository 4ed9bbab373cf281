#include "tls/tls.h"
#include "tls/origination.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <openssl/err.h>
#include <sys/stat.h>

#include "../identity/test_certs.h"
#include "common/files.h"

namespace mg::tls {
namespace {

namespace fs = std::filesystem;
using testcerts::ca_spec;
using testcerts::ec_key;
using testcerts::leaf_spec;
using testcerts::make_cert;

struct Ca {
  crypto::PKeyPtr key;
  crypto::X509Ptr cert;
};

Ca make_ca(const std::string& cn, std::time_t now) {
  Ca ca;
  ca.key = ec_key();
  ca.cert = make_cert(ca_spec(cn, now), ca.key.get(), nullptr, nullptr);
  return ca;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mg-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    now_ = std::time(nullptr);
    ca_ = make_ca("root", now_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes an SVID for `uri` issued by `ca` plus `bundle_ca`'s root as the trust bundle.
  TlsFiles write_identity(const std::string& name, const std::string& uri, const Ca& ca, const Ca& bundle_ca,
                          mode_t key_mode = 0600, std::time_t not_after_offset = 3600) {
    auto key = ec_key();
    auto spec = leaf_spec(uri, now_);
    spec.not_after = now_ + not_after_offset;
    if (not_after_offset < 0) spec.not_before = now_ - 7200;
    auto leaf = make_cert(spec, key.get(), ca.cert.get(), ca.key.get());
    TlsFiles f{dir_ + "/" + name + "-chain.pem", dir_ + "/" + name + "-key.pem", dir_ + "/" + name + "-bundle.pem"};
    EXPECT_TRUE(files::write_file_atomic(f.cert_chain, crypto::cert_to_pem(leaf.get()) + crypto::cert_to_pem(ca.cert.get()), 0644));
    EXPECT_TRUE(files::write_file_atomic(f.key, crypto::private_key_to_pem(key.get()), key_mode));
    EXPECT_TRUE(files::write_file_atomic(f.trust_bundle, crypto::cert_to_pem(bundle_ca.cert.get()), 0644));
    return f;
  }

  std::string dir_;
  std::time_t now_ = 0;
  Ca ca_;
};

// Runs a TLS handshake between two in-memory endpoints. Returns true when both completed.
struct Handshake {
  crypto::SslPtr server, client;
  bool server_ok = false, client_ok = false;
};

Handshake handshake_with(SSL_CTX*, Handshake h);

Handshake handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  return handshake_with(server_ctx, Handshake{crypto::SslPtr(SSL_new(server_ctx)), crypto::SslPtr(SSL_new(client_ctx))});
}

Handshake handshake_with(SSL_CTX*, Handshake h) {
  BIO *server_bio = nullptr, *client_bio = nullptr;
  BIO_new_bio_pair(&server_bio, 0, &client_bio, 0);
  SSL_set_bio(h.server.get(), server_bio, server_bio);
  SSL_set_bio(h.client.get(), client_bio, client_bio);
  SSL_set_accept_state(h.server.get());
  SSL_set_connect_state(h.client.get());
  bool server_failed = false, client_failed = false;
  for (int i = 0; i < 50 && !(h.server_ok && h.client_ok) && !server_failed && !client_failed; ++i) {
    if (!h.client_ok && !client_failed) {
      int r = SSL_do_handshake(h.client.get());
      if (r == 1) h.client_ok = true;
      else if (SSL_get_error(h.client.get(), r) != SSL_ERROR_WANT_READ) client_failed = true;
    }
    if (!h.server_ok && !server_failed) {
      int r = SSL_do_handshake(h.server.get());
      if (r == 1) h.server_ok = true;
      else if (SSL_get_error(h.server.get(), r) != SSL_ERROR_WANT_READ) server_failed = true;
    }
  }
  ERR_clear_error();
  return h;
}

TEST_F(TlsTest, LoadsCredentials) {
  auto files = write_identity("a", "spiffe://cluster.local/ns/default/sa/a", ca_, ca_);
  auto creds = load_credentials(files, now_);
  ASSERT_TRUE(creds) << creds.error().to_string();
  EXPECT_EQ((*creds)->own_id.str(), "spiffe://cluster.local/ns/default/sa/a");
  EXPECT_FALSE((*creds)->serial_hex.empty());
  EXPECT_EQ((*creds)->fingerprint.size(), 95u);
  EXPECT_GT((*creds)->not_after, now_);
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*creds)->server_ctx.get()), TLS1_3_VERSION);
}

TEST_F(TlsTest, RefusesReadableKeyExpiredCertAndForeignBundle) {
  auto readable = write_identity("r", "spiffe://cluster.local/ns/default/sa/r", ca_, ca_, 0644);
  EXPECT_FALSE(load_credentials(readable, now_));
  auto expired = write_identity("e", "spiffe://cluster.local/ns/default/sa/e", ca_, ca_, 0600, -3600);
  auto e = load_credentials(expired, now_);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "svid.expired");
  Ca other = make_ca("other", now_);
  auto foreign = write_identity("f", "spiffe://cluster.local/ns/default/sa/f", ca_, other);
  auto f = load_credentials(foreign, now_);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, "svid.chain_invalid");
}

TEST_F(TlsTest, RefusesKeyThatDoesNotMatch) {
  auto a = write_identity("a", "spiffe://cluster.local/ns/default/sa/a", ca_, ca_);
  auto b = write_identity("b", "spiffe://cluster.local/ns/default/sa/b", ca_, ca_);
  a.key = b.key;
  auto r = load_credentials(a, now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tls.key_mismatch");
}

TEST_F(TlsTest, MutualHandshakeYieldsBothIdentities) {
  auto server = load_credentials(write_identity("s", "spiffe://cluster.local/ns/default/sa/server", ca_, ca_), now_);
  auto client = load_credentials(write_identity("c", "spiffe://cluster.local/ns/default/sa/client", ca_, ca_), now_);
  ASSERT_TRUE(server && client);
  auto h = handshake((*server)->server_ctx.get(), (*client)->client_ctx.get());
  ASSERT_TRUE(h.server_ok && h.client_ok);
  EXPECT_STREQ(SSL_get_version(h.server.get()), "TLSv1.3");
  auto seen_by_server = verify_peer(h.server.get(), **server, now_);
  ASSERT_TRUE(seen_by_server) << seen_by_server.error().to_string();
  EXPECT_EQ(seen_by_server->id.str(), "spiffe://cluster.local/ns/default/sa/client");
  EXPECT_EQ(seen_by_server->cert_sha256_hex.size(), 64u);
  auto seen_by_client = verify_peer(h.client.get(), **client, now_);
  ASSERT_TRUE(seen_by_client);
  EXPECT_EQ(seen_by_client->id.str(), "spiffe://cluster.local/ns/default/sa/server");
  EXPECT_TRUE(check_secure_naming(seen_by_client->id, {"spiffe://cluster.local/ns/default/sa/server"}));
  auto mismatch = check_secure_naming(seen_by_client->id, {"spiffe://cluster.local/ns/default/sa/other"});
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, "tls.secure_naming");
  EXPECT_EQ(xfcc_value((*server)->own_id, *seen_by_server),
            "By=spiffe://cluster.local/ns/default/sa/server;Hash=" + seen_by_server->cert_sha256_hex +
                ";URI=spiffe://cluster.local/ns/default/sa/client");
}

TEST_F(TlsTest, ClientFromAnotherCaIsRefusedByTheServer) {
  Ca other = make_ca("other", now_);
  auto server = load_credentials(write_identity("s", "spiffe://cluster.local/ns/default/sa/server", ca_, ca_), now_);
  auto client = load_credentials(write_identity("c", "spiffe://cluster.local/ns/default/sa/client", other, other), now_);
  ASSERT_TRUE(server && client);
  auto h = handshake((*server)->server_ctx.get(), (*client)->client_ctx.get());
  EXPECT_FALSE(h.server_ok);
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  auto server = load_credentials(write_identity("s", "spiffe://cluster.local/ns/default/sa/server", ca_, ca_), now_);
  ASSERT_TRUE(server);
  crypto::SslCtxPtr anonymous(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_verify(anonymous.get(), SSL_VERIFY_NONE, nullptr);
  auto h = handshake((*server)->server_ctx.get(), anonymous.get());
  EXPECT_FALSE(h.server_ok);
}

TEST_F(TlsTest, Tls12ClientIsRefused) {
  auto server = load_credentials(write_identity("s", "spiffe://cluster.local/ns/default/sa/server", ca_, ca_), now_);
  auto client = load_credentials(write_identity("c", "spiffe://cluster.local/ns/default/sa/client", ca_, ca_), now_);
  ASSERT_TRUE(server && client);
  SSL_CTX_set_min_proto_version((*client)->client_ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version((*client)->client_ctx.get(), TLS1_2_VERSION);
  auto h = handshake((*server)->server_ctx.get(), (*client)->client_ctx.get());
  EXPECT_FALSE(h.server_ok);
}

// Moves application bytes server → client so the client processes the TLS 1.3 tickets.
void pump_tickets(Handshake& h) {
  const char msg[] = "x";
  ASSERT_EQ(SSL_write(h.server.get(), msg, 1), 1);
  char buf[16];
  ASSERT_EQ(SSL_read(h.client.get(), buf, sizeof buf), 1);
}

TEST_F(TlsTest, ClientResumesWithACapturedSessionAndStillSeesTheServerIdentity) {
  auto server = load_credentials(write_identity("s", "spiffe://cluster.local/ns/default/sa/server", ca_, ca_), now_);
  auto client = load_credentials(write_identity("c", "spiffe://cluster.local/ns/default/sa/client", ca_, ca_), now_);
  ASSERT_TRUE(server && client);
  SessionSink sink;
  // First connection: full handshake, tickets captured by the sink.
  auto first = handshake((*server)->server_ctx.get(), (*client)->client_ctx.get());
  ASSERT_TRUE(first.server_ok && first.client_ok);
  EXPECT_FALSE(SSL_session_reused(first.client.get()));
  attach_session_sink(first.client.get(), &sink);
  pump_tickets(first);
  ASSERT_TRUE(sink.latest);
  EXPECT_TRUE(SSL_SESSION_is_resumable(sink.latest.get()));
  // The first connection goes away without a close_notify (as a spliced connection does): the
  // captured session must stay usable.
  first.client.reset();
  first.server.reset();
  EXPECT_TRUE(SSL_SESSION_is_resumable(sink.latest.get()));

  // Second connection resumes: no certificates exchanged, identities still known.
  Handshake second{crypto::SslPtr(SSL_new((*server)->server_ctx.get())), crypto::SslPtr(SSL_new((*client)->client_ctx.get()))};
  ASSERT_EQ(SSL_set_session(second.client.get(), sink.latest.get()), 1);
  auto resumed = handshake_with((*server)->server_ctx.get(), std::move(second));
  ASSERT_TRUE(resumed.server_ok && resumed.client_ok);
  EXPECT_TRUE(SSL_session_reused(resumed.client.get()));
  EXPECT_TRUE(SSL_session_reused(resumed.server.get()));
  auto seen_by_server = verify_peer(resumed.server.get(), **server, now_);
  ASSERT_TRUE(seen_by_server) << seen_by_server.error().to_string();
  EXPECT_EQ(seen_by_server->id.str(), "spiffe://cluster.local/ns/default/sa/client");
  auto seen_by_client = verify_peer(resumed.client.get(), **client, now_);
  ASSERT_TRUE(seen_by_client) << seen_by_client.error().to_string();
  EXPECT_EQ(seen_by_client->id.str(), "spiffe://cluster.local/ns/default/sa/server");
  // Resumed, the leaf's validity is still enforced.
  EXPECT_FALSE(verify_peer(resumed.server.get(), **server, now_ + 10 * 3600));

  // A reloaded server (new context, new ticket keys) does not accept the old ticket.
  auto reloaded = load_credentials(write_identity("s2", "spiffe://cluster.local/ns/default/sa/server", ca_, ca_), now_);
  ASSERT_TRUE(reloaded);
  Handshake third{crypto::SslPtr(SSL_new((*reloaded)->server_ctx.get())), crypto::SslPtr(SSL_new((*client)->client_ctx.get()))};
  SSL_set_session(third.client.get(), sink.latest.get());
  auto full = handshake_with((*reloaded)->server_ctx.get(), std::move(third));
  ASSERT_TRUE(full.server_ok && full.client_ok);
  EXPECT_FALSE(SSL_session_reused(full.server.get()));
}

TEST(TlsDetect, ClientHelloPrefix) {
  EXPECT_TRUE(looks_like_tls(std::string_view("\x16\x03\x01", 3)));
  EXPECT_TRUE(looks_like_tls(std::string_view("\x16\x03", 2)));
  EXPECT_FALSE(looks_like_tls(std::string_view("\x16", 1)));
  EXPECT_FALSE(looks_like_tls("GET / HTTP/1.1"));
  EXPECT_FALSE(looks_like_tls(""));
}

TEST_F(TlsTest, CredentialStoreSwapsAtomically) {
  CredentialStore store;
  EXPECT_EQ(store.current(), nullptr);
  auto first = load_credentials(write_identity("a", "spiffe://cluster.local/ns/default/sa/a", ca_, ca_), now_);
  ASSERT_TRUE(first);
  store.replace(*first);
  auto held = store.current();
  auto second = load_credentials(write_identity("b", "spiffe://cluster.local/ns/default/sa/b", ca_, ca_), now_);
  ASSERT_TRUE(second);
  store.replace(*second);
  EXPECT_EQ(held->own_id.str(), "spiffe://cluster.local/ns/default/sa/a");  // still usable by its holder
  EXPECT_EQ(store.current()->own_id.str(), "spiffe://cluster.local/ns/default/sa/b");
}

// TLS origination (DestinationRule SIMPLE): a third-party server with its own CA and a DNS name.
class OriginationTest : public TlsTest {
 protected:
  // A server context for `dns` (its certificate issued by `ca`) and the CA file a rule would name.
  crypto::SslCtxPtr server_for(const std::string& dns, const Ca& ca) {
    auto key = ec_key();
    testcerts::CertSpec spec;
    spec.common_name = dns;
    spec.extra_san = "DNS:" + dns;
    spec.ext_key_usage = "serverAuth";
    spec.not_before = now_ - 60;
    spec.not_after = now_ + 3600;
    auto leaf = make_cert(spec, key.get(), ca.cert.get(), ca.key.get());
    crypto::SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    EXPECT_EQ(SSL_CTX_use_certificate(ctx.get(), leaf.get()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx.get(), key.get()), 1);
    return ctx;
  }
  std::string ca_file(const Ca& ca, const std::string& name) {
    std::string path = dir_ + "/" + name + ".pem";
    EXPECT_TRUE(files::write_file_atomic(path, crypto::cert_to_pem(ca.cert.get()), 0644));
    return path;
  }
  // A handshake from an origination client for `sni`; true when the client completed it verified.
  bool originate(SSL_CTX* server, SSL_CTX* client, const std::string& sni) {
    Handshake h{crypto::SslPtr(SSL_new(server)), crypto::SslPtr(SSL_new(client))};
    EXPECT_TRUE(prepare_origination(h.client.get(), sni));
    Handshake done = handshake_with(server, std::move(h));
    if (!done.client_ok) return false;
    EXPECT_EQ(std::string(SSL_get_servername(done.server.get(), TLSEXT_NAMETYPE_host_name)), sni);  // SNI sent
    return static_cast<bool>(check_origination(done.client.get()));
  }
};

TEST_F(OriginationTest, VerifiesTheServerAgainstTheRulesCaAndItsName) {
  Ca external = make_ca("external-root", now_);
  auto server = server_for("api.example.com", external);
  auto client = origination_context(ca_file(external, "external"));
  ASSERT_TRUE(client) << client.error().to_string();
  EXPECT_TRUE(originate(server.get(), client->get(), "api.example.com"));
  // Another name than the certificate's: refused by the hostname check.
  EXPECT_FALSE(originate(server.get(), client->get(), "other.example.com"));
  // Another CA (here the mesh's own root): refused by chain verification.
  auto mesh_only = origination_context(ca_file(ca_, "mesh"));
  ASSERT_TRUE(mesh_only);
  EXPECT_FALSE(originate(server.get(), mesh_only->get(), "api.example.com"));
}

TEST_F(OriginationTest, CaFileMustExistAndHoldACertificate) {
  EXPECT_FALSE(origination_context(dir_ + "/missing.pem"));
  std::string empty = dir_ + "/empty.pem";
  ASSERT_TRUE(files::write_file_atomic(empty, "not a certificate\n", 0644));
  auto r = origination_context(empty);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tls.origination_ca");
  EXPECT_TRUE(origination_context(""));  // the system's roots
  SSL_CTX* plain = SSL_CTX_new(TLS_client_method());
  crypto::SslPtr ssl(SSL_new(plain));
  SSL_CTX_free(plain);
  EXPECT_FALSE(prepare_origination(ssl.get(), ""));
}

}  // namespace
}  // namespace mg::tls
