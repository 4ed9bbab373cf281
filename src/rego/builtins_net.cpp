// rego/builtins_net.cpp — net.cidr_contains / cidr_intersects / cidr_is_valid /
// cidr_contains_matches with Go's net.ParseCIDR / ParseIP rules (IPv4 without leading zeros,
// IPv4 addresses also match as IPv4-mapped IPv6). Pure parsing: no name resolution.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "rego/builtins_util.h"

namespace mg::rego {
namespace {

using bi::Args;
using bi::want;

struct Ip {
  std::array<unsigned char, 16> bytes{};
  size_t len = 0;  // 4 or 16
};

struct Net {
  Ip ip;  // the network address (masked)
  int prefix = 0;
};

std::optional<Ip> parse_ip(std::string_view s) {
  const std::string text(s);
  Ip ip;
  if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) {
    ip.len = 4;
    return ip;
  }
  if (text.find(':') != std::string::npos && inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) {
    ip.len = 16;
    return ip;
  }
  return std::nullopt;
}

// ip.To4(): IPv4, or the IPv4 inside an IPv4-mapped IPv6 address.
std::optional<Ip> to4(const Ip& ip) {
  if (ip.len == 4) return ip;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, 12) != 0) return std::nullopt;
  Ip out;
  out.len = 4;
  std::memcpy(out.bytes.data(), ip.bytes.data() + 12, 4);
  return out;
}

