// tests/unit/control_server/certificate_service_test — CertificateService.Sign: bootstrap tokens (who may get which
// identity, malformed CSRs, the reserved namespace) and renewal with a current SVID (expired,
// system, another CA's).
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

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

}  // namespace
}  // namespace mg::control::server_test
