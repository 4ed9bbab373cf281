// policy/match.h — the value matchers of Istio security policies: string patterns
// (exact, `prefix*`, `*suffix`, `*` = present and non-empty), IP addresses and CIDR blocks
// (v4 and v6), ports. Parsing validates exactly as the resource parser must; matching is
// allocation-free.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mg::policy {

enum class MatchKind : uint8_t { Exact, Prefix, Suffix, Presence };

struct StringMatch {
  MatchKind kind = MatchKind::Exact;
  std::string value;  // without the `*`
  bool ignore_case = false;

  // A value that is absent never matches; Presence needs a non-empty value.
  bool matches(std::string_view candidate) const;
};

// Validates an Istio string value: non-empty, `*` only as its first or last character (one `*`).
Result<StringMatch> parse_string_match(std::string_view text, bool ignore_case = false);

bool iequals(std::string_view a, std::string_view b);

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4
};

// Parses a literal IPv4 or IPv6 address; `::ffff:a.b.c.d` is taken as the IPv4 address.
std::optional<IpAddress> parse_ip(std::string_view text);

struct Cidr {
  IpAddress base;
  int prefix_len = 0;
  bool contains(const IpAddress& ip) const;
};

// "10.0.0.1" (a single host) or "10.0.0.0/8", "2001:db8::/32". Host bits set below the prefix
// are accepted and masked, as Envoy's CidrRange does.
Result<Cidr> parse_cidr(std::string_view text);

// A port number 0..65535 written in decimal.
Result<uint32_t> parse_port(std::string_view text);

// Istio's trust-domain rule for policy principals written `<td>/ns/<ns>/sa/<sa>` (exactly five
// '/'-separated parts). When <td> is "cluster.local" (a name for "this mesh", whatever its trust
// domain) or names `trust_domain` or one of `aliases` (exactly, or as a `*suffix` pattern), the
// principal stands for that namespace and service account in every one of them: it is replaced by
// one principal per trust domain, first `trust_domain`, then the aliases in order (a pattern that
// matches one is kept as written). A `*` trust domain, any other shape and other trust domains are
// kept as written. Run once when a policy is compiled, for principals, notPrincipals and
// source.principal conditions alike.
std::vector<std::string> principals_for_trust_domains(const std::vector<std::string>& principals,
                                                      const std::string& trust_domain,
                                                      const std::vector<std::string>& aliases);

}  // namespace mg::policy
