// control/etcd_keys.cpp — see etcd_keys.h.
#include "control/etcd_keys.h"

#include <array>
#include <charconv>

#include <nlohmann/json.hpp>

namespace mg::control {

namespace {

Status check_endpoint(std::string_view e) {
  const auto bad = [&](const std::string& why) {
    return fail(StoreError::Url, "etcd endpoint \"" + std::string(e) + "\": " + why);
  };
  if (e.empty()) return bad("empty (a stray comma?)");
  std::string_view host, port;
  if (e.front() == '[') {
    const auto close = e.find(']');
    if (close == std::string_view::npos || close + 1 >= e.size() || e[close + 1] != ':')
      return bad("expected [IPv6]:PORT");
    host = e.substr(1, close - 1);
    port = e.substr(close + 2);
  } else {
    const auto colon = e.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT");
    host = e.substr(0, colon);
    port = e.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("an IPv6 address goes in brackets: [addr]:PORT");
  }
  if (host.empty()) return bad("no host");
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == ':' || c == '_';
    if (!ok) return bad("unexpected character in the host");
  }
  int n = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 1 || n > 65535)
    return bad("the port must be 1..65535");
  return {};
}

}  // namespace

bool is_etcd_url(std::string_view store) { return store.starts_with("etcd://"); }

Result<std::vector<std::string>> parse_etcd_url(std::string_view url) {
  if (!is_etcd_url(url))
    return fail(StoreError::Url, "--store \"" + std::string(url) + "\": expected etcd://HOST:PORT[,HOST:PORT...]");
  std::string_view rest = url.substr(7);
  if (rest.find_first_of("/?#@") != std::string_view::npos)
    return fail(StoreError::Url, "--store \"" + std::string(url) +
                                     "\": only HOST:PORT[,HOST:PORT...] after etcd:// (TLS files are --etcd-* flags)");
  std::vector<std::string> out;
  while (true) {
    const auto comma = rest.find(',');
    const auto one = rest.substr(0, comma);
    if (auto st = check_endpoint(one); !st) return fail(st.error());
    out.emplace_back(one);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

Status check_etcd_prefix(std::string_view prefix) {
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() != '/' || prefix.find("//") != std::string_view::npos)
    return fail(StoreError::Url, "--etcd-prefix \"" + std::string(prefix) +
                                     "\": must start and end with '/' and have no empty segment, e.g. /meshguard/");
  return {};
}

Status check_etcd_tls(const EtcdOptions& o) {
  if (o.cert_file.empty() != o.key_file.empty())
    return fail(StoreError::Url, "--etcd-cert and --etcd-key go together");
  if (!o.cert_file.empty() && o.ca_file.empty())
    return fail(StoreError::Url, "a client certificate to etcd (--etcd-cert) needs --etcd-cacert");
  return {};
}

std::string etcd_prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd's convention for "no end")
}

std::string etcd_resources_prefix(std::string_view prefix) { return std::string(prefix) + "resources/"; }

std::string etcd_resource_key(std::string_view prefix, const ResourceKey& key) {
  return etcd_resources_prefix(prefix) + key.kind + "/" + key.ns + "/" + key.name;
}

namespace {
// `key` past `head` as exactly three '/'-separated parts (any may be empty), or nullopt.
std::optional<std::array<std::string, 3>> three_parts(std::string_view head, std::string_view key) {
  if (!key.starts_with(head)) return std::nullopt;
  std::string_view rest = key.substr(head.size());
  const auto a = rest.find('/');
  if (a == std::string_view::npos) return std::nullopt;
  const auto b = rest.find('/', a + 1);
  if (b == std::string_view::npos || rest.find('/', b + 1) != std::string_view::npos) return std::nullopt;
  return std::array<std::string, 3>{std::string(rest.substr(0, a)),
                                    std::string(rest.substr(a + 1, b - a - 1)),
                                    std::string(rest.substr(b + 1))};
}
}  // namespace

std::optional<ResourceKey> parse_etcd_resource_key(std::string_view prefix, std::string_view key) {
  auto parts = three_parts(etcd_resources_prefix(prefix), key);
  if (!parts) return std::nullopt;
  ResourceKey out{std::move((*parts)[0]), std::move((*parts)[1]), std::move((*parts)[2])};
  if (out.kind.empty() || out.name.empty()) return std::nullopt;
  return out;
}

Status check_etcd_key_parts(const ResourceKey& key) {
  const bool slash = key.kind.find('/') != std::string::npos || key.ns.find('/') != std::string::npos ||
                     key.name.find('/') != std::string::npos;
  if (slash || key.kind.empty() || key.name.empty())
    return fail(StoreError::BadKey, key.str() + ": a kind, namespace or name the etcd key layout cannot hold");
  return {};
}

std::string etcd_registrations_prefix(std::string_view prefix) { return std::string(prefix) + "registrations/"; }

std::string etcd_live_prefix(std::string_view prefix) { return std::string(prefix) + "live/"; }

std::string etcd_live_key(std::string_view prefix, std::string_view replica, std::string_view ns,
                          std::string_view name) {
  return etcd_live_prefix(prefix) + std::string(replica) + "/" + std::string(ns) + "/" + std::string(name);
}

std::optional<LiveKey> parse_etcd_live_key(std::string_view prefix, std::string_view key) {
  auto parts = three_parts(etcd_live_prefix(prefix), key);
  if (!parts) return std::nullopt;
  LiveKey out{std::move((*parts)[0]), std::move((*parts)[1]), std::move((*parts)[2])};
  if (out.replica.empty() || out.ns.empty() || out.name.empty()) return std::nullopt;
  return out;
}

std::string etcd_shared_key(std::string_view prefix, std::string_view name) {
  return std::string(prefix) + "shared/" + std::string(name);
}

std::string encode_etcd_resource(std::string_view yaml, int64_t updated_unix) {
  return nlohmann::json{{"yaml", std::string(yaml)}, {"updatedUnix", updated_unix}}.dump();
}

Result<StoredResource> decode_etcd_resource(const ResourceKey& key, std::string_view value, int64_t mod_revision) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("yaml") || !j["yaml"].is_string() ||
      (j.contains("updatedUnix") && !j["updatedUnix"].is_number_integer()))
    return fail(StoreError::BadStored, "stored " + key.str() + ": not a meshguard resource value");
  StoredResource r;
  r.key = key;
  r.yaml = j["yaml"].get<std::string>();
  r.revision = mod_revision;
  r.updated_unix = j.value("updatedUnix", int64_t{0});
  return r;
}

std::string encode_etcd_registration(const StoredRegistration& r) {
  return nlohmann::json{{"record", r.record},
                        {"connected", r.connected},
                        {"healthy", r.healthy},
                        {"lastSeenUnix", r.last_seen_unix}}
      .dump();
}

Result<StoredRegistration> decode_etcd_registration(std::string_view key, std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("record") || !j["record"].is_string())
    return fail(StoreError::BadStored, "stored registration " + std::string(key) + ": not a meshguard registration");
  StoredRegistration r;
  r.key = std::string(key);
  r.record = j["record"].get<std::string>();
  const auto flag = [&](const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  r.connected = flag("connected");
  r.healthy = flag("healthy");
  auto seen = j.find("lastSeenUnix");
  r.last_seen_unix = seen != j.end() && seen->is_number_integer() ? seen->get<int64_t>() : 0;
  return r;
}

}  // namespace mg::control
