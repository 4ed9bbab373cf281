// TLS origination on the proxy's upstream side (issue 20): which DestinationRule decides a host,
// a caCertificates file that does not load failing the publish with file:line, and
// UpstreamPool::connect_origin against a real TLS server on 127.0.0.1 with its own CA — verified,
// refused for another name, refused under another CA.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../identity/test_certs.h"
#include "common/files.h"
#include "policy/parse.h"
#include "proxy/credentials.h"
#include "proxy/destination_rules.h"
#include "proxy/report.h"
#include "proxy/upstream_pool.h"

namespace mg::proxy {
namespace {

namespace fs = std::filesystem;

policy::ResourceSet rules(const std::string& yaml) {
  auto set = policy::parse_resources(yaml, "dr.yaml");
  EXPECT_TRUE(set) << set.error().message;
  return set ? std::move(*set) : policy::ResourceSet{};
}

std::string rule(const std::string& name, const std::string& ns, const std::string& host, const std::string& tls) {
  return "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: " + name +
         ", namespace: " + ns + "}\nspec: {host: \"" + host + "\", trafficPolicy: {tls: " + tls + "}}\n";
}

TEST(DestinationRules, TheDecidingRuleForAHost) {
  auto set = rules(rule("other", "team-b", "api.example.com", "{mode: DISABLE}") +
                   rule("root", "istio-system", "api.example.com", "{mode: ISTIO_MUTUAL}") +
                   rule("mine", "shop", "api.example.com", "{mode: SIMPLE, sni: edge.example.com}") +
                   rule("wild", "shop", "*.example.com", "{mode: SIMPLE}"));
  auto built = DestinationRules::build(set, "shop", "istio-system");
  ASSERT_TRUE(built) << built.error().message;
  const DestinationRules& r = **built;
  EXPECT_EQ(r.size(), 4u);
  ASSERT_NE(r.find("API.example.com:443"), nullptr);
  EXPECT_EQ(r.find("API.example.com:443")->meta.full_name(), "shop/mine");  // own namespace first
  auto exact = r.origination("api.example.com");
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->rule, "shop/mine");
  EXPECT_EQ(exact->server_name, "edge.example.com");  // the rule's sni
  auto wild = r.origination("www.example.com:8443");
  ASSERT_TRUE(wild);
  EXPECT_EQ(wild->rule, "shop/wild");
  EXPECT_EQ(wild->server_name, "www.example.com");  // no sni: the host
  EXPECT_EQ(r.find("example.org"), nullptr);
  EXPECT_FALSE(r.origination("example.org"));

  auto elsewhere = DestinationRules::build(set, "web", "istio-system");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ((*elsewhere)->find("api.example.com")->meta.full_name(), "istio-system/root");  // then the root
  EXPECT_FALSE((*elsewhere)->origination("api.example.com"));                                // ISTIO_MUTUAL
}

TEST(DestinationRules, ACaFileThatDoesNotLoadFailsThePublishWithFileAndLine) {
  auto set = rules(rule("a", "shop", "api.example.com", "{mode: SIMPLE}") +
                   rule("b", "shop", "b.example.com", "{mode: SIMPLE, caCertificates: /nonexistent/ca.pem}"));
  auto built = DestinationRules::build(set, "shop", "istio-system");
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().message.find("dr.yaml:7: DestinationRule shop/b: caCertificates /nonexistent/ca.pem"), std::string::npos)
      << built.error().message;
}

// A TLS server on 127.0.0.1 (one thread, blocking OpenSSL) presenting a certificate for `dns`
// issued by its own CA; it answers one connection at a time, writing "hello" after a handshake.
class ExternalServer {
 public:
  ExternalServer(const std::string& dns, std::time_t now) {
    ca_key_ = testcerts::ec_key();
    ca_ = testcerts::make_cert(testcerts::ca_spec("external-root", now), ca_key_.get(), nullptr, nullptr);
    auto key = testcerts::ec_key();
    testcerts::CertSpec spec;
    spec.common_name = dns;
    spec.extra_san = "DNS:" + dns;
    spec.ext_key_usage = "serverAuth";
    spec.not_before = now - 60;
    spec.not_after = now + 3600;
    auto leaf = testcerts::make_cert(spec, key.get(), ca_.get(), ca_key_.get());
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx_.get(), leaf.get());
    SSL_CTX_use_PrivateKey(ctx_.get(), key.get());
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 8);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        timeval tv{10, 0};
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        crypto::SslPtr ssl(SSL_new(ctx_.get()));
        SSL_set_fd(ssl.get(), c);
        if (SSL_accept(ssl.get()) == 1) {
          const char* sni = SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name);
          last_sni_ = sni ? sni : "";
          SSL_write(ssl.get(), "hello", 5);
          SSL_shutdown(ssl.get());
        }
        ERR_clear_error();
        ::close(c);
      }
    });
  }
  ~ExternalServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  X509* ca() const { return ca_.get(); }
  std::string last_sni() const { return last_sni_; }

 private:
  crypto::PKeyPtr ca_key_;
  crypto::X509Ptr ca_;
  crypto::SslCtxPtr ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::string last_sni_;  // read after the connection completed (the client waited for "hello")
};

