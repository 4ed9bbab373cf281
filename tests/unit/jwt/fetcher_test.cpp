#include "jwt/jwks_fetcher.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "jwt_test_util.h"

namespace mg::jwt {
namespace {

// A one-thread HTTP server on 127.0.0.1:<ephemeral>; `respond` gets the request head and
// returns the raw bytes to send (or "" to send nothing and hold the connection until stop).
class TinyServer {
 public:
  explicit TinyServer(std::function<std::string(const std::string&)> respond) : respond_(std::move(respond)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path = "/jwks") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int requests() const { return requests_.load(); }

 private:
  void loop() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++requests_;
      std::string out = respond_(req);
      if (out.empty()) {
        while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } else {
        size_t off = 0;
        while (off < out.size()) {
          ssize_t n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
          if (n <= 0) break;
          off += static_cast<size_t>(n);
        }
      }
      ::close(c);
    }
  }
  std::function<std::string(const std::string&)> respond_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string ok_response(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

FetchOptions quick(int timeout_ms = 3000) {
  FetchOptions o;
  o.timeout_ms = timeout_ms;
  return o;
}

TEST(JwtUrl, Parses) {
  auto u = parse_url("https://issuer.example:8443/a/jwks.json?x=1#frag");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->https);
  EXPECT_EQ(u->host, "issuer.example");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path_and_query, "/a/jwks.json?x=1");
  auto v6 = parse_url("http://[::1]/k");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 80);
  EXPECT_EQ(parse_url("http://h")->path_and_query, "/");
  EXPECT_FALSE(parse_url("ftp://h/x"));
  EXPECT_FALSE(parse_url("http://user@h/x"));
  EXPECT_FALSE(parse_url("http://h:99999/"));
  EXPECT_FALSE(parse_url("http://h:0/"));
  EXPECT_FALSE(parse_url("http:///x"));
  EXPECT_FALSE(parse_url("http://h/a b"));
  EXPECT_FALSE(parse_url("http://h/\r\nHost: evil"));
}

TEST(JwtAddresses, LinkLocalAndMetadataRefused) {
  auto v4 = [](const char* s) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, s, &a.sin_addr);
    return is_forbidden_address(reinterpret_cast<sockaddr*>(&a));
  };
  auto v6 = [](const char* s) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    inet_pton(AF_INET6, s, &a.sin6_addr);
    return is_forbidden_address(reinterpret_cast<sockaddr*>(&a));
  };
  EXPECT_TRUE(v4("169.254.169.254"));
  EXPECT_TRUE(v4("169.254.0.1"));
  EXPECT_TRUE(v4("100.100.100.200"));
  EXPECT_FALSE(v4("127.0.0.1"));
  EXPECT_FALSE(v4("10.0.0.1"));
  EXPECT_FALSE(v4("169.255.0.1"));
  EXPECT_TRUE(v6("fe80::1"));
  EXPECT_TRUE(v6("febf::1"));
  EXPECT_TRUE(v6("fd00:ec2::254"));
  EXPECT_TRUE(v6("::ffff:169.254.169.254"));
  EXPECT_FALSE(v6("fec0::1"));
  EXPECT_FALSE(v6("::1"));
  EXPECT_FALSE(v6("2001:db8::1"));
  EXPECT_TRUE(is_forbidden_host_name("metadata.google.internal"));
  EXPECT_TRUE(is_forbidden_host_name("Metadata.Google.Internal."));
  EXPECT_FALSE(is_forbidden_host_name("issuer.example"));
}

TEST(JwtHttpGet, RefusesForbiddenTargetsBeforeConnecting) {
  for (const char* url : {"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[fd00:ec2::254]/",
                          "http://metadata.google.internal/computeMetadata/v1/", "http://[::ffff:169.254.169.254]/"}) {
    auto r = http_get(url, quick());
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, "jwks.forbidden_address") << url;
  }
}

