// control/bootstrap_credentials.h — the keys a proxy's first certificate request is judged with:
// the P-256 key that signs and checks bootstrap tokens (data_dir/token-key.pem, created 0600 on
// first start) and, when configured, a Kubernetes issuer whose service-account tokens are
// accepted too, its JWKS file read again when its content changes (housekeeping). Owns the keys;
// the token format is token.h.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/thread_annotations.h"
#include "control/token.h"
#include "crypto/openssl.h"
#include "telemetry/metrics.h"

namespace mg::control {

struct BootstrapOptions {
  std::string data_dir;
  std::string issuer;  // iss of the bootstrap tokens: the control plane's SPIFFE ID
  std::string k8s_issuer, k8s_jwks_file, k8s_audience;  // all empty: no Kubernetes tokens
  // The token-signing key as PEM when it is kept elsewhere (the etcd store's shared key, which
  // every replica uses); empty: data_dir/token-key.pem.
  std::string token_key_pem;
};

class BootstrapCredentials {
 public:
  static Result<std::unique_ptr<BootstrapCredentials>> open(const BootstrapOptions& options,
                                                            telemetry::Registry& metrics);

  Result<std::string> mint(const BootstrapClaims& claims) const;
  // A bootstrap token, else (when configured) a Kubernetes service-account token; *how is
  // "k8s-token" for the latter and left alone otherwise. The error names both refusals.
  Result<BootstrapClaims> verify(std::string_view token, int64_t now, std::string* how) const
      MG_EXCLUDES(k8s_mutex_);
  // A cluster rotates its service-account signing keys by publishing a new JWKS: the file is read
  // again when its content changes; one that does not parse keeps the keys in use (logged once).
  void reload_k8s_jwks() MG_EXCLUDES(k8s_mutex_);

 private:
  BootstrapCredentials(const BootstrapOptions& options, telemetry::Registry& metrics)
      : options_(options), metrics_(metrics) {}

  const BootstrapOptions options_;
  telemetry::Registry& metrics_;
  crypto::PKeyPtr token_key_;
  mutable Mutex k8s_mutex_;
  std::optional<ServiceAccountIssuer> k8s_ MG_GUARDED_BY(k8s_mutex_);
  // The file's content the keys were last read from (or refused for).
  std::string k8s_jwks_text_ MG_GUARDED_BY(k8s_mutex_);
};

}  // namespace mg::control