class ConnectOrigin : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mg-origin-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.limits.header_timeout_ms = 5000;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_ca(X509* ca, const std::string& name) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(files::write_file_atomic(path, crypto::cert_to_pem(ca), 0644));
    return path;
  }

  // connect_origin to the server under `rule_yaml`'s decision for `host`; the bytes read after the
  // handshake ("hello"), or "refused: <reason>: <detail>".
  std::string originate(uint16_t port, const std::string& rule_yaml, const std::string& host) {
    auto built = DestinationRules::build(rules(rule_yaml), "shop", "istio-system");
    EXPECT_TRUE(built) << (built ? "" : built.error().message);
    if (!built) return "no rules";
    auto origin = (*built)->origination(host);
    EXPECT_TRUE(origin);
    if (!origin) return "no origination";
    asio::io_context io;
    Report report(config_);
    std::atomic<uint64_t> version{0};
    Credentials credentials(std::nullopt, report.registry(), version);
    std::atomic<bool> draining{false};
    UpstreamPool pool(io, config_, credentials, report, draining);
    std::string out;
    asio::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          std::string reason, detail;
          auto conn = co_await pool.connect_origin("127.0.0.1", port, *origin, reason, detail);
          if (!conn) {
            out = "refused: " + reason + ": " + detail;
            co_return;
          }
          char buf[16];
          std::error_code ec;
          size_t n = co_await conn->stream->read_some(asio::buffer(buf), ec);
          out.assign(buf, n);
          conn->stream->close();
        },
        asio::detached);
    io.run_for(std::chrono::seconds(20));
    return out;
  }

  std::string dir_;
  ProxyConfig config_;
};

TEST_F(ConnectOrigin, VerifiedAgainstTheRulesCaWithTheSniChecked) {
  ExternalServer server("api.example.com", std::time(nullptr));
  const std::string ca = write_ca(server.ca(), "external-ca.pem");
  EXPECT_EQ(originate(server.port(), rule("r", "shop", "api.example.com", "{mode: SIMPLE, caCertificates: " + ca + "}"),
                      "api.example.com:443"),
            "hello");
  EXPECT_EQ(server.last_sni(), "api.example.com");
  // The rule's sni names another server than the certificate's: the hostname check refuses it.
  std::string other = originate(
      server.port(),
      rule("r", "shop", "api.example.com", "{mode: SIMPLE, sni: other.example.com, caCertificates: " + ca + "}"),
      "api.example.com");
  EXPECT_EQ(other.rfind("refused: tls_handshake_failed: ", 0), 0u) << other;
  EXPECT_NE(other.find("hostname mismatch"), std::string::npos) << other;
}

TEST_F(ConnectOrigin, AServerUnderAnotherCaIsRefused) {
  ExternalServer server("api.example.com", std::time(nullptr));
  ExternalServer impostor_ca_source("api.example.com", std::time(nullptr));  // same name, other CA
  const std::string wrong = write_ca(impostor_ca_source.ca(), "other-ca.pem");
  std::string got = originate(
      server.port(), rule("r", "shop", "api.example.com", "{mode: SIMPLE, caCertificates: " + wrong + "}"),
      "api.example.com");
  EXPECT_EQ(got.rfind("refused: tls_handshake_failed: ", 0), 0u) << got;
  EXPECT_NE(got.find("certificate"), std::string::npos) << got;
}

// The egress audit line (issue 20): one JSON line per call with every field the audit needs.
TEST(EgressAudit, OneLineWithWhoWhereWhatHowMuchAndTheDecision) {
  char tmpl[] = "/tmp/mg-audit-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  ProxyConfig config;
  Report report(config);
  ASSERT_TRUE(report.open_access_log(dir + "/access.log"));
  Report::EgressAudit allowed;
  allowed.source_principal = "spiffe://cluster.local/ns/shop/sa/checkout";
  allowed.source_address = "127.0.0.1:40000";
  allowed.host = "api.example.com";
  allowed.port = 443;
  allowed.sni = "api.example.com";
  allowed.method = "GET";
  allowed.path = "/v1/rates";
  allowed.status = 200;
  allowed.bytes_received = 12;
  allowed.bytes_sent = 345;
  allowed.allowed = true;
  allowed.policy = "istio-system/egress-allow";
  allowed.reason = "allowed by ALLOW policy istio-system/egress-allow rule 0";
  report.egress_audit(allowed);
  Report::EgressAudit denied;
  denied.host = "api.example.com";
  denied.status = 403;
  denied.reason = "denied: ALLOW policies apply to the workload but none matched";
  report.egress_audit(denied);

  std::ifstream in(dir + "/access.log");
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  fs::remove_all(dir);
  ASSERT_EQ(lines.size(), 2u);
  const auto& a = lines[0];
  EXPECT_EQ(a["event"], "egress_audit");
  EXPECT_EQ(a["source"]["principal"], "spiffe://cluster.local/ns/shop/sa/checkout");
  EXPECT_EQ(a["destination"]["host"], "api.example.com");
  EXPECT_EQ(a["destination"]["port"], 443);
  EXPECT_EQ(a["destination"]["sni"], "api.example.com");
  EXPECT_EQ(a["method"], "GET");
  EXPECT_EQ(a["path"], "/v1/rates");
  EXPECT_EQ(a["bytes_received"], 12);
  EXPECT_EQ(a["bytes_sent"], 345);
  EXPECT_EQ(a["decision"], "allow");
  EXPECT_EQ(a["policy"], "istio-system/egress-allow");
  const auto& d = lines[1];
  EXPECT_EQ(d["decision"], "deny");
  EXPECT_EQ(d["source"]["principal"], "unknown");
  EXPECT_TRUE(d["method"].is_null());  // not visible
  EXPECT_TRUE(d["policy"].is_null());
  EXPECT_EQ(d["status"], 403);
}

}  // namespace
}  // namespace mg::proxy