TEST(JwtHttpGet, FetchesContentLengthBody) {
  std::string body = testing::kIstioJwks;
  TinyServer server([&](const std::string& req) {
    EXPECT_NE(req.find("GET /jwks HTTP/1.1\r\n"), std::string::npos);
    EXPECT_NE(req.find("Host: 127.0.0.1:"), std::string::npos);
    return ok_response(body);
  });
  auto r = http_get(server.url(), quick());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, body);
}

TEST(JwtHttpGet, FetchesChunkedAndCloseDelimitedBodies) {
  TinyServer chunked([](const std::string&) {
    return std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3;ext=1\r\n12}\r\n0\r\n\r\n");
  });
  auto r = http_get(chunked.url(), quick());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, "{\"a\":12}");
  TinyServer closed([](const std::string&) { return std::string("HTTP/1.0 200 OK\r\n\r\n{\"keys\":[]}"); });
  auto c = http_get(closed.url(), quick());
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(*c, "{\"keys\":[]}");
}

TEST(JwtHttpGet, NonOkStatusRedirectAndGarbageFail) {
  TinyServer not_found([](const std::string&) { return std::string("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"); });
  EXPECT_EQ(http_get(not_found.url(), quick()).error().code, "jwks.http_status");
  TinyServer redirect([](const std::string&) {
    return std::string("HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n");
  });
  EXPECT_EQ(http_get(redirect.url(), quick()).error().code, "jwks.http_status");
  TinyServer garbage([](const std::string&) { return std::string("SSH-2.0-OpenSSH\r\n\r\n"); });
  EXPECT_EQ(http_get(garbage.url(), quick()).error().code, "jwks.bad_response");
  TinyServer truncated([](const std::string&) { return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"); });
  EXPECT_EQ(http_get(truncated.url(), quick()).error().code, "jwks.bad_response");
}

TEST(JwtHttpGet, ResponseSizeBounded) {
  TinyServer big([](const std::string&) { return ok_response(std::string(5000, 'a')); });
  FetchOptions o = quick();
  o.max_body_bytes = 1000;
  EXPECT_EQ(http_get(big.url(), o).error().code, "jwks.too_large");
  TinyServer big_unframed([](const std::string&) { return "HTTP/1.1 200 OK\r\n\r\n" + std::string(50000, 'a'); });
  EXPECT_EQ(http_get(big_unframed.url(), o).error().code, "jwks.too_large");
}

TEST(JwtHttpGet, TimesOutOnASilentServer) {
  TinyServer silent([](const std::string&) { return std::string(); });
  auto r = http_get(silent.url(), quick(300));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "jwks.timeout");
}

// A self-signed certificate for one IP address, written to a temp file for FetchOptions::ca_file.
struct TestCert {
  crypto::PKeyPtr key;
  crypto::X509Ptr cert;
  std::string pem_path;
};

TestCert make_cert(const char* ip) {
  TestCert c;
  c.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  c.cert.reset(X509_new());
  X509_set_version(c.cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(c.cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.cert.get()), 3600);
  X509_set_pubkey(c.cert.get(), c.key.get());
  X509_NAME* name = X509_get_subject_name(c.cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("jwks-test"), -1, -1, 0);
  X509_set_issuer_name(c.cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, c.cert.get(), c.cert.get(), nullptr, nullptr, 0);
  std::string san = std::string("IP:") + ip;
  crypto::X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str()));
  X509_add_ext(c.cert.get(), ext.get(), -1);
  crypto::X509ExtPtr bc(X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  X509_add_ext(c.cert.get(), bc.get(), -1);
  X509_sign(c.cert.get(), c.key.get(), EVP_sha256());
  char tmpl[] = "/tmp/mg-jwks-ca-XXXXXX";
  int fd = ::mkstemp(tmpl);
  std::string pem = crypto::cert_to_pem(c.cert.get());
  EXPECT_EQ(::write(fd, pem.data(), pem.size()), static_cast<ssize_t>(pem.size()));
  ::close(fd);
  c.pem_path = tmpl;
  return c;
}

