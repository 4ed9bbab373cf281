// tests/unit/control_server/own_identity_test — the control plane's own credentials: SVID directories, its
// serving and admin identities renewed at half-life, the Kubernetes issuer's JWKS read again when
// it changes.
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

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
}  // namespace mg::control::server_test
