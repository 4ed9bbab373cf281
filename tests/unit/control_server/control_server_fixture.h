// tests/unit/control_server/control_server_fixture.h — what the control plane's API security
// cases share (one file of cases per service: certificate_service_test, admin_service_test,
// watch_service_test, distributor_test, registry_test, own_identity_test): a real ControlPlane on
// 127.0.0.1:0 (temp data dir, SQLite store, built-in CA) and real gRPC stubs over mTLS, with
// identities issued from the data dir's CA. Every stream and RPC carries a deadline, and every
// wait for asynchronous state is bounded in count; nothing asserts on time.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "api/grpc_tls.h"
#include "ca/authority.h"
#include "common/files.h"
#include "control/server.h"
#include "control/token.h"
#include "crypto/openssl.h"
#include "identity/svid.h"
#include "jwt/base64url.h"
#include "jwt_test_util.h"
#include "meshguard/v1/meshguard.grpc.pb.h"

namespace mg::control::server_test {

namespace pb = ::meshguard::v1;
using namespace std::chrono_literals;

constexpr auto kRpcDeadline = 20s;

inline void set_deadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
}

inline std::string make_temp_dir() {
  std::string t = (std::filesystem::temp_directory_path() / "mg-control-server-XXXXXX").string();
  if (!::mkdtemp(t.data())) return "";
  return t;
}

inline std::string der_of(X509_REQ* req) {
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req, &der);
  if (len <= 0) return "";
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

// A fresh P-256 key and its CSR (DER), optionally asking for `uri_san`.
struct KeyAndCsr {
  crypto::PKeyPtr key;
  std::string der;
};
inline KeyAndCsr new_csr(std::string_view uri_san = {}) {
  KeyAndCsr out;
  out.key = std::move(*crypto::generate_key(crypto::KeyType::EcP256));
  out.der = der_of(crypto::make_csr(out.key.get(), uri_san)->get());
  return out;
}

// The SPIFFE ID in the leaf of a PEM chain, and whether the leaf carries `key`'s public key.
struct Leaf {
  std::string id;
  bool has_key = false;
};
inline Leaf leaf_of(const std::string& chain_pem, EVP_PKEY* key) {
  Leaf out;
  auto chain = crypto::parse_cert_chain_pem(chain_pem);
  if (!chain || chain->empty()) return out;
  auto id = identity::spiffe_id_of(chain->front().get());
  if (id) out.id = id->str();
  out.has_key = key && EVP_PKEY_eq(X509_get0_pubkey(chain->front().get()), key) == 1;
  return out;
}

// One GET over plain TCP to the metrics endpoint (bounded by a poll timeout per read).
inline std::string http_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (int i = 0; i < 1000; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}

// Sum of meshguard_csr_total series with result="signed": certificates the control plane issued.
inline long signed_count(const std::string& metrics) {
  long total = 0;
  size_t pos = 0;
  while ((pos = metrics.find("\nmeshguard_csr_total{", pos)) != std::string::npos) {
    size_t eol = metrics.find('\n', pos + 1);
    std::string line = metrics.substr(pos + 1, eol - pos - 1);
    if (line.find("result=\"signed\"") != std::string::npos)
      total += std::stol(line.substr(line.rfind(' ') + 1));
    pos = eol;
  }
  return total;
}

inline std::string policy(const std::string& name, const std::string& ns, const std::string& app = "") {
  std::string y = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
                  "\n  namespace: " + ns + "\nspec:\n";
  if (!app.empty()) y += "  selector:\n    matchLabels: {app: " + app + "}\n";
  return y + "  rules:\n  - {}\n";
}