// TLS in front of TinyServer's protocol: one handshake per connection, then the canned reply.
class TinyTlsServer {
 public:
  TinyTlsServer(const TestCert& cert, std::string reply) : reply_(std::move(reply)) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx_.get(), cert.cert.get());
    SSL_CTX_use_PrivateKey(ctx_.get(), cert.key.get());
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 8) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        timeval tv{2, 0};
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        crypto::SslPtr ssl(SSL_new(ctx_.get()));
        SSL_set_fd(ssl.get(), c);
        if (SSL_accept(ssl.get()) == 1) {
          char buf[4096];
          std::string req;
          while (req.find("\r\n\r\n") == std::string::npos) {
            int n = SSL_read(ssl.get(), buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, static_cast<size_t>(n));
          }
          SSL_write(ssl.get(), reply_.data(), static_cast<int>(reply_.size()));
          SSL_shutdown(ssl.get());
        }
        ERR_clear_error();
        ::close(c);
      }
    });
  }
  ~TinyTlsServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_) + "/jwks"; }

 private:
  std::string reply_;
  crypto::SslCtxPtr ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(JwtHttpGet, HttpsVerifiesTheServerCertificate) {
  TestCert good = make_cert("127.0.0.1");
  TinyTlsServer server(good, ok_response(testing::kIstioJwks));
  // Trusted anchor and matching IP: fetched.
  FetchOptions trusted = quick();
  trusted.ca_file = good.pem_path;
  auto ok = http_get(server.url(), trusted);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(*ok, testing::kIstioJwks);
  // The system store does not know this self-signed certificate: refused.
  auto untrusted = http_get(server.url(), quick());
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().code, "jwks.tls_verify") << untrusted.error().to_string();
  // Trusted, but issued for another address: refused (name check).
  TestCert other = make_cert("127.0.0.2");
  TinyTlsServer wrong_name(other, ok_response("{}"));
  FetchOptions trust_other = quick();
  trust_other.ca_file = other.pem_path;
  auto mismatch = http_get(wrong_name.url(), trust_other);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, "jwks.tls_verify") << mismatch.error().to_string();
  // A plain-HTTP server behind an https:// URL: the handshake fails, no fallback.
  TinyServer plain([](const std::string&) { return ok_response("{}"); });
  std::string url = plain.url();
  url.replace(0, 4, "https");
  EXPECT_FALSE(http_get(url, quick(500)));
  ::unlink(good.pem_path.c_str());
  ::unlink(other.pem_path.c_str());
}

TEST(JwtRefresher, FeedsProviderRefreshesAndKeepsLastGoodKeys) {
  auto provider = std::make_shared<JwksProvider>();
  int calls = 0;
  bool serve_good = true;
  JwksRefresher refresher(
      provider, {{"https://idp.example/jwks", 1000}},
      [&](const std::string& uri, int) -> Result<std::string> {
        EXPECT_EQ(uri, "https://idp.example/jwks");
        ++calls;
        if (serve_good) return std::string(testing::kIstioJwks);
        return fail("jwks.connect_failed", "down");
      },
      std::chrono::seconds(1200), std::chrono::seconds(30));
  EXPECT_EQ(refresher.refresh_due(1000), 1000 + 1200);
  EXPECT_EQ(calls, 1);
  ASSERT_NE(provider->get("https://idp.example/jwks"), nullptr);
  EXPECT_EQ(refresher.refresh_due(1500), 2200);  // not due yet: no fetch
  EXPECT_EQ(calls, 1);
  serve_good = false;
  EXPECT_EQ(refresher.refresh_due(2200), 2200 + 30);  // failure: retry soon, keep old keys
  EXPECT_EQ(calls, 2);
  EXPECT_NE(provider->get("https://idp.example/jwks"), nullptr);
  EXPECT_NE(refresher.last_errors().at("https://idp.example/jwks"), "");
  serve_good = true;
  EXPECT_EQ(refresher.refresh_due(2230), 2230 + 1200);
  EXPECT_EQ(refresher.last_errors().at("https://idp.example/jwks"), "");
}

