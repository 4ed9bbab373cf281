// tests/unit/control_server — the control plane's API security cases, end to end in one process:
// a real ControlPlane on 127.0.0.1:0 (temp data dir, SQLite store, built-in CA) and real gRPC
// stubs over mTLS, with identities issued from the data dir's CA. Every stream and RPC carries a
// deadline, and every wait for asynchronous state is bounded in count; nothing asserts on time.
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

namespace mg::control {
namespace {

namespace pb = ::meshguard::v1;
using namespace std::chrono_literals;

constexpr auto kRpcDeadline = 20s;

void set_deadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
}

std::string make_temp_dir() {
  std::string t = (std::filesystem::temp_directory_path() / "mg-control-server-XXXXXX").string();
  if (!::mkdtemp(t.data())) return "";
  return t;
}

std::string der_of(X509_REQ* req) {
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
KeyAndCsr new_csr(std::string_view uri_san = {}) {
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
Leaf leaf_of(const std::string& chain_pem, EVP_PKEY* key) {
  Leaf out;
  auto chain = crypto::parse_cert_chain_pem(chain_pem);
  if (!chain || chain->empty()) return out;
  auto id = identity::spiffe_id_of(chain->front().get());
  if (id) out.id = id->str();
  out.has_key = key && EVP_PKEY_eq(X509_get0_pubkey(chain->front().get()), key) == 1;
  return out;
}

// One GET over plain TCP to the metrics endpoint (bounded by a poll timeout per read).
std::string http_get(const std::string& address, const std::string& path) {
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
long signed_count(const std::string& metrics) {
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

std::string policy(const std::string& name, const std::string& ns, const std::string& app = "") {
  std::string y = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
                  "\n  namespace: " + ns + "\nspec:\n";
  if (!app.empty()) y += "  selector:\n    matchLabels: {app: " + app + "}\n";
  return y + "  rules:\n  - {}\n";
}

std::string workload(const std::string& name, const std::string& ns, const std::string& sa,
                     const std::string& app) {
  return "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  serviceAccount: " + sa + "\n  labels: {app: " + app + "}\n";
}

bool contains(const std::string& haystack, const std::string& needle) {
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

// ------------------------------------------------------------------------------ Sign: bootstrap

TEST_F(ControlServer, SignWithoutTokenOrCertificateIsUnauthenticated) {
  auto csr = new_csr();
  auto r = sign(std::nullopt, csr.der, std::nullopt);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << api::describe(r.status);
  EXPECT_TRUE(r.response.cert_chain_pem().empty());
  // Not "Bearer <token>": same answer.
  r = sign(std::nullopt, csr.der, "Basic dXNlcjpwYXNz");
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << api::describe(r.status);
  EXPECT_EQ(signed_so_far(), 0);
}

TEST_F(ControlServer, BadTokensAreUnauthenticated) {
  const auto now = static_cast<int64_t>(std::time(nullptr));
  const std::string good = create_token("shop", "cart");
  ASSERT_FALSE(good.empty());

  // Tampered: the subject rewritten to another namespace, header and signature kept.
  std::string tampered;
  {
    auto dot1 = good.find('.');
    auto dot2 = good.find('.', dot1 + 1);
    auto payload = jwt::base64url_decode(std::string_view(good).substr(dot1 + 1, dot2 - dot1 - 1));
    ASSERT_TRUE(payload);
    auto at = payload->find("ns/shop/sa/cart");
    ASSERT_NE(at, std::string::npos);
    payload->replace(at, 15, "ns/bank/sa/cart");
    tampered = good.substr(0, dot1 + 1) + jwt::base64url_encode(*payload) + good.substr(dot2);
  }
  std::string bad_signature = good;
  bad_signature[bad_signature.size() - 5] = bad_signature[bad_signature.size() - 5] == 'A' ? 'B' : 'A';

  auto other_key = crypto::generate_key(crypto::KeyType::EcP256);
  ASSERT_TRUE(other_key);
  const std::map<std::string, std::string> cases = {
      {"garbage", "not-a-token"},
      {"empty", ""},
      {"three garbage segments", "a.b.c"},
      {"expired", mint("shop", "cart", now - 7200, now - 3600)},
      {"not yet valid", mint("shop", "cart", now + 3600, now + 7200)},
      {"other key", mint("shop", "cart", now, now + 600, other_key->get())},
      {"tampered payload", tampered},
      {"tampered signature", bad_signature},
  };
  const long before = signed_so_far();
  for (const auto& [what, token] : cases) {
    auto csr = new_csr();
    auto r = sign(std::nullopt, csr.der, "Bearer " + token);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << what << ": " << api::describe(r.status);
    EXPECT_TRUE(r.response.cert_chain_pem().empty()) << what;
  }
  EXPECT_EQ(signed_so_far(), before);

  // The untampered token works: the refusals above were about the tokens.
  auto csr = new_csr();
  auto ok = sign(std::nullopt, csr.der, "Bearer " + good);
  ASSERT_TRUE(ok.status.ok()) << api::describe(ok.status);
  EXPECT_EQ(ok.response.spiffe_id(), "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST_F(ControlServer, TokenDecidesTheIdentityWhateverTheCsrAsksFor) {
  const std::string token = create_token("shop", "cart");
  auto csr = new_csr("spiffe://cluster.local/ns/bank/sa/vault");
  auto r = sign(std::nullopt, csr.der, "Bearer " + token);
  ASSERT_TRUE(r.status.ok()) << api::describe(r.status);
  EXPECT_EQ(r.response.spiffe_id(), "spiffe://cluster.local/ns/shop/sa/cart");
  auto leaf = leaf_of(r.response.cert_chain_pem(), csr.key.get());
  EXPECT_EQ(leaf.id, "spiffe://cluster.local/ns/shop/sa/cart");
  EXPECT_TRUE(leaf.has_key);  // the CSR contributes its public key, and only that
  EXPECT_EQ(r.response.trust_bundle_pem(), bundle_);
  // The leaf verifies as an SVID under the CA's bundle.
  auto chain = crypto::parse_cert_chain_pem(r.response.cert_chain_pem());
  ASSERT_TRUE(chain);
  auto verified = identity::verify_svid(*chain, ca_->bundle(), std::time(nullptr));
  ASSERT_TRUE(verified);
  EXPECT_EQ(verified->str(), "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST_F(ControlServer, MalformedCsrsAreInvalidArgumentAndNothingIsSigned) {
  const std::string token = create_token("shop", "cart");
  auto random = crypto::random_bytes(300);
  ASSERT_TRUE(random);
  const std::string random_der(random->begin(), random->end());
  auto good = new_csr();
  const std::string truncated = good.der.substr(0, good.der.size() / 2);

  crypto::PKeyPtr rsa1024(EVP_RSA_gen(1024));
  ASSERT_TRUE(rsa1024);
  const std::string weak = der_of(crypto::make_csr(rsa1024.get())->get());

  // A valid CSR whose signed part is altered afterwards: its signature no longer verifies.
  auto to_tamper = new_csr("spiffe://cluster.local/ns/shop/sa/cart");
  std::string bad_sig = to_tamper.der;
  auto at = bad_sig.find("ns/shop");
  ASSERT_NE(at, std::string::npos);
  bad_sig[at + 3] = 'X';
  {
    const auto* p = reinterpret_cast<const unsigned char*>(bad_sig.data());
    crypto::X509ReqPtr still_parses(d2i_X509_REQ(nullptr, &p, static_cast<long>(bad_sig.size())));
    ASSERT_TRUE(still_parses);  // well-formed DER: only the signature check can refuse it
  }
  std::string trailing = good.der + std::string("\0\0", 2);

  const std::map<std::string, std::string> cases = {
      {"empty", ""},
      {"random bytes", random_der},
      {"truncated DER", truncated},
      {"trailing bytes", trailing},
      {"RSA-1024 key", weak},
      {"bad signature", bad_sig},
      {"too large", std::string(20 * 1024, '\x30')},
  };
  const long before = signed_so_far();
  for (const auto& [what, der] : cases) {
    auto r = sign(std::nullopt, der, "Bearer " + token);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << api::describe(r.status);
    EXPECT_TRUE(r.response.cert_chain_pem().empty()) << what;
  }
  EXPECT_EQ(signed_so_far(), before);
}

TEST_F(ControlServer, TokenForTheSystemNamespaceIsRefused) {
  const auto now = static_cast<int64_t>(std::time(nullptr));
  // Minted with the control plane's own key: the admin API would never mint it.
  for (const char* sa : {"meshguard-admin", "meshguard-control", "anything"}) {
    auto csr = new_csr();
    auto r = sign(std::nullopt, csr.der, "Bearer " + mint("meshguard-system", sa, now, now + 600));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << sa << ": " << api::describe(r.status);
    EXPECT_TRUE(r.response.cert_chain_pem().empty());
  }
  EXPECT_EQ(signed_so_far(), 0);
}

// ------------------------------------------------------------------------------ Sign: renewal

TEST_F(ControlServer, RenewalWithAWorkloadSvidKeepsItsIdentity) {
  // Bootstrap, then renew with the certificate just obtained (a new key, and a CSR asking for
  // another identity that must be ignored).
  auto first = new_csr();
  auto boot = sign(std::nullopt, first.der, "Bearer " + create_token("shop", "cart"));
  ASSERT_TRUE(boot.status.ok()) << api::describe(boot.status);
  api::SvidFiles own{crypto::private_key_to_pem(first.key.get()), boot.response.cert_chain_pem(), bundle_};

  auto second = new_csr("spiffe://cluster.local/ns/bank/sa/vault");
  auto renewed = sign(own, second.der, std::nullopt);
  ASSERT_TRUE(renewed.status.ok()) << api::describe(renewed.status);
  EXPECT_EQ(renewed.response.spiffe_id(), "spiffe://cluster.local/ns/shop/sa/cart");
  auto leaf = leaf_of(renewed.response.cert_chain_pem(), second.key.get());
  EXPECT_EQ(leaf.id, "spiffe://cluster.local/ns/shop/sa/cart");
  EXPECT_TRUE(leaf.has_key);

  // A valid certificate wins over a token for another identity sent alongside it.
  auto third = new_csr();
  auto both = sign(own, third.der, "Bearer " + create_token("bank", "vault"));
  ASSERT_TRUE(both.status.ok()) << api::describe(both.status);
  EXPECT_EQ(both.response.spiffe_id(), "spiffe://cluster.local/ns/shop/sa/cart");
}

TEST_F(ControlServer, ExpiredSvidCannotRenew) {
  // Issued by this CA, expired an hour ago.
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  ASSERT_TRUE(key);
  auto id = identity::SpiffeId::istio("cluster.local", "shop", "cart");
  const auto now = std::time(nullptr);
  auto issued =
      ca_->sign_csr(crypto::make_csr(key->get())->get(), *id, std::chrono::hours(1), now - 2 * 3600);
  ASSERT_TRUE(issued) << issued.error().to_string();
  api::SvidFiles expired{crypto::private_key_to_pem(key->get()), issued->chain_pem, bundle_};
  auto csr = new_csr();
  auto r = sign(expired, csr.der, std::nullopt);
  EXPECT_TRUE(r.status.error_code() == grpc::StatusCode::UNAVAILABLE ||
              r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED)
      << api::describe(r.status);
  EXPECT_TRUE(r.response.cert_chain_pem().empty());
  EXPECT_EQ(signed_so_far(), 0);
}

// The bootstrap path refuses the reserved namespace, and so does renewal: a copy of the admin SVID
// (30 days) cannot be extended through CertificateService.Sign without access to the data dir.
TEST_F(ControlServer, SystemIdentitiesCannotRenewThroughTheWorkloadApi) {
  auto csr = new_csr();
  auto r = sign(admin_, csr.der, std::nullopt);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << api::describe(r.status);
  EXPECT_TRUE(r.response.cert_chain_pem().empty()) << "issued " << r.response.spiffe_id();
}

TEST_F(ControlServer, CertificateFromAnotherCaIsRefused) {
  // Another control plane's data dir: same trust domain name, different root.
  ServerOptions o;
  o.data_dir = dir_ + "/other";
  auto other = ControlPlane::open(o);
  ASSERT_TRUE(other) << other.error().to_string();
  auto other_ca = ca::Authority::load_dir(o.data_dir + "/ca", std::time(nullptr));
  ASSERT_TRUE(other_ca);
  auto foreign = issue_with(*other_ca, "shop", "cart");
  foreign.bundle_pem = bundle_;  // it trusts our server; we must not trust it
  auto foreign_admin = api::load_svid_dir(o.data_dir + "/admin");
  ASSERT_TRUE(foreign_admin);
  foreign_admin->bundle_pem = bundle_;

  auto refused = [](const grpc::Status& st) {
    return st.error_code() == grpc::StatusCode::UNAVAILABLE ||
           st.error_code() == grpc::StatusCode::UNAUTHENTICATED;
  };
  const long before = signed_so_far();
  auto csr = new_csr();
  auto r = sign(foreign, csr.der, std::nullopt);
  EXPECT_TRUE(refused(r.status)) << api::describe(r.status);
  EXPECT_TRUE(r.response.cert_chain_pem().empty());
  // Even with a valid token alongside, a bad certificate is not ignored.
  auto with_token = sign(foreign, csr.der, "Bearer " + create_token("shop", "cart"));
  EXPECT_TRUE(refused(with_token.status)) << api::describe(with_token.status);
  EXPECT_EQ(signed_so_far(), before);

  pb::ApplyResponse resp;
  auto st = apply(policy("p", "shop"), &resp, *foreign_admin);
  EXPECT_TRUE(refused(st) || st.error_code() == grpc::StatusCode::PERMISSION_DENIED) << api::describe(st);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(get_all().resources_size(), 0);

  WatchClient w(channel(foreign));
  w.hello("cart");
  EXPECT_FALSE(w.next());
  auto ws = w.finish();
  EXPECT_TRUE(refused(ws)) << api::describe(ws);
}

// ------------------------------------------------------------------------------ admin

TEST_F(ControlServer, AdminRpcsNeedTheAdminIdentity) {
  const auto workload_svid = issue("shop", "cart");
  // An SVID for the reserved namespace that is not the admin identity is no admin either.
  const auto control_sa = issue("meshguard-system", "meshguard-other");
  for (const auto& own : {std::optional<api::SvidFiles>(), std::optional<api::SvidFiles>(workload_svid),
                          std::optional<api::SvidFiles>(control_sa)}) {
    auto stub = admin_stub(own);
    const std::string who = own ? leaf_of(own->cert_chain_pem, nullptr).id : "no certificate";
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::ApplyRequest req;
      req.add_files()->set_yaml(policy("p", "shop"));
      pb::ApplyResponse resp;
      EXPECT_EQ(stub->Apply(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::GetResponse resp;
      EXPECT_EQ(stub->Get(&ctx, pb::GetRequest(), &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::DeleteRequest req;
      req.mutable_key()->set_kind("AuthorizationPolicy");
      req.mutable_key()->set_namespace_("shop");
      req.mutable_key()->set_name("p");
      pb::DeleteResponse resp;
      EXPECT_EQ(stub->Delete(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::ListWorkloadsResponse resp;
      EXPECT_EQ(stub->ListWorkloads(&ctx, pb::ListWorkloadsRequest(), &resp).error_code(),
                grpc::StatusCode::PERMISSION_DENIED)
          << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::CreateTokenRequest req;
      req.set_namespace_("shop");
      req.set_service_account("cart");
      pb::CreateTokenResponse resp;
      EXPECT_EQ(stub->CreateToken(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
      EXPECT_TRUE(resp.token().empty());
    }
  }
  EXPECT_EQ(get_all().resources_size(), 0);  // nothing was applied
}

TEST_F(ControlServer, CreateTokenForTheSystemNamespaceIsInvalidArgument) {
  auto stub = admin_stub(admin_);
  for (const char* sa : {"meshguard-admin", "meshguard-control", "x"}) {
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::CreateTokenRequest req;
    req.set_namespace_("meshguard-system");
    req.set_service_account(sa);
    pb::CreateTokenResponse resp;
    EXPECT_EQ(stub->CreateToken(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << sa;
    EXPECT_TRUE(resp.token().empty());
  }
}

TEST_F(ControlServer, BadApplyChangesNothing) {
  pb::ApplyResponse first;
  auto st = apply(policy("keep", "shop"), &first);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  const auto before = get_all();
  ASSERT_EQ(before.resources_size(), 1);

  const std::vector<std::string> bad = {
      policy("new-good", "shop") + "---\n" +
          "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
          "metadata:\n  name: bad\n  namespace: shop\nspec:\n  bogusField: 1\n",
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: [\n",  // YAML syntax
      // A typo of a security kind (a kind of another API group is left out, below).
      "apiVersion: security.istio.io/v1\nkind: AuthorisationPolicy\nmetadata:\n  name: x\n",
  };
  for (const auto& yaml : bad) {
    pb::ApplyResponse resp;
    auto s = apply(yaml, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(s) << "\n" << yaml;
    auto after = get_all();
    EXPECT_EQ(after.revision(), before.revision());
    ASSERT_EQ(after.resources_size(), 1);
    EXPECT_EQ(after.resources(0).key().name(), "keep");
    EXPECT_EQ(after.resources(0).yaml(), before.resources(0).yaml());
  }
  // Not refused since issue 12 item 8: a document of a kind meshguard does not enforce is left
  // out, and an apply of nothing else changes nothing. (Two documents with one name — item 10 —
  // store the later: store_test and e2e kubectl_yaml.)
  pb::ApplyResponse skipped;
  st = apply("apiVersion: example.com/v1\nkind: Unknown\nmetadata:\n  name: x\n", &skipped);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  EXPECT_EQ(skipped.created_size() + skipped.configured_size() + skipped.unchanged_size(), 0);
  EXPECT_EQ(get_all().revision(), before.revision());
}

TEST_F(ControlServer, BadFileInAMultiFileApplyChangesNothing) {
  const auto before = get_all();
  auto stub = admin_stub(admin_);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  pb::ApplyRequest req;
  auto* good = req.add_files();
  good->set_yaml(policy("good", "shop"));
  good->set_source("good.yaml");
  auto* bad = req.add_files();
  bad->set_yaml(policy("also-good", "shop") + "---\n" +
                "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                "metadata:\n  name: bad\n  namespace: shop\nspec:\n  action: MAYBE\n");
  bad->set_source("bad.yaml");
  pb::ApplyResponse resp;
  auto st = stub->Apply(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "bad.yaml")) << st.error_message();
  auto after = get_all();
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.resources_size(), 0);
}

TEST_F(ControlServer, ApplyNamespacePlacesDocumentsThatNameNone) {
  // kubectl apply -n: ApplyRequest.namespace is where a document without metadata.namespace goes;
  // one naming another namespace refuses the whole apply.
  const std::string mesh_wide =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\nspec:\n"
      "  mtls:\n    mode: STRICT\n";
  auto apply_in = [&](const std::string& ns, const std::string& yaml, pb::ApplyResponse* resp) {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ApplyRequest req;
    req.set_namespace_(ns);
    auto* f = req.add_files();
    f->set_yaml(yaml);
    f->set_source("strict.yaml");
    return stub->Apply(&ctx, req, resp);
  };
  pb::ApplyResponse resp;
  auto st = apply_in("istio-system", mesh_wide, &resp);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  ASSERT_EQ(resp.created_size(), 1);
  EXPECT_EQ(resp.created(0).namespace_(), "istio-system");
  auto all = get_all();
  ASSERT_EQ(all.resources_size(), 1);
  EXPECT_TRUE(contains(all.resources(0).yaml(), "namespace: istio-system")) << all.resources(0).yaml();

  st = apply_in("bar", policy("p", "shop"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "does not match the namespace given with -n/--namespace (\"bar\")"))
      << st.error_message();
  st = apply_in("Not/A-Namespace", mesh_wide, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_EQ(get_all().revision(), all.revision());
}

TEST_F(ControlServer, MeshWithAnotherTrustDomainIsRefused) {
  const std::string head =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n";
  const auto before = get_all();
  auto st = apply(head + "  trustDomain: example.org\n" + "---\n" + policy("p", "shop"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  auto after = get_all();
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.resources_size(), 0);
  // The CA's own trust domain is accepted: the refusal was about the trust domain.
  st = apply(head + "  trustDomain: cluster.local\n");
  EXPECT_TRUE(st.ok()) << api::describe(st);
}

// A CUSTOM AuthorizationPolicy must name one of the Mesh's extensionProviders: the Mesh applied
// with it, else the stored one. Otherwise the whole apply is refused and nothing is stored.
TEST_F(ControlServer, CustomNamingAnUndefinedProviderIsRefusedAtApply) {
  const std::string mesh =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n"
      "  trustDomain: cluster.local\n  extensionProviders:\n  - name: opa-ext\n"
      "    envoyExtAuthzGrpc: {service: 127.0.0.1, port: 9191}\n";
  auto custom = [](const std::string& name, const std::string& provider) {
    return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
           "\n  namespace: shop\nspec:\n  action: CUSTOM\n  provider:\n    name: " + provider +
           "\n  rules:\n  - {}\n";
  };
  const auto before = get_all();
  auto st = apply(policy("p", "shop") + "---\n" + custom("ext", "opa-ext"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "test.yaml:")) << st.error_message();
  EXPECT_TRUE(contains(st.error_message(), "CUSTOM provider \"opa-ext\" is not defined in the Mesh's extensionProviders"))
      << st.error_message();
  auto after = get_all();
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.resources_size(), 0);

  // Defined by the Mesh of the same apply: accepted; then by the stored Mesh.
  st = apply(mesh + "---\n" + custom("ext", "opa-ext"));
  ASSERT_TRUE(st.ok()) << api::describe(st);
  st = apply(custom("ext2", "opa-ext"));
  EXPECT_TRUE(st.ok()) << api::describe(st);
  const auto stored = get_all();
  st = apply(custom("ext3", "other"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "\"other\" is not defined")) << st.error_message();
  EXPECT_EQ(get_all().revision(), stored.revision());
}

// ------------------------------------------------------------------------------ watch

TEST_F(ControlServer, WatchWithoutClientCertificateIsUnauthenticated) {
  WatchClient w(channel(std::nullopt));
  w.hello("cart", {{"app", "cart"}});
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ControlServer, WatchPushesOnlyWhatAppliesToTheWorkload) {
  pb::ApplyResponse r0;
  ASSERT_TRUE(apply(policy("mesh-wide", "istio-system") + "---\n" + policy("cart-only", "shop", "cart") +
                        "---\n" + policy("web-only", "shop", "web") + "---\n" + policy("other-ns", "other"),
                    &r0)
                  .ok());

  WatchClient cart(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(cart.hello("cart", {{"app", "cart"}}));
  auto s1 = cart.at_least(r0.revision());
  ASSERT_TRUE(s1);
  EXPECT_TRUE(contains(s1->policies_yaml(), "name: mesh-wide"));
  EXPECT_TRUE(contains(s1->policies_yaml(), "name: cart-only"));
  EXPECT_FALSE(contains(s1->policies_yaml(), "name: web-only"));
  EXPECT_FALSE(contains(s1->policies_yaml(), "name: other-ns"));
  EXPECT_EQ(s1->labels().at("app"), "cart");
  EXPECT_EQ(s1->trust_bundle_pem(), bundle_);
  EXPECT_EQ(s1->mesh().trust_domain(), "cluster.local");
  ASSERT_TRUE(cart.ack(s1->version()));

  WatchClient other(channel(issue("other", "api-sa")));
  ASSERT_TRUE(other.hello("api"));
  auto o1 = other.at_least(r0.revision());
  ASSERT_TRUE(o1);
  EXPECT_TRUE(contains(o1->policies_yaml(), "name: other-ns"));
  EXPECT_FALSE(contains(o1->policies_yaml(), "name: cart-only"));
  ASSERT_TRUE(other.ack(o1->version()));

  // A change that does not apply to cart: `other` gets it. Its arrival proves the distributor has
  // been through every stream for that change, so cart's next snapshot tells whether it was pushed.
  pb::ApplyResponse r1;
  ASSERT_TRUE(apply(policy("other-new", "other") + "---\n" + policy("web-new", "shop", "web"), &r1).ok());
  auto o2 = other.next();
  ASSERT_TRUE(o2);
  EXPECT_TRUE(contains(o2->policies_yaml(), "name: other-new"));
  EXPECT_EQ(o2->revision(), r1.revision());
  ASSERT_TRUE(other.ack(o2->version()));

  pb::ApplyResponse r2;
  ASSERT_TRUE(apply(policy("cart-new", "shop", "cart"), &r2).ok());
  ASSERT_GT(r2.revision(), r1.revision());
  auto s2 = cart.next();
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2->revision(), r2.revision())
      << "cart was pushed a snapshot for a change that does not apply to it";
  EXPECT_TRUE(contains(s2->policies_yaml(), "name: cart-new"));
  EXPECT_FALSE(contains(s2->policies_yaml(), "name: web-new"));
  EXPECT_FALSE(contains(s2->policies_yaml(), "name: other-new"));
  EXPECT_NE(s2->version(), s1->version());
  ASSERT_TRUE(cart.ack(s2->version()));

  // Both ACKs land in the workload list.
  bool acked = false;
  for (int i = 0; i < 500 && !acked; ++i) {
    const auto list = list_workloads();
    for (const auto& w : list.workloads())
      if (w.name() == "cart" && w.acked_version() == s2->version()) acked = true;
    if (!acked) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(acked);
}

// The store revision is the one version: a change that selects a proxy leaves it behind until it
// ACKs (apply --wait waits for that); one that does not select it moves it along unpushed.
TEST_F(ControlServer, SyncedRevisionFollowsAcksAndChangesThatDoNotSelectTheProxy) {
  WatchClient cart(channel(issue("shop", "cart-sa")));
  WatchClient web(channel(issue("shop", "web-sa")));
  ASSERT_TRUE(cart.hello("cart", {{"app", "cart"}}));
  ASSERT_TRUE(web.hello("web", {{"app", "web"}}));
  auto c1 = cart.next();
  auto w1 = web.next();
  ASSERT_TRUE(c1 && w1);
  ASSERT_TRUE(cart.ack(c1->version()));
  ASSERT_TRUE(web.ack(w1->version()));

  pb::ApplyResponse applied;
  ASSERT_TRUE(apply(policy("cart-only", "shop", "cart"), &applied).ok());
  const int64_t rev = applied.revision();
  auto c2 = cart.at_least(rev);
  ASSERT_TRUE(c2);
  EXPECT_EQ(c2->revision(), rev);
  auto status_of = [&](const std::string& name) {
    const auto list = list_workloads();
    for (const auto& w : list.workloads())
      if (w.name() == name) return w;
    return pb::WorkloadStatus{};
  };
  // Pushed, not ACKed: cart is behind; web (not selected) is in sync at `rev` without a push.
  std::this_thread::sleep_for(100ms);
  EXPECT_LT(status_of("cart").synced_revision(), rev);
  EXPECT_EQ(status_of("cart").config_revision(), rev);
  bool web_synced = false;
  for (int i = 0; i < 500 && !web_synced; ++i) {
    auto w = status_of("web");
    web_synced = w.synced_revision() >= rev;
    if (!web_synced) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(web_synced);
  EXPECT_LT(status_of("web").acked_revision(), rev);  // its snapshot predates the change
  EXPECT_EQ(list_workloads().revision(), rev);

  ASSERT_TRUE(cart.ack(c2->version()));
  bool cart_synced = false;
  for (int i = 0; i < 500 && !cart_synced; ++i) {
    auto w = status_of("cart");
    cart_synced = w.synced_revision() >= rev && w.acked_revision() == rev;
    if (!cart_synced) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(cart_synced);
}

TEST_F(ControlServer, NackIsRecorded) {
  WatchClient w(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(w.hello("cart", {{"app", "cart"}}));
  auto s = w.next();
  ASSERT_TRUE(s);
  ASSERT_TRUE(w.ack(s->version(), false, "policies/snapshot.yaml:3: bad rule"));
  std::optional<pb::WorkloadStatus> seen;
  for (int i = 0; i < 500 && !seen; ++i) {
    const auto list = list_workloads();
    for (const auto& ws : list.workloads())
      if (ws.name() == "cart" && !ws.nack_error().empty()) seen = ws;
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->nack_error(), "policies/snapshot.yaml:3: bad rule");
  EXPECT_EQ(seen->namespace_(), "shop");
  EXPECT_EQ(seen->service_account(), "cart-sa");
  EXPECT_EQ(seen->config_version(), s->version());
  EXPECT_NE(seen->acked_version(), s->version());  // a NACK is not an ACK
  EXPECT_TRUE(seen->connected());
}

// A proxy that reconnects opens its new stream before the old one has ended; the old stream's
// end must not mark the workload disconnected while the new stream is up.
TEST_F(ControlServer, ReplacedStreamEndingLeavesTheWorkloadConnected) {
  auto svid = issue("shop", "cart-sa");
  WatchClient old_stream(channel(svid));
  ASSERT_TRUE(old_stream.hello("cart", {{"app", "cart"}}));
  auto first = old_stream.next();
  ASSERT_TRUE(first);
  WatchClient new_stream(channel(svid));
  ASSERT_TRUE(new_stream.hello("cart", {{"app", "cart"}}));
  auto again = new_stream.next();
  ASSERT_TRUE(again);
  ASSERT_TRUE(new_stream.ack(again->version()));
  // The old stream is ended by the server ("replaced by a newer stream").
  EXPECT_FALSE(old_stream.next());
  EXPECT_EQ(old_stream.finish().error_code(), grpc::StatusCode::ABORTED);
  std::optional<pb::WorkloadStatus> seen;
  for (int i = 0; i < 500 && !seen; ++i) {
    const auto list = list_workloads();
    for (const auto& ws : list.workloads())
      if (ws.name() == "cart" && ws.acked_version() == again->version()) seen = ws;
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(seen);
  EXPECT_TRUE(seen->connected());
  // Once the only stream ends, the workload shows disconnected (bounded poll).
  new_stream.ctx.TryCancel();
  new_stream.finish();
  bool disconnected = false;
  for (int i = 0; i < 500 && !disconnected; ++i) {
    const auto list = list_workloads();
    for (const auto& ws : list.workloads())
      if (ws.name() == "cart" && !ws.connected()) disconnected = true;
    if (!disconnected) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(disconnected);
}

TEST_F(ControlServer, HelloAsAWorkloadRegisteredForAnotherServiceAccountIsDenied) {
  ASSERT_TRUE(apply(workload("cart", "shop", "cart-sa", "cart")).ok());
  ASSERT_TRUE(wait_registered("shop", "cart"));
  WatchClient w(channel(issue("shop", "intruder-sa")));
  ASSERT_TRUE(w.hello("cart", {{"app", "cart"}}));
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The registered service account is accepted, with the registered labels (not the proxy's).
  WatchClient ok(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(ok.hello("cart", {{"app", "payments"}}));
  auto s = ok.at_least(get_all().revision());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->labels().at("app"), "cart");
}

// A stream that said Hello as an unregistered workload loses it when a Workload registration
// binds that name to another service account: it is ended, never pushed that workload's config.
// An unregistered workload's name belongs to the identity connected with it: another service
// account of the namespace cannot take the name over (and so cannot abort the owner's stream).
TEST_F(ControlServer, ConnectedWorkloadNameIsNotTakenOverByAnotherServiceAccount) {
  WatchClient owner(channel(issue("shop", "web-sa")));
  ASSERT_TRUE(owner.hello("web", {{"app", "web"}}));
  auto first = owner.next();
  ASSERT_TRUE(first);
  ASSERT_TRUE(owner.ack(first->version()));

  WatchClient squatter(channel(issue("shop", "other-sa")));
  ASSERT_TRUE(squatter.hello("web", {{"app", "web"}}));
  EXPECT_FALSE(squatter.next());
  EXPECT_EQ(squatter.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // The owner's stream is alive: a matching change still reaches it.
  pb::ApplyResponse r;
  ASSERT_TRUE(apply(policy("web-only", "shop", "web"), &r).ok());
  auto pushed = owner.at_least(r.revision());
  ASSERT_TRUE(pushed);
}

TEST_F(ControlServer, RegistrationForAnotherServiceAccountEndsAnOpenStream) {
  WatchClient intruder(channel(issue("shop", "intruder-sa")));
  ASSERT_TRUE(intruder.hello("cart", {{"app", "other"}}));
  auto first = intruder.next();
  ASSERT_TRUE(first);
  ASSERT_TRUE(intruder.ack(first->version()));

  pb::ApplyResponse r;
  ASSERT_TRUE(
      apply(workload("cart", "shop", "cart-sa", "cart") + "---\n" + policy("cart-only", "shop", "cart"), &r)
          .ok());
  auto pushed = intruder.next();
  EXPECT_FALSE(pushed) << "a proxy running as shop/intruder-sa was pushed workload shop/cart's configuration "
                          "(labels app="
                       << (pushed ? pushed->labels().at("app") : "")
                       << ") after cart was registered for cart-sa";
  if (!pushed) {
    EXPECT_EQ(intruder.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
}

// The service registry through the real API: a proxy's Hello registers it, the other proxies are
// pushed its endpoint, `Get` of ServiceEndpoints shows it, an operator cannot apply one, and a
// Hello with a malformed address or port ends the stream.
TEST_F(ControlServer, HelloRegistersAnEndpointThatIsPushedToOtherProxies) {
  const std::string service =
      "apiVersion: meshguard.io/v1alpha1\nkind: Service\nmetadata: {name: cart, namespace: shop}\n"
      "spec:\n  selector: {app: cart}\n  ports: [{name: http, port: 80, targetPort: 8080}]\n";
  pb::ApplyResponse r;
  ASSERT_TRUE(apply(service, &r).ok());
  WatchClient web(channel(issue("shop", "web-sa")));
  ASSERT_TRUE(web.hello("web", {{"app", "web"}}));
  auto w1 = web.at_least(r.revision());
  ASSERT_TRUE(w1);
  EXPECT_TRUE(contains(w1->policies_yaml(), "kind: Service\n")) << w1->policies_yaml();
  EXPECT_TRUE(contains(w1->policies_yaml(), "endpoints: []")) << w1->policies_yaml();
  ASSERT_TRUE(web.ack(w1->version()));

  WatchClient cart(channel(issue("shop", "cart-sa")));
  ASSERT_TRUE(cart.hello("cart-1", {{"app", "cart"}}, "10.1.2.3", {{15006, 8080}}));
  auto c1 = cart.next();
  ASSERT_TRUE(c1);
  ASSERT_TRUE(cart.ack(c1->version()));
  auto w2 = web.next();  // the registration is a change of web's view
  ASSERT_TRUE(w2);
  EXPECT_TRUE(contains(w2->policies_yaml(), "address: \"10.1.2.3\"")) << w2->policies_yaml();
  EXPECT_TRUE(contains(w2->policies_yaml(), "{port: 80, endpointPort: 15006}")) << w2->policies_yaml();
  EXPECT_TRUE(contains(w2->policies_yaml(), "serviceAccount: cart-sa")) << w2->policies_yaml();
  ASSERT_TRUE(web.ack(w2->version()));

  auto stub = admin_stub(admin_);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  pb::GetRequest req;
  req.set_kind("ServiceEndpoints");
  pb::GetResponse got;
  ASSERT_TRUE(stub->Get(&ctx, req, &got).ok());
  ASSERT_EQ(got.resources_size(), 1);
  EXPECT_EQ(got.resources(0).key().name(), "cart");
  EXPECT_TRUE(contains(got.resources(0).yaml(), "workload: cart-1"));
  const auto stored = get_all();
  for (const auto& r2 : stored.resources()) EXPECT_NE(r2.key().kind(), "ServiceEndpoints");  // not stored

  const auto refused = apply(
      "apiVersion: meshguard.io/v1alpha1\nkind: ServiceEndpoints\nmetadata: {name: cart, namespace: shop}\n"
      "spec: {endpoints: []}\n");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(contains(refused.error_message(), "cannot be applied")) << refused.error_message();

  for (auto [address, port] : {std::pair<std::string, uint32_t>{"cart.shop", 15006}, {"10.0.0.1", 70000}}) {
    WatchClient bad(channel(issue("shop", "cart-sa")));
    ASSERT_TRUE(bad.hello("cart-2", {{"app", "cart"}}, address, {{port, 8080}}));
    EXPECT_FALSE(bad.next()) << address << " " << port;
    EXPECT_EQ(bad.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT) << address << " " << port;
  }
}

TEST_F(ControlServer, MalformedWatchRequestsEndTheStream) {
  const auto svid = issue("shop", "cart-sa");
  {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.ack("0123456789abcdef"));  // an ACK before Hello
    EXPECT_FALSE(w.next());
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.stream->Write(pb::WatchRequest()));  // neither Hello nor Ack
    EXPECT_FALSE(w.next());
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (const std::string& name :
       std::vector<std::string>{"", "Cart", "../cart", "cart/x", std::string(300, 'a')}) {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.hello(name));
    EXPECT_FALSE(w.next()) << name;
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED) << name;
  }
  {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.hello("cart"));
    auto s = w.next();
    ASSERT_TRUE(s);
    ASSERT_TRUE(w.hello("cart"));  // Hello twice
    EXPECT_FALSE(w.next());
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(ControlServer, SystemNamespaceSvidCannotWatch) {
  WatchClient w(channel(admin_));
  ASSERT_TRUE(w.hello("admin"));
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// ------------------------------------------------------------------------------ SVID files

// What api::load_svid_dir reads is what the clients present: a key that is not the certificate's
// (a half-renewed directory read at the wrong moment, or a mistake) is an error, not a TLS
// failure later.
TEST(SvidDir, KeyThatIsNotTheCertificatesIsRefused) {
  const std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  auto ca = ca::Authority::create_self_signed("cluster.local", crypto::KeyType::EcP256, std::time(nullptr));
  ASSERT_TRUE(ca) << ca.error().to_string();
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  auto issued = ca->sign_csr(crypto::make_csr(key->get())->get(),
                             *identity::SpiffeId::istio("cluster.local", "ns", "sa"), 1h, std::time(nullptr));
  ASSERT_TRUE(issued) << issued.error().to_string();
  ASSERT_TRUE(files::write_file_atomic(dir + "/cert-chain.pem", issued->chain_pem, 0644));
  ASSERT_TRUE(files::write_file_atomic(dir + "/root-cert.pem", ca->bundle().to_pem(), 0644));
  ASSERT_TRUE(files::write_file_atomic(dir + "/key.pem", crypto::private_key_to_pem(key->get()), 0600));
  EXPECT_TRUE(api::load_svid_dir(dir));
  auto other = crypto::generate_key(crypto::KeyType::EcP256);
  ASSERT_TRUE(files::write_file_atomic(dir + "/key.pem", crypto::private_key_to_pem(other->get()), 0600));
  auto loaded = api::load_svid_dir(dir);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, "api.key_mismatch");
  std::filesystem::remove_all(dir);
}

// ------------------------------------------------------------------------------ own identities

// The control plane's serving certificate and the admin identity are issued again at half-life
// while it runs: new connections get the new serving certificate — never an expired one — and
// meshguardctl's identity on disk is replaced. (Short lifetimes here; 30 days by default.)
TEST(ControlPlaneOwnIdentity, RenewedAtHalfLifeWhileRunning) {
  const std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  ServerOptions o;
  o.data_dir = dir + "/data";
  o.listen = "127.0.0.1:0";
  o.metrics_listen = "127.0.0.1:0";
  o.own_certificate_ttl = 8s;  // renewed from 4 s on, served within a check more: well before 8 s
  o.housekeeping_interval = 1s;
  auto cp = ControlPlane::open(o);
  ASSERT_TRUE(cp) << cp.error().to_string();
  ASSERT_TRUE((*cp)->start());

  // One admin call over a new connection, with the admin identity as it is on disk now: its
  // status and the serving certificate the control plane presented.
  auto call = [&](std::string* served) {
    auto admin = api::load_svid_dir(o.data_dir + "/admin");
    if (!admin) return grpc::Status(grpc::StatusCode::INTERNAL, admin.error().to_string());
    auto stub = pb::AdminService::NewStub(api::make_channel((*cp)->address(), admin->bundle_pem, *admin));
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ListWorkloadsResponse resp;
    auto st = stub->ListWorkloads(&ctx, pb::ListWorkloadsRequest(), &resp);
    served->clear();
    if (auto auth = ctx.auth_context()) {
      auto leaf = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
      if (!leaf.empty()) served->assign(leaf.front().data(), leaf.front().size());
    }
    return st;
  };
  std::string first, served;
  auto st = call(&first);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  ASSERT_FALSE(first.empty());
  auto first_leaf = crypto::parse_cert_chain_pem(first);
  ASSERT_TRUE(first_leaf && !first_leaf->empty());
  const std::time_t first_expiry = crypto::asn1_to_unix(X509_get0_notAfter(first_leaf->front().get()));
  auto first_admin = api::load_svid_dir(o.data_dir + "/admin");
  ASSERT_TRUE(first_admin);

  served = first;
  for (int i = 0; i < 150 && served == first; ++i) {  // ≤ 15 s
    std::this_thread::sleep_for(100ms);
    st = call(&served);
    ASSERT_TRUE(st.ok()) << "call " << i << " while waiting for the renewal: " << api::describe(st);
  }
  EXPECT_NE(served, first) << "the serving certificate was not renewed";
  auto admin = api::load_svid_dir(o.data_dir + "/admin");
  ASSERT_TRUE(admin);
  EXPECT_NE(admin->cert_chain_pem, first_admin->cert_chain_pem) << "the admin identity was not renewed";

  // Past the first serving certificate's notAfter, new connections still succeed.
  for (int i = 0; i < 150 && std::time(nullptr) <= first_expiry + 1; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_GT(std::time(nullptr), first_expiry + 1);
  st = call(&served);
  EXPECT_TRUE(st.ok()) << api::describe(st);
  EXPECT_NE(served, first);
  // Issued at start and again at least once since; both expiry gauges are exposed.
  const std::string metrics = http_get((*cp)->metrics_address(), "/metrics");
  const std::string issued =
      "\nmeshguard_own_certificate_issued_total{identity=\"control\",result=\"success\"} ";
  auto at = metrics.find(issued);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::stol(metrics.substr(at + issued.size())), 2);
  EXPECT_TRUE(contains(metrics, "\nmeshguard_own_certificate_expiry_timestamp_seconds{identity=\"admin\"} "));
  EXPECT_TRUE(contains(metrics, "\nmeshguard_own_certificate_expiry_timestamp_seconds{identity=\"control\"} "));
  (*cp)->shutdown();
  std::filesystem::remove_all(dir);
}

// ------------------------------------------------------------------------------ Kubernetes tokens

// A cluster rotates its service-account signing keys by publishing a new JWKS: the control plane
// reads the file again when it changes, and keeps the keys in use when the new file is broken.
TEST(ControlPlaneK8sTokens, JwksFileIsReadAgainWhenItChanges) {
  const std::string dir = make_temp_dir();
  ASSERT_FALSE(dir.empty());
  const std::string issuer = "https://kubernetes.default.svc.cluster.local";
  auto old_key = jwt::testing::make_key(jwt::Alg::RS256, "old");
  auto new_key = jwt::testing::make_key(jwt::Alg::ES256, "new");
  const std::string jwks_file = dir + "/jwks.json";
  ASSERT_TRUE(files::write_file_atomic(jwks_file, jwt::testing::jwks_of({&old_key}), 0644));
  ServerOptions o;
  o.data_dir = dir + "/data";
  o.listen = "127.0.0.1:0";
  o.k8s_issuer = issuer;
  o.k8s_jwks_file = jwks_file;
  o.metrics_listen = "127.0.0.1:0";
  o.housekeeping_interval = 1s;
  auto cp = ControlPlane::open(o);
  ASSERT_TRUE(cp) << cp.error().to_string();
  ASSERT_TRUE((*cp)->start());
  auto ca = ca::Authority::load_dir(o.data_dir + "/ca", std::time(nullptr));
  ASSERT_TRUE(ca);
  const std::string bundle = ca->bundle().to_pem();

  // Bootstraps with a projected token signed by `key`: the status of the Sign call.
  auto bootstrap = [&](const jwt::testing::TestKey& key) {
    const int64_t now = std::time(nullptr);
    const std::string token = jwt::testing::sign_token(key, {},
                                                       {{"iss", issuer},
                                                        {"aud", {"meshguard"}},
                                                        {"sub", "system:serviceaccount:payments:api"},
                                                        {"iat", now},
                                                        {"nbf", now},
                                                        {"exp", now + 600}});
    auto stub = pb::CertificateService::NewStub(api::make_channel((*cp)->address(), bundle, std::nullopt));
    grpc::ClientContext ctx;
    set_deadline(ctx);
    ctx.AddMetadata("authorization", "Bearer " + token);
    pb::SignRequest req;
    req.set_csr_der(new_csr().der);
    pb::SignResponse resp;
    return stub->Sign(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(bootstrap(old_key), grpc::StatusCode::OK);
  EXPECT_EQ(bootstrap(new_key), grpc::StatusCode::UNAUTHENTICATED);

  ASSERT_TRUE(files::write_file_atomic(jwks_file, jwt::testing::jwks_of({&new_key}), 0644));
  grpc::StatusCode with_new = grpc::StatusCode::UNAUTHENTICATED;
  for (int i = 0; i < 100 && with_new != grpc::StatusCode::OK; ++i) {  // ≤ 10 s
    std::this_thread::sleep_for(100ms);
    with_new = bootstrap(new_key);
  }
  EXPECT_EQ(with_new, grpc::StatusCode::OK) << "the new JWKS was not read";
  EXPECT_EQ(bootstrap(old_key), grpc::StatusCode::UNAUTHENTICATED)
      << "a key the cluster dropped still signs in";

  // A broken file is read (and counted as an error) but keeps the keys in use.
  ASSERT_TRUE(files::write_file_atomic(jwks_file, "{not json", 0644));
  const std::string error_line = "\nmeshguard_config_reload_total{resource=\"k8s_jwks\",result=\"error\"} 1";
  bool counted = false;
  for (int i = 0; i < 100 && !counted; ++i) {  // ≤ 10 s
    std::this_thread::sleep_for(100ms);
    counted = contains(http_get((*cp)->metrics_address(), "/metrics"), error_line);
  }
  EXPECT_TRUE(counted) << "the broken file was not read";
  EXPECT_EQ(bootstrap(new_key), grpc::StatusCode::OK);
  (*cp)->shutdown();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mg::control
