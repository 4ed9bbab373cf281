// identity/spiffe_id.h — SPIFFE IDs (spiffe://<trust-domain>/<path>) and Istio's principal form.
//
// API (pure logic, no I/O):
//   SpiffeId::parse("spiffe://td/ns/x/sa/y")          -> Result<SpiffeId>  (strict SPIFFE rules)
//   SpiffeId::from_istio_principal("td/ns/x/sa/y")    -> Result<SpiffeId>  (must be that shape)
//   SpiffeId::istio("td", "x", "y")                   -> Result<SpiffeId>
//   id.str() "spiffe://td/ns/x/sa/y", id.trust_domain() "td", id.path() "/ns/x/sa/y" ("" for the
//   trust-domain ID), id.principal() "td/ns/x/sa/y" (Istio's source.principal: the ID without
//   "spiffe://", defined for every ID), id.istio_namespace() / id.istio_service_account()
//   (std::nullopt unless the path is exactly /ns/<ns>/sa/<sa>).
//   validate_trust_domain("td") -> Status (same rules and codes as the trust domain of an ID).
//
// Every rule has its own stable error code (tests and logs rely on them):
//   spiffe.empty                  input is empty
//   spiffe.too_long               more than 2048 bytes in total
//   spiffe.bad_scheme             not starting with exactly "spiffe://" (scheme is case-sensitive)
//   spiffe.empty_trust_domain     nothing between "spiffe://" and the path
//   spiffe.trust_domain_too_long  trust domain longer than 255 bytes
//   spiffe.uppercase_trust_domain upper-case letter in the trust domain (never lower-cased for you)
//   spiffe.userinfo               "user@" in the authority
//   spiffe.port                   ":port" in the authority
//   spiffe.bad_trust_domain_char  any other character outside [a-z0-9._-] in the trust domain
//   spiffe.query / spiffe.fragment / spiffe.percent_encoded   '?', '#', '%' anywhere
//   spiffe.trailing_slash         path ends with '/' (including "spiffe://td/")
//   spiffe.empty_segment          "//" inside the path
//   spiffe.dot_segment            a "." or ".." path segment
//   spiffe.bad_path_char          a path character outside [a-zA-Z0-9._-]
//   spiffe.not_istio_principal    from_istio_principal() input not td/ns/<ns>/sa/<sa>
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::identity {

inline constexpr size_t kMaxSpiffeIdBytes = 2048;
inline constexpr size_t kMaxTrustDomainBytes = 255;

Status validate_trust_domain(std::string_view trust_domain);

class SpiffeId {
 public:
  static Result<SpiffeId> parse(std::string_view uri);
  static Result<SpiffeId> from_istio_principal(std::string_view principal);
  static Result<SpiffeId> istio(std::string_view trust_domain, std::string_view ns, std::string_view sa);

  const std::string& str() const { return uri_; }
  std::string_view trust_domain() const { return std::string_view(uri_).substr(kPrefix, td_len_); }
  std::string_view path() const { return std::string_view(uri_).substr(kPrefix + td_len_); }
  std::string_view principal() const { return std::string_view(uri_).substr(kPrefix); }
  bool is_trust_domain_id() const { return path().empty(); }

  std::optional<std::string_view> istio_namespace() const;
  std::optional<std::string_view> istio_service_account() const;

  friend bool operator==(const SpiffeId& a, const SpiffeId& b) { return a.uri_ == b.uri_; }
  friend bool operator<(const SpiffeId& a, const SpiffeId& b) { return a.uri_ < b.uri_; }

 private:
  static constexpr size_t kPrefix = 9;  // strlen("spiffe://")
  SpiffeId(std::string uri, size_t td_len) : uri_(std::move(uri)), td_len_(td_len) {}

  std::string uri_;
  size_t td_len_ = 0;
};

}  // namespace mg::identity
