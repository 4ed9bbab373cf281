#include "identity/trust_bundle.h"

#include "identity/spiffe_id.h"

namespace mg::identity {

namespace {
crypto::X509Ptr share(X509* cert) {
  X509_up_ref(cert);
  return crypto::X509Ptr(cert);
}
}  // namespace

Result<TrustBundle> TrustBundle::empty(std::string_view trust_domain) {
  if (auto st = validate_trust_domain(trust_domain); !st) return fail(st.error());
  return TrustBundle(std::string(trust_domain));
}

Result<TrustBundle> TrustBundle::from_pem(std::string_view trust_domain, std::string_view pem) {
  auto bundle = empty(trust_domain);
  if (!bundle) return bundle;
  auto certs = crypto::parse_cert_chain_pem(pem);
  if (!certs) return fail(certs.error());
  for (auto& cert : *certs) {
    if (auto st = bundle->add_root(cert.get()); !st) return fail(st.error());
  }
  return bundle;
}

TrustBundle::TrustBundle(const TrustBundle& other) : trust_domain_(other.trust_domain_) {
  roots_.reserve(other.roots_.size());
  for (const auto& r : other.roots_) roots_.push_back(share(r.get()));
}

TrustBundle& TrustBundle::operator=(const TrustBundle& other) {
  if (this != &other) {
    TrustBundle copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Status TrustBundle::add_root(X509* root) {
  if (!root) return fail("bundle.empty", "no certificate given");
  if (X509_check_ca(root) != 1) {
    return fail("bundle.not_ca", "trust bundle entry is not a CA certificate (basicConstraints CA:TRUE missing)");
  }
  for (const auto& r : roots_) {
    if (X509_cmp(r.get(), root) == 0) return {};
  }
  roots_.push_back(share(root));
  return {};
}

std::string TrustBundle::to_pem() const {
  std::string out;
  for (const auto& r : roots_) out += crypto::cert_to_pem(r.get());
  return out;
}

Result<crypto::X509StorePtr> TrustBundle::make_store() const {
  if (roots_.empty()) return fail("bundle.empty", "trust bundle for " + trust_domain_ + " holds no roots");
  crypto::X509StorePtr store(X509_STORE_new());
  if (!store) return fail(crypto::openssl_error("bundle.store", "cannot allocate X509_STORE"));
  for (const auto& r : roots_) {
    if (X509_STORE_add_cert(store.get(), r.get()) != 1)
      return fail(crypto::openssl_error("bundle.store", "cannot add root to X509_STORE"));
  }
  return store;
}

namespace {
constexpr std::string_view kFederatedHeader = "# trust domain: ";
}  // namespace

std::string federated_bundles_to_text(const std::vector<TrustBundle>& bundles) {
  std::string out;
  for (const auto& b : bundles) {
    out += std::string(kFederatedHeader) + b.trust_domain() + "\n";
    out += b.to_pem();
  }
  return out;
}

Result<std::vector<TrustBundle>> parse_federated_bundles(std::string_view text) {
  std::vector<TrustBundle> out;
  size_t pos = 0;
  std::string td;
  std::string pem;
  auto flush = [&]() -> Status {
    if (td.empty()) return {};
    if (pem.empty()) return fail("bundle.federated", "federated trust domain " + td + " has no roots");
    auto b = TrustBundle::from_pem(td, pem);
    if (!b) return fail(b.error());
    if (b->roots().empty()) return fail("bundle.federated", "federated trust domain " + td + " has no roots");
    for (const auto& seen : out) {
      if (seen.trust_domain() == td)
        return fail("bundle.federated", "federated trust domain " + td + " listed twice");
    }
    out.push_back(std::move(*b));
    return {};
  };
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    if (line.starts_with(kFederatedHeader)) {
      if (auto st = flush(); !st) return fail(st.error());
      td = std::string(line.substr(kFederatedHeader.size()));
      pem.clear();
    } else if (!line.empty()) {
      if (td.empty()) return fail("bundle.federated", "a root before any \"# trust domain:\" line");
      pem.append(line);
      pem += '\n';
    }
    pos = eol + 1;
  }
  if (auto st = flush(); !st) return fail(st.error());
  return out;
}

const TrustBundle* bundle_for(std::string_view trust_domain, const TrustBundle& own,
                              const std::vector<TrustBundle>& federated) {
  if (own.trust_domain() == trust_domain) return &own;
  for (const auto& b : federated) {
    if (b.trust_domain() == trust_domain) return &b;
  }
  return nullptr;
}

}  // namespace mg::identity
