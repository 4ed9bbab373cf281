#include "policy/match.h"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <cstring>

namespace mg::policy {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equal_chars(std::string_view a, std::string_view b, bool ignore_case) {
  return ignore_case ? iequals(a, b) : a == b;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool StringMatch::matches(std::string_view candidate) const {
  switch (kind) {
    case MatchKind::Exact:
      return equal_chars(candidate, value, ignore_case);
    case MatchKind::Prefix:
      return candidate.size() >= value.size() &&
             equal_chars(candidate.substr(0, value.size()), value, ignore_case);
    case MatchKind::Suffix:
      return candidate.size() >= value.size() &&
             equal_chars(candidate.substr(candidate.size() - value.size()), value, ignore_case);
    case MatchKind::Presence:
      return !candidate.empty();
  }
  return false;
}

Result<StringMatch> parse_string_match(std::string_view text, bool ignore_case) {
  if (text.empty()) return fail("policy.bad_value", "empty string value");
  StringMatch m;
  m.ignore_case = ignore_case;
  if (text == "*") {
    m.kind = MatchKind::Presence;
    return m;
  }
  const size_t stars = static_cast<size_t>(std::count(text.begin(), text.end(), '*'));
  if (stars == 0) {
    m.kind = MatchKind::Exact;
    m.value = std::string(text);
  } else if (stars == 1 && text.back() == '*') {
    m.kind = MatchKind::Prefix;
    m.value = std::string(text.substr(0, text.size() - 1));
  } else if (stars == 1 && text.front() == '*') {
    m.kind = MatchKind::Suffix;
    m.value = std::string(text.substr(1));
  } else {
    return fail("policy.bad_value", "\"" + std::string(text) +
                                        "\": `*` is only allowed once, at the start or the end");
  }
  return m;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress ip;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, ip.bytes.data()) != 1) return std::nullopt;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, 12) == 0) {
    IpAddress v4;
    std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
    return v4;
  }
  ip.v6 = true;
  return ip;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.v6 != base.v6) return false;
  int remaining = prefix_len;
  for (size_t i = 0; remaining > 0; ++i, remaining -= 8) {
    const uint8_t mask = remaining >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - remaining));
    if ((ip.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
  }
  return true;
}

Result<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  auto ip = parse_ip(text.substr(0, slash));
  if (!ip) return fail("policy.bad_cidr", "\"" + std::string(text) + "\" is not an IP address or CIDR");
  Cidr c;
  c.base = *ip;
  const int max_len = ip->v6 ? 128 : 32;
  c.prefix_len = max_len;
  if (slash != std::string_view::npos) {
    const auto len = text.substr(slash + 1);
    int value = -1;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), value);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || value < 0 ||
        value > max_len) {
      return fail("policy.bad_cidr", "\"" + std::string(text) + "\" has a bad prefix length");
    }
    c.prefix_len = value;
  }
  return c;
}

Result<uint32_t> parse_port(std::string_view text) {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 5 || ec != std::errc() || end != text.data() + text.size() ||
      value > 65535) {
    return fail("policy.bad_port", "\"" + std::string(text) + "\" is not a port (0-65535)");
  }
  return value;
}

std::vector<std::string> principals_for_trust_domains(const std::vector<std::string>& principals,
                                                      const std::string& trust_domain,
                                                      const std::vector<std::string>& aliases) {
  std::vector<std::string_view> domains{trust_domain};
  domains.insert(domains.end(), aliases.begin(), aliases.end());
  // A trust domain written in a policy names `domain` exactly or as a `*suffix` pattern.
  auto names = [](std::string_view written, std::string_view domain) {
    return written == domain || (written.starts_with('*') && domain.ends_with(written.substr(1)));
  };
  std::vector<std::string> out;
  auto add = [&out](std::string value) {
    if (std::find(out.begin(), out.end(), value) == out.end()) out.push_back(std::move(value));
  };
  for (const auto& principal : principals) {
    const size_t td_end = principal.find('/');
    const bool five_parts = std::count(principal.begin(), principal.end(), '/') == 4;
    const std::string_view written = std::string_view(principal).substr(0, td_end);
    const bool ours =
        written == "cluster.local" ||
        std::any_of(domains.begin(), domains.end(), [&](std::string_view d) { return names(written, d); });
    if (!five_parts || written == "*" || !ours) {
      add(principal);
      continue;
    }
    const std::string_view rest = std::string_view(principal).substr(td_end);  // "/ns/<ns>/sa/<sa>"
    for (std::string_view domain : domains)
      add(names(written, domain) ? principal : std::string(domain) + std::string(rest));
  }
  return out;
}

}  // namespace mg::policy
