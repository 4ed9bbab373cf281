#include "identity/spiffe_id.h"

namespace mg::identity {

namespace {

constexpr std::string_view kScheme = "spiffe://";

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_td_char(char c) { return is_lower_alnum(c) || c == '.' || c == '-' || c == '_'; }
bool is_path_char(char c) { return is_td_char(c) || is_upper(c); }

// Quotes a bounded, printable excerpt of untrusted input for an error message.
std::string quote(std::string_view s) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* digits = "0123456789abcdef";
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 0xf];
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

// '%', '?' and '#' are refused anywhere; the first one found decides the error.
Status check_uri_delimiters(std::string_view s) {
  size_t pos = s.find_first_of("%?#");
  if (pos == std::string_view::npos) return {};
  switch (s[pos]) {
    case '%': return fail("spiffe.percent_encoded", "SPIFFE ID must not contain percent-encoding ('%')");
    case '?': return fail("spiffe.query", "SPIFFE ID must not contain a query ('?')");
    default: return fail("spiffe.fragment", "SPIFFE ID must not contain a fragment ('#')");
  }
}

Status check_trust_domain(std::string_view td) {
  if (td.empty()) return fail("spiffe.empty_trust_domain", "SPIFFE ID trust domain is empty");
  if (td.find('@') != std::string_view::npos)
    return fail("spiffe.userinfo", "SPIFFE ID must not contain userinfo ('user@') in the trust domain");
  if (td.find(':') != std::string_view::npos)
    return fail("spiffe.port", "SPIFFE ID trust domain must not contain a port (':')");
  if (td.size() > kMaxTrustDomainBytes)
    return fail("spiffe.trust_domain_too_long",
                "SPIFFE trust domain is " + std::to_string(td.size()) + " bytes; the maximum is 255");
  for (char c : td) {
    if (is_td_char(c)) continue;
    if (is_upper(c))
      return fail("spiffe.uppercase_trust_domain",
                  "SPIFFE trust domain " + quote(td) + " has an upper-case letter; trust domains are lower case");
    return fail("spiffe.bad_trust_domain_char",
                "SPIFFE trust domain " + quote(td) + " has a character outside [a-z0-9._-]");
  }
  return {};
}

Status check_path(std::string_view path) {
  if (path.empty()) return {};
  // Callers hand over everything from the first '/' on.
  if (path.back() == '/') return fail("spiffe.trailing_slash", "SPIFFE ID must not end with '/'");
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg.empty()) return fail("spiffe.empty_segment", "SPIFFE ID path has an empty segment ('//')");
    if (seg == "." || seg == "..")
      return fail("spiffe.dot_segment", "SPIFFE ID path must not contain '.' or '..' segments");
    for (char c : seg) {
      if (!is_path_char(c))
        return fail("spiffe.bad_path_char",
                    "SPIFFE ID path segment " + quote(seg) + " has a character outside [a-zA-Z0-9._-]");
    }
    start = end + 1;
  }
  return {};
}

}  // namespace

Status validate_trust_domain(std::string_view trust_domain) {
  if (auto st = check_uri_delimiters(trust_domain); !st) return st;
  if (trust_domain.find('/') != std::string_view::npos)
    return fail("spiffe.bad_trust_domain_char", "SPIFFE trust domain " + quote(trust_domain) + " contains '/'");
  return check_trust_domain(trust_domain);
}

Result<SpiffeId> SpiffeId::parse(std::string_view uri) {
  if (uri.empty()) return fail("spiffe.empty", "SPIFFE ID is empty");
  if (uri.size() > kMaxSpiffeIdBytes)
    return fail("spiffe.too_long",
                "SPIFFE ID is " + std::to_string(uri.size()) + " bytes; the maximum is 2048");
  if (uri.substr(0, kScheme.size()) != kScheme)
    return fail("spiffe.bad_scheme", "SPIFFE ID " + quote(uri) + " must start with 'spiffe://' (lower case)");
  std::string_view rest = uri.substr(kScheme.size());
  if (auto st = check_uri_delimiters(rest); !st) return fail(st.error());
  size_t slash = rest.find('/');
  std::string_view td = rest.substr(0, slash);
  if (auto st = check_trust_domain(td); !st) return fail(st.error());
  if (slash != std::string_view::npos) {
    if (auto st = check_path(rest.substr(slash)); !st) return fail(st.error());
  }
  return SpiffeId(std::string(uri), td.size());
}

Result<SpiffeId> SpiffeId::from_istio_principal(std::string_view principal) {
  auto id = parse(std::string(kScheme) + std::string(principal));
  if (!id) return id;
  if (!id->istio_namespace())
    return fail("spiffe.not_istio_principal",
                "principal " + quote(principal) + " is not of the form <trust-domain>/ns/<namespace>/sa/<account>");
  return id;
}

Result<SpiffeId> SpiffeId::istio(std::string_view trust_domain, std::string_view ns, std::string_view sa) {
  std::string uri(kScheme);
  uri.append(trust_domain).append("/ns/").append(ns).append("/sa/").append(sa);
  auto id = parse(uri);
  if (!id) return id;
  // A '/' inside ns or sa would parse as a longer, differently shaped path.
  if (id->istio_namespace() != ns || id->istio_service_account() != sa)
    return fail("spiffe.not_istio_principal", "namespace and service account must be single path segments");
  return id;
}

namespace {
// Splits "/ns/<ns>/sa/<sa>" into its two names; anything else is not Istio's form.
std::optional<std::pair<std::string_view, std::string_view>> istio_parts(std::string_view path) {
  constexpr std::string_view kNs = "/ns/";
  if (path.substr(0, kNs.size()) != kNs) return std::nullopt;
  std::string_view rest = path.substr(kNs.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view ns = rest.substr(0, slash);
  rest = rest.substr(slash);
  constexpr std::string_view kSa = "/sa/";
  if (rest.substr(0, kSa.size()) != kSa) return std::nullopt;
  std::string_view sa = rest.substr(kSa.size());
  if (ns.empty() || sa.empty() || sa.find('/') != std::string_view::npos) return std::nullopt;
  return std::make_pair(ns, sa);
}
}  // namespace

std::optional<std::string_view> SpiffeId::istio_namespace() const {
  auto parts = istio_parts(path());
  if (!parts) return std::nullopt;
  return parts->first;
}

std::optional<std::string_view> SpiffeId::istio_service_account() const {
  auto parts = istio_parts(path());
  if (!parts) return std::nullopt;
  return parts->second;
}

}  // namespace mg::identity
