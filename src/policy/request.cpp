#include "policy/request.h"

#include <nlohmann/json.hpp>

#include "policy/match.h"

namespace mg::policy {

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

std::string_view strip_spiffe(std::string_view principal) {
  constexpr std::string_view kScheme = "spiffe://";
  if (principal.size() >= kScheme.size() && iequals(principal.substr(0, kScheme.size()), kScheme)) {
    return principal.substr(kScheme.size());
  }
  return principal;
}

std::string_view principal_namespace(std::string_view principal) {
  const auto at = principal.find("/ns/");
  if (at == std::string_view::npos) return {};
  auto rest = principal.substr(at + 4);
  return rest.substr(0, rest.find('/'));
}

namespace {

using Json = nlohmann::json;

Unexpected<Error> bad(const std::string& where, const std::string& why) {
  return fail("request.invalid", where + ": " + why);
}

// Checks that `obj` is an object whose keys are all in `allowed`.
Status check_object(const Json& obj, const std::string& where, std::initializer_list<std::string_view> allowed) {
  if (!obj.is_object()) return bad(where, "must be an object");
  for (const auto& item : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      return bad(where, "unknown field \"" + item.key() + "\"");
    }
  }
  return {};
}

Status get_string(const Json& obj, const char* key, const std::string& where, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_string()) return bad(where + "." + key, "must be a string");
  out = it->get<std::string>();
  return {};
}

Status get_string_map(const Json& obj, const char* key, const std::string& where,
                      std::map<std::string, std::string>& out, bool lower_keys) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (!it->is_object()) return bad(where + "." + key, "must be an object of strings");
  for (const auto& item : it->items()) {
    if (!item.value().is_string()) return bad(where + "." + key + "." + item.key(), "must be a string");
    std::string name = item.key();
    if (lower_keys) {
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (!out.emplace(name, item.value().get<std::string>()).second) {
      return bad(where + "." + key, "duplicate key \"" + name + "\"");
    }
  }
  return {};
}

Status check_ip(const std::string& value, const std::string& where) {
  if (!value.empty() && !parse_ip(value)) return bad(where, "\"" + value + "\" is not an IP address");
  return {};
}

}  // namespace

Result<Request> parse_request_json(std::string_view text) {
  const Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("request.bad_json", "request: not valid JSON");
  Request r;
  if (auto s = check_object(doc, "request", {"destination", "source", "request", "time", "connection"}); !s) {
    return fail(s.error());
  }
  // destination
  auto dest = doc.find("destination");
  if (dest == doc.end()) return bad("destination", "is required");
  if (auto s = check_object(*dest, "destination", {"namespace", "labels", "serviceAccount", "ip", "port"}); !s) {
    return fail(s.error());
  }
  for (auto s : {get_string(*dest, "namespace", "destination", r.destination_namespace),
                 get_string(*dest, "serviceAccount", "destination", r.destination_service_account),
                 get_string(*dest, "ip", "destination", r.destination_ip),
                 get_string_map(*dest, "labels", "destination", r.destination_labels, false),
                 check_ip(r.destination_ip, "destination.ip")}) {
    if (!s) return fail(s.error());
  }
  if (r.destination_namespace.empty()) return bad("destination.namespace", "is required");
  auto port = dest->find("port");
  if (port == dest->end()) return bad("destination.port", "is required");
  if (!port->is_number_unsigned() || port->get<uint64_t>() < 1 || port->get<uint64_t>() > 65535) {
    return bad("destination.port", "must be an integer 1-65535");
  }
  r.destination_port = static_cast<uint32_t>(port->get<uint64_t>());
  // source
  if (auto src = doc.find("source"); src != doc.end()) {
    if (auto s = check_object(*src, "source", {"principal", "ip"}); !s) return fail(s.error());
    std::string principal;
    for (auto s : {get_string(*src, "principal", "source", principal), get_string(*src, "ip", "source", r.source_ip),
                   check_ip(r.source_ip, "source.ip")}) {
      if (!s) return fail(s.error());
    }
    if (src->contains("principal")) {
      r.source_principal = std::string(strip_spiffe(principal));
      if (r.source_principal.empty()) return bad("source.principal", "must not be empty (omit it for plaintext)");
    }
  }
  if (auto conn = doc.find("connection"); conn != doc.end()) {
    if (auto s = check_object(*conn, "connection", {"sni"}); !s) return fail(s.error());
    if (auto s = get_string(*conn, "sni", "connection", r.sni); !s) return fail(s.error());
  }
  // request (HTTP)
  if (auto req = doc.find("request"); req != doc.end()) {
    if (auto s = check_object(*req, "request", {"method", "path", "host", "headers"}); !s) return fail(s.error());
    HttpRequest http;
    std::map<std::string, std::string> headers;
    for (auto s : {get_string(*req, "method", "request", http.method), get_string(*req, "path", "request", http.path),
                   get_string(*req, "host", "request", http.host),
                   get_string_map(*req, "headers", "request", headers, true)}) {
      if (!s) return fail(s.error());
    }
    if (http.method.empty()) return bad("request.method", "is required");
    if (!req->contains("path")) return bad("request.path", "is required");
    for (auto& [k, v] : headers) http.headers.emplace_back(k, std::move(v));
    if (http.host.empty()) {
      if (const auto* h = http.header("host")) http.host = *h;
    }
    r.http = std::move(http);
  }
  if (auto t = doc.find("time"); t != doc.end()) {
    if (!t->is_number_integer()) return bad("time", "must be an integer (unix seconds)");
    r.time = t->get<int64_t>();
  }
  return r;
}

}  // namespace mg::policy