inline std::string workload(const std::string& name, const std::string& ns, const std::string& sa,
                     const std::string& app) {
  return "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  serviceAccount: " + sa + "\n  labels: {app: " + app + "}\n";
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A proxy's config stream, driven synchronously: every Read is bounded by the context deadline.
struct WatchClient {
  std::unique_ptr<pb::ConfigService::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::ConfigSnapshot>> stream;
  bool finished = false;

  explicit WatchClient(const std::shared_ptr<grpc::Channel>& channel)
      : stub(pb::ConfigService::NewStub(channel)) {
    set_deadline(ctx);
    stream = stub->Watch(&ctx);
  }
  ~WatchClient() {
    if (!finished) {
      ctx.TryCancel();
      stream->Finish();
    }
  }
  bool hello(const std::string& name, const std::map<std::string, std::string>& labels = {},
             const std::string& address = "", std::vector<std::pair<uint32_t, uint32_t>> inbound = {}) {
    pb::WatchRequest req;
    req.mutable_hello()->set_workload(name);
    req.mutable_hello()->set_address(address);
    for (const auto& [port, app_port] : inbound) {
      auto* p = req.mutable_hello()->add_inbound_ports();
      p->set_port(port);
      p->set_app_port(app_port);
      p->set_protocol("http");
    }
    for (const auto& [k, v] : labels) (*req.mutable_hello()->mutable_labels())[k] = v;
    req.mutable_hello()->set_cert_state("Available");
    return stream->Write(req);
  }
  bool ack(const std::string& version, bool accepted = true, const std::string& error = "") {
    pb::WatchRequest req;
    req.mutable_ack()->set_version(version);
    req.mutable_ack()->set_accepted(accepted);
    req.mutable_ack()->set_error(error);
    return stream->Write(req);
  }
  std::optional<pb::ConfigSnapshot> next() {
    pb::ConfigSnapshot s;
    if (!stream->Read(&s)) return std::nullopt;
    return s;
  }
  // The first snapshot computed at `revision` or later, ACKing every one before it. A proxy that
  // says Hello right after an apply may first get the model from before it (the model is rebuilt
  // after the push debounce), then the newer one.
  std::optional<pb::ConfigSnapshot> at_least(int64_t revision) {
    for (int i = 0; i < 10; ++i) {
      auto s = next();
      if (!s || s->revision() >= revision) return s;
      if (!ack(s->version())) return std::nullopt;
    }
    return std::nullopt;
  }
  grpc::Status finish() {
    stream->WritesDone();
    pb::ConfigSnapshot drain;
    for (int i = 0; i < 100 && stream->Read(&drain); ++i) {
    }
    finished = true;
    return stream->Finish();
  }
};

class ControlServer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    ASSERT_FALSE(dir_.empty());
    ServerOptions o;
    o.data_dir = dir_ + "/data";
    o.listen = "127.0.0.1:0";
    o.metrics_listen = "127.0.0.1:0";
    o.push_debounce = 10ms;
    auto cp = ControlPlane::open(o);
    ASSERT_TRUE(cp) << cp.error().to_string();
    cp_ = std::move(*cp);
    auto st = cp_->start();
    ASSERT_TRUE(st) << st.error().to_string();
    auto ca = ca::Authority::load_dir(o.data_dir + "/ca", std::time(nullptr));
    ASSERT_TRUE(ca) << ca.error().to_string();
    ca_ = std::make_unique<ca::Authority>(std::move(*ca));
    bundle_ = ca_->bundle().to_pem();
    auto admin = api::load_svid_dir(o.data_dir + "/admin");
    ASSERT_TRUE(admin) << admin.error().to_string();
    admin_ = std::move(*admin);
    auto key_pem = files::read_file(o.data_dir + "/token-key.pem");
    ASSERT_TRUE(key_pem);
    auto key = crypto::parse_private_key_pem(*key_pem);
    ASSERT_TRUE(key);
    token_key_ = std::move(*key);
  }

  void TearDown() override {
    if (cp_) cp_->shutdown();
    cp_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::shared_ptr<grpc::Channel> channel(const std::optional<api::SvidFiles>& own) {
    return api::make_channel(cp_->address(), bundle_, own);
  }

  // A workload SVID issued directly by `authority` (default: this control plane's CA).
  static api::SvidFiles issue_with(const ca::Authority& authority, const std::string& ns,
                                   const std::string& sa) {
    auto key = crypto::generate_key(crypto::KeyType::EcP256);
    auto csr = crypto::make_csr(key->get());
    auto id = identity::SpiffeId::istio(authority.trust_domain(), ns, sa);
    auto issued = authority.sign_csr(csr->get(), *id, std::chrono::hours(1), std::time(nullptr));
    EXPECT_TRUE(issued) << issued.error().to_string();
    return {crypto::private_key_to_pem(key->get()), issued ? issued->chain_pem : "",
            authority.bundle().to_pem()};
  }
  api::SvidFiles issue(const std::string& ns, const std::string& sa) { return issue_with(*ca_, ns, sa); }

  std::string issuer() const { return api::control_plane_id(cp_->trust_domain()).str(); }

  std::string mint(const std::string& ns, const std::string& sa, int64_t issued_at, int64_t expires_at,
                   EVP_PKEY* key = nullptr) {
    BootstrapClaims c;
    c.ns = ns;
    c.service_account = sa;
    c.issued_at = issued_at;
    c.expires_at = expires_at;
    auto t = mint_bootstrap_token(key ? key : token_key_.get(), issuer(), c);
    EXPECT_TRUE(t) << t.error().to_string();
    return t ? *t : "";
  }

  struct SignOutcome {
    grpc::Status status;
    pb::SignResponse response;
  };
  SignOutcome sign(const std::optional<api::SvidFiles>& own, const std::string& csr_der,
                   const std::optional<std::string>& authorization) {
    auto stub = pb::CertificateService::NewStub(channel(own));
    grpc::ClientContext ctx;
    set_deadline(ctx);
    if (authorization) ctx.AddMetadata("authorization", *authorization);
    pb::SignRequest req;
    req.set_csr_der(csr_der);
    SignOutcome out;
    out.status = stub->Sign(&ctx, req, &out.response);
    return out;
  }

  std::unique_ptr<pb::AdminService::Stub> admin_stub(const std::optional<api::SvidFiles>& own) {
    return pb::AdminService::NewStub(channel(own));
  }

  grpc::Status apply(const std::string& yaml, pb::ApplyResponse* resp = nullptr,
                     const std::optional<api::SvidFiles>& own = std::nullopt) {
    auto stub = admin_stub(own ? *own : admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ApplyRequest req;
    auto* f = req.add_files();
    f->set_yaml(yaml);
    f->set_source("test.yaml");
    pb::ApplyResponse local;
    return stub->Apply(&ctx, req, resp ? resp : &local);
  }

  pb::GetResponse get_all() {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::GetResponse resp;
    auto st = stub->Get(&ctx, pb::GetRequest(), &resp);
    EXPECT_TRUE(st.ok()) << api::describe(st);
    return resp;
  }

  pb::ListWorkloadsResponse list_workloads() {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ListWorkloadsResponse resp;
    auto st = stub->ListWorkloads(&ctx, pb::ListWorkloadsRequest(), &resp);
    EXPECT_TRUE(st.ok()) << api::describe(st);
    return resp;
  }

  std::string create_token(const std::string& ns, const std::string& sa) {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::CreateTokenRequest req;
    req.set_namespace_(ns);
    req.set_service_account(sa);
    req.set_ttl_seconds(600);
    pb::CreateTokenResponse resp;
    auto st = stub->CreateToken(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << api::describe(st);
    return resp.token();
  }

  // Waits (bounded) until the model the control plane resolves workloads from includes the
  // registered Workload ns/name: ListWorkloads lists registered workloads from that model.
  bool wait_registered(const std::string& ns, const std::string& name) {
    for (int i = 0; i < 500; ++i) {
      const auto list = list_workloads();
      for (const auto& w : list.workloads())
        if (w.namespace_() == ns && w.name() == name && w.registered()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  long signed_so_far() { return signed_count(http_get(cp_->metrics_address(), "/metrics")); }

  std::string dir_;
  std::unique_ptr<ControlPlane> cp_;
  std::unique_ptr<ca::Authority> ca_;
  std::string bundle_;
  api::SvidFiles admin_;
  crypto::PKeyPtr token_key_;
};

}  // namespace mg::control::server_test