TEST(JwtRefresher, EndToEndOverHttpThenAuthenticate) {
  TinyServer server([](const std::string&) { return ok_response(testing::kIstioJwks); });
  JwtRule rule;
  rule.issuer = "testing@secure.istio.io";
  rule.jwks_uri = server.url();
  rule.timeout_ms = 2000;
  auto provider = std::make_shared<JwksProvider>();
  Authenticator auth({rule}, provider);
  HeaderList h = {{"authorization", std::string("Bearer ") + testing::kIstioDemoToken}};
  EXPECT_EQ(auth.authenticate(h, "/", 1700000000).status, 401);  // no keys yet: fail closed
  JwksRefresher refresher(provider, JwksRefresher::sources_for({rule}));
  refresher.refresh_due(1700000000);
  EXPECT_EQ(refresher.last_errors().at(server.url()), "");
  EXPECT_EQ(auth.authenticate(h, "/", 1700000000).outcome, RequestAuth::Outcome::Authenticated);

  // run() on its own thread fetches immediately and stops promptly when asked.
  auto provider2 = std::make_shared<JwksProvider>();
  JwksRefresher background(provider2, JwksRefresher::sources_for({rule}));
  {
    std::jthread t([&](std::stop_token st) { background.run(st); });
    for (int i = 0; i < 500 && !provider2->get(server.url()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(provider2->get(server.url()), nullptr);
}

TEST(JwtDiscovery, UrlAndDocument) {
  EXPECT_EQ(openid_configuration_url("https://idp.example"),
            "https://idp.example/.well-known/openid-configuration");
  EXPECT_EQ(openid_configuration_url("https://idp.example/tenant/"),
            "https://idp.example/tenant/.well-known/openid-configuration");
  auto uri =
      jwks_uri_of_discovery(R"({"issuer": "https://idp.example", "jwks_uri": "https://keys.example/jwks"})");
  ASSERT_TRUE(uri) << uri.error().message;
  EXPECT_EQ(*uri, "https://keys.example/jwks");
  for (const char* bad : {"", "not json", "[]", R"({"issuer": "x"})", R"({"jwks_uri": 7})",
                          R"({"jwks_uri": "file:///etc/passwd"})", R"({"jwks_uri": "http://user@h/k"})"}) {
    auto r = jwks_uri_of_discovery(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "jwks.bad_discovery") << bad;
  }
}

// An issuer-only rule on a 127.0.0.1 server: the discovery document names the key set, and
// the document is read again at each refresh (a moved jwks_uri is followed).
struct DiscoveryServer {
  std::mutex mu;
  std::string jwks_path = "/keys-1";
  std::string jwks_uri_override;                // when set, the document names this instead
  std::string document_override;                // when set, served as the document
  std::map<std::string, std::string> key_sets;  // path -> JWKS
  std::vector<std::string> paths;
  TinyServer server{[this](const std::string& head) { return respond(head); }};

  std::string issuer() const { return server.url(""); }
  std::string respond(const std::string& head) {
    std::lock_guard lock(mu);
    std::string path = head.substr(4, head.find(' ', 4) - 4);
    paths.push_back(path);
    if (path == "/.well-known/openid-configuration") {
      if (!document_override.empty()) return ok_response(document_override);
      std::string uri = jwks_uri_override.empty() ? issuer() + jwks_path : jwks_uri_override;
      return ok_response(nlohmann::json{{"issuer", issuer()}, {"jwks_uri", uri}}.dump());
    }
    if (auto it = key_sets.find(path); it != key_sets.end()) return ok_response(it->second);
    return std::string("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  }
};

JwtRule issuer_only(const std::string& issuer) {
  JwtRule rule;
  rule.issuer = issuer;
  rule.timeout_ms = 2000;
  return rule;
}

TEST(JwtDiscovery, IssuerOnlyRuleGetsKeysAndFollowsAMovedJwksUri) {
  DiscoveryServer idp;
  auto k1 = testing::make_key(Alg::ES256, "k1");
  auto k2 = testing::make_key(Alg::ES256, "k2");
  idp.key_sets["/keys-1"] = testing::jwks_of({&k1});
  idp.key_sets["/keys-2"] = testing::jwks_of({&k2});
  const JwtRule rule = issuer_only(idp.issuer());
  auto provider = std::make_shared<JwksProvider>();
  Authenticator auth({rule}, provider);
  auto token_of = [&](const testing::TestKey& key) {
    return HeaderList{
        {"authorization", "Bearer " + testing::sign_token(key, nlohmann::json::object(),
                                                          {{"iss", idp.issuer()}, {"sub", "bob"}})}};
  };
  EXPECT_EQ(auth.authenticate(token_of(k1), "/", 1700000000).status, 401) << "no keys yet: fail closed";

  JwksRefresher refresher(provider, JwksRefresher::sources_for({rule}), nullptr, std::chrono::seconds(1200));
  refresher.refresh_due(1700000000);
  EXPECT_EQ(refresher.last_errors().at(idp.issuer()), "");
  EXPECT_EQ(auth.authenticate(token_of(k1), "/", 1700000000).outcome, RequestAuth::Outcome::Authenticated);
  {
    std::lock_guard lock(idp.mu);
    EXPECT_EQ(idp.paths, (std::vector<std::string>{"/.well-known/openid-configuration", "/keys-1"}));
    idp.jwks_path = "/keys-2";
  }
  refresher.refresh_due(1700000000 + 1200);
  EXPECT_EQ(auth.authenticate(token_of(k2), "/", 1700000000).outcome, RequestAuth::Outcome::Authenticated);
  EXPECT_EQ(auth.authenticate(token_of(k1), "/", 1700000000).status, 401) << "the old key set is replaced";
}

TEST(JwtDiscovery, ForbiddenJwksUriInTheDocumentIsRefused) {
  DiscoveryServer idp;
  idp.jwks_uri_override = "http://169.254.169.254/latest/meta-data/";
  const JwtRule rule = issuer_only(idp.issuer());
  auto provider = std::make_shared<JwksProvider>();
  JwksRefresher refresher(provider, JwksRefresher::sources_for({rule}));
  refresher.refresh_due(1700000000);
  EXPECT_NE(refresher.last_errors().at(idp.issuer()).find("jwks.forbidden_address"), std::string::npos)
      << refresher.last_errors().at(idp.issuer());
  EXPECT_EQ(provider->get(idp.issuer()), nullptr);
}

TEST(JwtDiscovery, BrokenDocumentFailsClosed) {
  auto key = testing::make_key(Alg::ES256, "k1");
  for (const char* document :
       {"<html>oops</html>", R"({"issuer": "x"})", R"({"jwks_uri": "ftp://127.0.0.1/keys"})"}) {
    SCOPED_TRACE(document);
    DiscoveryServer idp;
    idp.document_override = document;
    idp.key_sets["/keys-1"] = testing::jwks_of({&key});
    const JwtRule rule = issuer_only(idp.issuer());
    auto provider = std::make_shared<JwksProvider>();
    Authenticator auth({rule}, provider);
    JwksRefresher refresher(provider, JwksRefresher::sources_for({rule}));
    refresher.refresh_due(1700000000);
    EXPECT_NE(refresher.last_errors().at(idp.issuer()), "");
    EXPECT_EQ(provider->get(idp.issuer()), nullptr);
    HeaderList h{{"authorization", "Bearer " + testing::sign_token(key, nlohmann::json::object(),
                                                                   {{"iss", idp.issuer()}, {"sub", "bob"}})}};
    EXPECT_EQ(auth.authenticate(h, "/", 1700000000).status, 401);
  }
  // No discovery server at all.
  auto provider = std::make_shared<JwksProvider>();
  JwksRefresher refresher(provider, JwksRefresher::sources_for({issuer_only("http://127.0.0.1:9")}));
  refresher.refresh_due(1700000000);
  EXPECT_NE(refresher.last_errors().at("http://127.0.0.1:9"), "");
  EXPECT_EQ(provider->get("http://127.0.0.1:9"), nullptr);
}

}  // namespace
}  // namespace mg::jwt
