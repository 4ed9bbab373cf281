#include "policy/opa.h"

#include <cctype>

#include "common/time.h"
#include "rego/engine.h"
#include "rego/go_encoding.h"

namespace mg::policy {

const char* to_string(OpaOutcome o) {
  switch (o) {
    case OpaOutcome::Allowed:
      return "allowed";
    case OpaOutcome::Denied:
      return "denied";
    case OpaOutcome::Undefined:
      return "undefined";
    case OpaOutcome::Error:
      return "error";
  }
  return "?";
}

namespace {

using rego::Value;

Value str(std::string_view s) { return Value::string(s); }

void add_if(rego::ObjectItems& items, const char* key, std::string_view value) {
  if (!value.empty()) items.emplace_back(str(key), str(value));
}

// {"socketAddress": {"address": ..., "portValue": ...}} as protojson writes an Envoy Address
// (empty fields left out).
Value socket_address(std::string_view ip, uint32_t port) {
  rego::ObjectItems sa;
  add_if(sa, "address", ip);
  if (port != 0) sa.emplace_back(str("portValue"), Value::number(static_cast<int64_t>(port)));
  return Value::object({{str("socketAddress"), Value::object(std::move(sa))}});
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Go's url.PathUnescape: like QueryUnescape but '+' stays '+'.
Result<std::string> path_unescape(std::string_view in) {
  std::string plus_kept;
  plus_kept.reserve(in.size());
  for (char c : in) {
    if (c == '+')
      plus_kept += "%2B";
    else
      plus_kept += c;
  }
  return rego::go::query_unescape(plus_kept);
}

// input.parsed_path: the decoded path without its leading slashes, split at '/' (as the plugin
// splits url.Parse(path).Path).
Result<Value> parsed_path(std::string_view path) {
  auto decoded = path_unescape(path);
  if (!decoded)
    return fail("opa.bad_path", "the request path does not parse as a URL: " + decoded.error().message);
  std::string_view rest = *decoded;
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  rego::Array segments;
  while (true) {
    const auto slash = rest.find('/');
    segments.push_back(str(rest.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Value::array(std::move(segments));
}

// input.parsed_query: every parameter's decoded values in order (Go's url.ParseQuery; a pair
// that does not decode, or holds a ';', is left out as url.Query() leaves it out).
Value parsed_query(std::string_view query) {
  std::vector<std::pair<std::string, rego::Array>> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty() || pair.find(';') != std::string_view::npos) continue;
    const auto eq = pair.find('=');
    auto key = rego::go::query_unescape(pair.substr(0, eq));
    auto value =
        rego::go::query_unescape(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) continue;
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == *key; });
    if (it == params.end()) {
      params.push_back({std::move(*key), {}});
      it = params.end() - 1;
    }
    it->second.push_back(str(*value));
  }
  rego::ObjectItems items;
  for (auto& [k, v] : params) items.emplace_back(str(k), Value::array(std::move(v)));
  return Value::object(std::move(items));
}

// An array's or a set's items (sorted): OPA hands a plugin its result as JSON, where a set is an
// array, so the plugin takes either wherever it expects a list. Null for any other value.
const std::vector<Value>* list_items(const Value& v) {
  if (v.is_array()) return &v.as_array();
  if (v.is_set()) return &v.as_set();
  return nullptr;
}

bool is_token(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(static_cast<char>(c)) !=
                                      std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Headers a policy may not set: message framing and hop-by-hop fields (setting them would let a
// policy desynchronize the connection, as in request smuggling) and Host (routing).
bool reserved_header(std::string_view lower_name) {
  static constexpr std::string_view kReserved[] = {"content-length", "transfer-encoding", "connection",
                                                   "keep-alive",     "proxy-connection",  "te",
                                                   "trailer",        "upgrade",           "host"};
  for (auto r : kReserved) {
    if (lower_name == r) return true;
  }
  return false;
}

// A `headers`-shaped value: an object of string or string-array values, or an array of such
// objects. An error text for any other shape, for a name that is not an HTTP token or is
// reserved, and for a value holding CR, LF or NUL (response splitting).
std::string read_headers(const Value& v, std::string_view field,
                         std::vector<std::pair<std::string, std::string>>& out) {
  const std::string shape =
      "expected " + std::string(field) + " to be an object of strings (or string arrays), or an array of such objects";
  auto add = [&](const std::string& name, const std::string& value) -> std::string {
    std::string key = lower(name);
    if (!is_token(key)) return std::string(field) + ": \"" + name + "\" is not a valid header name";
    if (reserved_header(key)) return std::string(field) + ": the header " + key + " cannot be set by a policy";
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return std::string(field) + ": the value of " + key + " holds CR, LF or NUL";
    out.emplace_back(std::move(key), value);
    return {};
  };
  auto one_object = [&](const Value& obj) -> std::string {
    if (!obj.is_object()) return shape;
    for (const auto& [k, val] : obj.as_object()) {
      if (!k.is_string()) return shape;
      if (val.is_string()) {
        if (auto e = add(k.as_string(), val.as_string()); !e.empty()) return e;
      } else if (const auto* items = list_items(val)) {
        for (const auto& item : *items) {
          if (!item.is_string()) return shape;
          if (auto e = add(k.as_string(), item.as_string()); !e.empty()) return e;
        }
      } else {
        return shape;
      }
    }
    return {};
  };
  if (const auto* items = list_items(v)) {
    for (const auto& item : *items) {
      if (auto e = one_object(item); !e.empty()) return e;
    }
    return {};
  }
  return one_object(v);
}

OpaEvaluation error_result(std::string why) {
  OpaEvaluation e;
  e.outcome = OpaOutcome::Error;
  e.error = std::move(why);
  return e;
}

}  // namespace

Result<Value> opa_input(const Request& r, const OpaInputContext& c) {
  rego::ObjectItems attributes;

  rego::ObjectItems source;
  source.emplace_back(str("address"), socket_address(r.source_ip, 0));
  if (c.peer_identity && !r.source_principal.empty()) {
    source.emplace_back(str("principal"), str("spiffe://" + r.source_principal));
  }
  attributes.emplace_back(str("source"), Value::object(std::move(source)));

  rego::ObjectItems destination;
  destination.emplace_back(str("address"), socket_address(r.destination_ip, r.destination_port));
  // Envoy reports the local certificate's URI SAN: the workload's own SPIFFE ID, under mTLS.
  if (c.peer_identity && !r.source_principal.empty() && !r.destination_service_account.empty()) {
    destination.emplace_back(
        str("principal"), str("spiffe://" + std::string(c.trust_domain) + "/ns/" + r.destination_namespace +
                              "/sa/" + r.destination_service_account));
  }
  attributes.emplace_back(str("destination"), Value::object(std::move(destination)));

  std::string_view path_only, query;
  rego::ObjectItems request;
  if (c.now > 0)
    request.emplace_back(str("time"), str(timefmt::utc_rfc3339(static_cast<std::time_t>(c.now))));
  if (r.http) {
    const auto& h = *r.http;
    const std::string scheme = r.source_principal.empty() || !c.peer_identity ? "http" : "https";
    // Header names in lower case; repeated headers joined with ',' (Envoy's map form), plus the
    // HTTP/2-style pseudo-headers Envoy includes.
    std::vector<std::pair<std::string, std::string>> headers;
    headers.emplace_back(":authority", h.host);
    headers.emplace_back(":method", h.method);
    headers.emplace_back(":path", h.path);
    headers.emplace_back(":scheme", scheme);
    for (const auto& [name, value] : h.headers) {
      std::string key = lower(name);
      if (key.starts_with(':')) continue;
      auto it = std::find_if(headers.begin(), headers.end(), [&](const auto& p) { return p.first == key; });
      if (it == headers.end())
        headers.emplace_back(std::move(key), value);
      else
        (it->second += ',') += value;
    }
    rego::ObjectItems header_items;
    std::string_view request_id;
    for (const auto& [k, v] : headers) {
      if (k == "x-request-id") request_id = v;
      header_items.emplace_back(str(k), str(v));
    }
    rego::ObjectItems http;
    add_if(http, "id", request_id);
    add_if(http, "method", h.method);
    http.emplace_back(str("headers"), Value::object(std::move(header_items)));
    add_if(http, "path", h.path);
    add_if(http, "host", h.host);
    http.emplace_back(str("scheme"), str(scheme));
    http.emplace_back(str("protocol"), str("HTTP/1.1"));
    request.emplace_back(str("http"), Value::object(std::move(http)));
    path_only = h.path;
    const auto q = path_only.find('?');
    if (q != std::string_view::npos) {
      query = path_only.substr(q + 1);
      path_only = path_only.substr(0, q);
    }
    if (const auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
    if (const auto hash = path_only.find('#'); hash != std::string_view::npos)
      path_only = path_only.substr(0, hash);
  }
  attributes.emplace_back(str("request"), Value::object(std::move(request)));

  // The verified JWT payload where Envoy's jwt_authn filter puts it for Istio (payload_in_metadata
  // "payload"). protojson names the fields metadataContext.filterMetadata; metadata_context.
  // filter_metadata (the proto field names) holds the same document.
  if (c.auth && c.auth->outcome == jwt::RequestAuth::Outcome::Authenticated && c.auth->claims.is_object()) {
    const Value jwt_metadata =
        Value::object({{str("envoy.filters.http.jwt_authn"),
                        Value::object({{str("payload"), Value::from_json(c.auth->claims)}})}});
    attributes.emplace_back(str("metadataContext"), Value::object({{str("filterMetadata"), jwt_metadata}}));
    attributes.emplace_back(str("metadata_context"), Value::object({{str("filter_metadata"), jwt_metadata}}));
  }

  auto path_value = parsed_path(path_only);
  if (!path_value) return fail(path_value.error());
  rego::ObjectItems input;
  input.emplace_back(str("attributes"), Value::object(std::move(attributes)));
  input.emplace_back(str("parsed_path"), std::move(*path_value));
  input.emplace_back(str("parsed_query"), parsed_query(query));
  input.emplace_back(str("parsed_body"), Value::null());  // the proxy does not buffer bodies for OPA
  input.emplace_back(str("truncated_body"), Value::boolean(false));
  input.emplace_back(str("version"),
                     Value::object({{str("encoding"), str("protojson")}, {str("ext_authz"), str("v3")}}));
  // The caller's SPIFFE ID also at the top level (meshguard's input contract, docs/OPA.md), so a
  // policy need not dig into attributes; absent exactly when attributes.source.principal is.
  if (c.peer_identity && !r.source_principal.empty()) {
    input.emplace_back(str("source_principal"), str("spiffe://" + r.source_principal));
  }
  return Value::object(std::move(input));
}

OpaEvaluation interpret_opa_result(const Value& v) {
  OpaEvaluation e;
  if (v.is_bool()) {
    e.outcome = v.as_bool() ? OpaOutcome::Allowed : OpaOutcome::Denied;
    return e;
  }
  if (!v.is_object()) {
    return error_result(std::string("illegal value for policy evaluation result: ") + v.type_name() +
                        " (want a boolean or an object with \"allowed\")");
  }
  const Value* allowed = v.get("allowed");
  if (!allowed) return error_result("unable to determine evaluation result due to missing \"allowed\" key");
  if (!allowed->is_bool()) {
    return error_result(std::string("expected allowed to be of type 'boolean' but got '") +
                        allowed->type_name() + "'");
  }
  e.outcome = allowed->as_bool() ? OpaOutcome::Allowed : OpaOutcome::Denied;
  if (const Value* headers = v.get("headers")) {
    if (auto why = read_headers(*headers, "headers", e.headers); !why.empty()) return error_result(std::move(why));
  }
  if (e.outcome == OpaOutcome::Allowed) {
    if (const Value* add = v.get("response_headers_to_add")) {
      if (auto why = read_headers(*add, "response_headers_to_add", e.response_headers_to_add); !why.empty())
        return error_result(std::move(why));
    }
    if (const Value* remove = v.get("request_headers_to_remove")) {
      const auto* items = list_items(*remove);
      if (!items) return error_result("expected request_headers_to_remove to be an array of strings");
      for (const auto& item : *items) {
        if (!item.is_string())
          return error_result("expected request_headers_to_remove to be an array of strings");
        std::string name = lower(item.as_string());
        if (reserved_header(name) || name.starts_with(':'))
          return error_result("request_headers_to_remove: the header " + name + " cannot be removed by a policy");
        e.request_headers_to_remove.push_back(std::move(name));
      }
    }
    return e;
  }
  if (const Value* body = v.get("body")) {
    if (!body->is_string()) {
      return error_result(std::string("expected body to be of type 'string' but got '") + body->type_name() +
                          "'");
    }
    e.body = body->as_string();
  }
  if (const Value* status = v.get("http_status")) {
    const auto code = status->is_number() ? status->as_int64() : std::nullopt;
    if (!code || *code < 200 || *code > 599) {  // a 1xx local reply would break HTTP framing
      return error_result("invalid HTTP status code " + status->to_json_text());
    }
    e.status = static_cast<int>(*code);
  }
  return e;
}

OpaEvaluation evaluate_opa(const detail::CompiledOpa& policy, const Value& input, int64_t now) {
  rego::EvalOptions options;
  options.input = &input;
  options.max_steps = kOpaMaxSteps;
  options.max_bytes = kOpaMaxBytes;
  options.now_ns = now > 0 ? now * 1'000'000'000 : 0;
  auto result = rego::evaluate_path(*policy.plan, policy.path, options);
  if (!result) {
    const auto& errors = result.error();
    return error_result(errors.empty() ? std::string("evaluation failed") : errors.front().to_string());
  }
  if (!*result) return OpaEvaluation{};  // Undefined
  return interpret_opa_result(**result);
}

bool run_opa_policies(const AuthzSnapshot& s, const Request& r, const OpaInputContext& c, Decision& d) {
  const auto& policies = s.opa_policies();
  if (policies.empty()) return true;
  auto input = opa_input(r, c);
  bool enforced_denied = false;
  for (const auto& p : policies) {
    if (enforced_denied && !p.dry_run) continue;
    OpaEvaluation e = input ? evaluate_opa(p, *input, c.now) : error_result(input.error().message);
    OpaResult result{p.name, e.outcome, p.dry_run, p.allow_on_error, e.error};
    if (e.outcome == OpaOutcome::Error) ++d.opa_errors;
    d.opa.push_back(std::move(result));
    if (p.dry_run) {
      const bool would_deny = e.outcome == OpaOutcome::Denied || e.outcome == OpaOutcome::Undefined ||
                              (e.outcome == OpaOutcome::Error && !p.allow_on_error);
      d.dry_run.push_back({p.name, Action::Deny, would_deny, -1, true});
      continue;
    }
    switch (e.outcome) {
      case OpaOutcome::Allowed:
        for (auto& h : e.headers) d.upstream_headers.push_back(std::move(h));
        for (auto& h : e.response_headers_to_add) d.response_headers.push_back(std::move(h));
        for (auto& h : e.request_headers_to_remove) d.upstream_headers_to_remove.push_back(std::move(h));
        d.policy = p.name;  // the last OPAPolicy that allowed, until a later step decides
        break;
      case OpaOutcome::Error:
        if (p.allow_on_error) {
          d.policy = p.name;
          break;
        }
        enforced_denied = true;
        d.allow = false;
        d.status = r.http ? 403 : 0;
        d.policy = p.name;
        d.reason = ReasonCode::DeniedOpaPolicyError;
        d.detail = e.error;
        break;
      case OpaOutcome::Denied:
      case OpaOutcome::Undefined:
        enforced_denied = true;
        d.allow = false;
        d.status = r.http ? e.status : 0;
        d.policy = p.name;
        d.reason = ReasonCode::DeniedByOpaPolicy;
        d.detail = e.outcome == OpaOutcome::Undefined ? "decision " + p.decision + " is undefined"
                                                      : "decision " + p.decision + " denied the request";
        d.body = std::move(e.body);
        d.response_headers = std::move(e.headers);
        d.upstream_headers.clear();
        d.upstream_headers_to_remove.clear();
        break;
    }
  }
  return !enforced_denied;
}

}  // namespace mg::policy
