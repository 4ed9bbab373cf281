// control/bootstrap_credentials.cpp — see bootstrap_credentials.h.
#include "control/bootstrap_credentials.h"

#include "common/files.h"
#include "control/support.h"
#include "jwt/jwk.h"

namespace mg::control {

Result<std::unique_ptr<BootstrapCredentials>> BootstrapCredentials::open(const BootstrapOptions& options,
                                                                         telemetry::Registry& metrics) {
  std::unique_ptr<BootstrapCredentials> out(new BootstrapCredentials(options, metrics));
  const std::string token_key_path = options.data_dir + "/token-key.pem";
  if (!options.token_key_pem.empty()) {
    auto key = crypto::parse_private_key_pem(options.token_key_pem);
    if (!key) return fail(key.error());
    out->token_key_ = std::move(*key);
  } else if (files::exists(token_key_path)) {
    if (auto st = files::check_private_key_permissions(token_key_path); !st) return fail(st.error());
    auto pem = files::read_file(token_key_path);
    if (!pem) return fail(pem.error());
    auto key = crypto::parse_private_key_pem(*pem);
    if (!key) return fail(key.error());
    out->token_key_ = std::move(*key);
  } else {
    auto key = crypto::generate_key(crypto::KeyType::EcP256);
    if (!key) return fail(key.error());
    if (auto st = files::write_file_atomic(token_key_path, crypto::private_key_to_pem(key->get()), 0600); !st)
      return fail(st.error());
    out->token_key_ = std::move(*key);
  }

  if (!options.k8s_issuer.empty() || !options.k8s_jwks_file.empty()) {
    if (options.k8s_issuer.empty() || options.k8s_jwks_file.empty())
      return fail("control.k8s", "--k8s-issuer and --k8s-jwks go together");
    auto text = files::read_file(options.k8s_jwks_file);
    if (!text) return fail(text.error());
    auto jwks = jwt::parse_jwks(*text);
    if (!jwks) return fail("control.k8s", options.k8s_jwks_file + ": " + jwks.error().message);
    MutexLock lock(out->k8s_mutex_);
    out->k8s_ = ServiceAccountIssuer{options.k8s_issuer, options.k8s_audience,
                                     std::make_shared<const jwt::Jwks>(std::move(*jwks))};
    out->k8s_jwks_text_ = std::move(*text);
  }
  return out;
}

Result<std::string> BootstrapCredentials::mint(const BootstrapClaims& claims) const {
  return mint_bootstrap_token(token_key_.get(), options_.issuer, claims);
}

Result<BootstrapClaims> BootstrapCredentials::verify(std::string_view token, int64_t now,
                                                     std::string* how) const {
  auto claims = verify_bootstrap_token(token, token_key_.get(), options_.issuer, now);
  if (claims) return claims;
  std::optional<ServiceAccountIssuer> k8s;
  {
    // The keys are replaced when the JWKS file changes: verify with a copy taken under the lock.
    MutexLock lock(k8s_mutex_);
    k8s = k8s_;
  }
  if (!k8s) return claims;
  auto sa = verify_service_account_token(token, *k8s, now);
  if (!sa)
    return fail(sa.error().code,
                claims.error().message + "; as a service-account token: " + sa.error().message);
  *how = "k8s-token";
  return sa;
}

void BootstrapCredentials::reload_k8s_jwks() {
  if (options_.k8s_jwks_file.empty()) return;
  auto text = files::read_file(options_.k8s_jwks_file);
  MutexLock lock(k8s_mutex_);
  if (!k8s_) return;
  // k8s_jwks_text_ doubles as "what was last seen": a read error is reported once, not every pass.
  // (A NUL first: no JSON file's content.)
  const std::string seen = text ? *text : std::string(1, '\0') + "unreadable: " + text.error().to_string();
  if (seen == k8s_jwks_text_) return;
  k8s_jwks_text_ = seen;
  if (!text) {
    metrics_.counter("meshguard_config_reload_total", {{"resource", "k8s_jwks"}, {"result", "error"}}).inc();
    log_line("Kubernetes JWKS " + options_.k8s_jwks_file +
             " cannot be read, keeping the previous keys: " + text.error().to_string());
    return;
  }
  auto jwks = jwt::parse_jwks(*text);
  metrics_
      .counter("meshguard_config_reload_total",
               {{"resource", "k8s_jwks"}, {"result", jwks ? "success" : "error"}})
      .inc();
  if (!jwks) {
    log_line("Kubernetes JWKS " + options_.k8s_jwks_file +
             " does not parse, keeping the previous keys: " + jwks.error().message);
    return;
  }
  log_line("Kubernetes JWKS " + options_.k8s_jwks_file + " reloaded: " + std::to_string(jwks->keys.size()) +
           " key(s)");
  k8s_->keys = std::make_shared<const jwt::Jwks>(std::move(*jwks));
}

}  // namespace mg::control