std::optional<Net> parse_cidr(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parse_ip(s.substr(0, slash));
  const std::string_view bits = s.substr(slash + 1);
  if (!ip || bits.empty() || bits.size() > 3 ||
      bits.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  const int prefix = std::stoi(std::string(bits));
  if (prefix > static_cast<int>(ip->len * 8)) return std::nullopt;
  Net n{*ip, prefix};
  for (size_t i = 0; i < ip->len; ++i) {
    const int keep = std::clamp(prefix - static_cast<int>(i * 8), 0, 8);
    n.ip.bytes[i] &= static_cast<unsigned char>(0xFF << (8 - keep));
  }
  return n;
}

bool contains(const Net& n, const Ip& addr) {
  Ip ip = addr;
  if (auto v4 = to4(ip)) ip = *v4;
  if (ip.len != n.ip.len) return false;
  for (size_t i = 0; i < ip.len; ++i) {
    const int keep = std::clamp(n.prefix - static_cast<int>(i * 8), 0, 8);
    const auto mask = static_cast<unsigned char>(0xFF << (8 - keep));
    if ((ip.bytes[i] & mask) != n.ip.bytes[i]) return false;
  }
  return true;
}

Ip last_address(const Net& n) {
  Ip last = n.ip;
  for (size_t i = 0; i < last.len; ++i) {
    const int keep = std::clamp(n.prefix - static_cast<int>(i * 8), 0, 8);
    last.bytes[i] |= static_cast<unsigned char>(~(0xFF << (8 - keep)) & 0xFF);
  }
  return last;
}

BuiltinError invalid_cidr(const std::string& s) {
  return BuiltinError::builtin("invalid CIDR address: " + s);
}

// A CIDR operand (Go: net.ParseCIDR).
std::optional<BuiltinError> cidr_operand(Args a, int pos, Net& out) {
  if (auto e = want(a, pos, Kind::String)) return e;
  const std::string& s = a[static_cast<size_t>(pos - 1)].as_string();
  auto n = parse_cidr(s);
  if (!n) return invalid_cidr(s);
  out = *n;
  return std::nullopt;
}

// Whether `outer` contains `inner`, an IP or a CIDR (OPA: an address first, else a network whose
// first and last addresses are both inside).
std::optional<bool> contains_ip_or_cidr(const Net& outer, const std::string& inner) {
  if (auto ip = parse_ip(inner)) return contains(outer, *ip);
  auto n = parse_cidr(inner);
  if (!n) return std::nullopt;
  return contains(outer, n->ip) && contains(outer, last_address(*n));
}

BuiltinResult cidr_contains(Args a, BuiltinContext&) {
  Net outer;
  if (auto e = cidr_operand(a, 1, outer)) return *e;
  if (auto e = want(a, 2, Kind::String)) return *e;
  auto r = contains_ip_or_cidr(outer, a[1].as_string());
  if (!r) return invalid_cidr(a[1].as_string());
  return Value::boolean(*r);
}

BuiltinResult cidr_intersects(Args a, BuiltinContext&) {
  Net x, y;
  if (auto e = cidr_operand(a, 1, x)) return *e;
  if (auto e = cidr_operand(a, 2, y)) return *e;
  return Value::boolean(contains(x, y.ip) || contains(y, x.ip));
}

BuiltinResult cidr_is_valid(Args a, BuiltinContext&) {
  return Value::boolean(a[0].is_string() && parse_cidr(a[0].as_string()).has_value());
}

// The (key, CIDR-or-IP string) pairs of a cidr_contains_matches operand: a string, or an
// array / set / object whose elements are strings or arrays starting with a string.
std::optional<BuiltinError> match_operand(Args a, int pos, std::vector<std::pair<Value, std::string>>& out) {
  const Value& v = a[static_cast<size_t>(pos - 1)];
  auto element = [&](const Value& key, const Value& e) -> std::optional<BuiltinError> {
    if (e.is_string()) {
      out.emplace_back(key, e.as_string());
    } else if (e.is_array() && !e.as_array().empty() && e.as_array()[0].is_string()) {
      out.emplace_back(key, e.as_array()[0].as_string());
    } else {
      return BuiltinError::type("operand " + std::to_string(pos) +
                                " must be one of {string, array} but got " + e.type_name());
    }
    return std::nullopt;
  };
  switch (v.kind()) {
    case Kind::String:
      out.emplace_back(v, v.as_string());
      return std::nullopt;
    case Kind::Array:
      for (size_t i = 0; i < v.as_array().size(); ++i)
        if (auto e = element(Value::number(static_cast<int64_t>(i)), v.as_array()[i])) return e;
      return std::nullopt;
    case Kind::Set:
      for (const Value& e : v.as_set())
        if (auto err = element(e, e)) return err;
      return std::nullopt;
    case Kind::Object:
      for (const auto& [k, e] : v.as_object())
        if (auto err = element(k, e)) return err;
      return std::nullopt;
    default:
      return BuiltinError::operand(pos, bi::one_of({"string", "array", "set", "object"}), v);
  }
}

BuiltinResult cidr_contains_matches(Args a, BuiltinContext&) {
  std::vector<std::pair<Value, std::string>> cidrs, addrs;
  if (auto e = match_operand(a, 1, cidrs)) return *e;
  if (auto e = match_operand(a, 2, addrs)) return *e;
  std::vector<Value> out;
  for (const auto& [ck, c] : cidrs) {
    auto net = parse_cidr(c);
    if (!net) return invalid_cidr(c);
    for (const auto& [ak, addr] : addrs) {
      auto r = contains_ip_or_cidr(*net, addr);
      if (!r) return invalid_cidr(addr);
      if (*r) out.push_back(Value::array({ck, ak}));
    }
  }
  return Value::set(std::move(out));
}

}  // namespace

void register_net(Registry& r) {
  const uint8_t S = kStringType;
  r.add({"net.cidr_contains", 2, cidr_contains, false, false, false, {S, S}});
  r.add({"net.cidr_intersects", 2, cidr_intersects, false, false, false, {S, S}});
  r.add({"net.cidr_is_valid", 1, cidr_is_valid, false, false, false, {}});
  r.add({"net.cidr_contains_matches", 2, cidr_contains_matches, false, false, false, {}});
  // Deprecated alias OPA still accepts.
  r.add({"net.cidr_overlap", 2, cidr_contains, false, false, false, {S, S}});
}

}  // namespace mg::rego
