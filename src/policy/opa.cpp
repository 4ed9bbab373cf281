#include "policy/opa.h"

#include <cctype>
#include <optional>

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
    if (!is_header_name(key)) return std::string(field) + ": \"" + name + "\" is not a valid header name";
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

bool is_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(static_cast<char>(c)) !=
                                      std::string_view::npos) {
      return false;
    }
  }
  return true;
}

namespace {

// The object keys of the input document, built once: a key is then a reference-count increment.
struct Keys {
  Value attributes = str("attributes"), source = str("source"), destination = str("destination"),
        request = str("request"), address = str("address"), principal = str("principal"), time = str("time"),
        http = str("http"), id = str("id"), method = str("method"), headers = str("headers"),
        path = str("path"), host = str("host"), scheme = str("scheme"), protocol = str("protocol"),
        metadata_context = str("metadataContext"), filter_metadata = str("filterMetadata"),
        metadata_context_proto = str("metadata_context"), filter_metadata_proto = str("filter_metadata"),
        jwt_authn = str("envoy.filters.http.jwt_authn"), payload = str("payload"),
        parsed_path = str("parsed_path"), parsed_query = str("parsed_query"),
        parsed_body = str("parsed_body"), truncated_body = str("truncated_body"), version = str("version"),
        source_principal = str("source_principal"), http11 = str("HTTP/1.1"), http_scheme = str("http"),
        https_scheme = str("https");
  Value version_value = Value::object({{str("encoding"), str("protojson")}, {str("ext_authz"), str("v3")}});
};

const Keys& keys() {
  static const Keys k;
  return k;
}

// Which parts of the input document to build below one node: everything, or the paths
// [begin, end) of an InputUse (sorted, none a prefix of another) that share the `depth` keys
// leading to the node. A part not wanted is left out; a wanted part is built whole, so every
// reference the plans make reads what it would read in the full document.
class Want {
 public:
  Want() = default;  // everything
  explicit Want(const rego::InputUse* use) {
    if (use && !use->whole) {
      paths_ = &use->paths;
      end_ = use->paths.size();
    }
  }
  bool everything() const { return !paths_ || (end_ - begin_ == 1 && (*paths_)[begin_].size() == depth_); }
  // The selection below `key`; nullopt when nothing there is read.
  std::optional<Want> operator[](std::string_view key) const {
    if (everything()) return Want();
    // Paths below a node are sorted by their key at this depth: the ones through `key` are
    // consecutive. Found by equality (lengths first), not by ordering every candidate key.
    size_t b = begin_;
    while (b < end_ && std::string_view((*paths_)[b][depth_]) != key) ++b;
    size_t e = b;
    while (e < end_ && std::string_view((*paths_)[e][depth_]) == key) ++e;
    if (b == e) return std::nullopt;
    Want w;
    w.paths_ = paths_;
    w.begin_ = b;
    w.end_ = e;
    w.depth_ = depth_ + 1;
    return w;
  }
  // The keys wanted right below this node, each once (precondition: !everything()).
  template <class F>
  void each_key(F&& f) const {
    for (size_t i = begin_; i < end_; ++i)
      if (i == begin_ || (*paths_)[i][depth_] != (*paths_)[i - 1][depth_]) f((*paths_)[i][depth_]);
  }

 private:
  const std::vector<std::vector<std::string>>* paths_ = nullptr;
  size_t begin_ = 0, end_ = 0, depth_ = 0;
};

// The value of one header as Envoy's map form holds it (lower-case `key`): a pseudo-header from
// the request line, or every field of that name joined with ','; nullopt when absent.
std::optional<std::string> header_value(const HttpRequest& h, std::string_view scheme, std::string_view key) {
  if (key == ":authority") return h.host;
  if (key == ":method") return h.method;
  if (key == ":path") return h.path;
  if (key == ":scheme") return std::string(scheme);
  if (key.starts_with(':')) return std::nullopt;  // fields named like pseudo-headers are dropped
  std::optional<std::string> out;
  for (const auto& [name, value] : h.headers) {
    if (name.size() != key.size()) continue;
    bool same = true;
    for (size_t i = 0; i < key.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(name[i])) == static_cast<unsigned char>(key[i]);
    if (!same) continue;
    if (out)
      (*out += ',') += value;
    else
      out = value;
  }
  return out;
}

// attributes.request.http.headers: names in lower case, repeated fields joined with ',' (Envoy's
// map form), plus the HTTP/2-style pseudo-headers Envoy includes.
Value headers_object(const HttpRequest& h, std::string_view scheme, const Want& want) {
  rego::ObjectItems items;
  if (!want.everything()) {
    want.each_key([&](const std::string& key) {
      if (auto v = header_value(h, scheme, key)) items.emplace_back(str(key), str(*v));
    });
    return Value::object(std::move(items));
  }
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(4 + h.headers.size());
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
  items.reserve(headers.size());
  for (auto& [k, v] : headers) items.emplace_back(str(k), str(v));
  return Value::object(std::move(items));
}

Value http_object(const Request& r, const OpaInputContext& c, const Want& want) {
  const Keys& k = keys();
  const auto& h = *r.http;
  const bool https = !r.source_principal.empty() && c.peer_identity;
  const std::string_view scheme = https ? "https" : "http";
  rego::ObjectItems http;
  http.reserve(7);  // each object's vector sized once: the fields it can hold
  if (want[k.id.as_string()]) {
    if (auto id = header_value(h, scheme, "x-request-id"); id && !id->empty())
      http.emplace_back(k.id, str(*id));
  }
  if (want[k.method.as_string()] && !h.method.empty()) http.emplace_back(k.method, str(h.method));
  if (auto w = want[k.headers.as_string()]) http.emplace_back(k.headers, headers_object(h, scheme, *w));
  if (want[k.path.as_string()] && !h.path.empty()) http.emplace_back(k.path, str(h.path));
  if (want[k.host.as_string()] && !h.host.empty()) http.emplace_back(k.host, str(h.host));
  if (want[k.scheme.as_string()]) http.emplace_back(k.scheme, https ? k.https_scheme : k.http_scheme);
  if (want[k.protocol.as_string()]) http.emplace_back(k.protocol, k.http11);
  return Value::object(std::move(http));
}

Value attributes_object(const Request& r, const OpaInputContext& c, const Want& want) {
  const Keys& k = keys();
  const bool principals = c.peer_identity && !r.source_principal.empty();
  rego::ObjectItems attributes;
  attributes.reserve(5);
  if (want[k.source.as_string()]) {
    rego::ObjectItems source;
    source.reserve(2);
    source.emplace_back(k.address, socket_address(r.source_ip, 0));
    if (principals) source.emplace_back(k.principal, str("spiffe://" + r.source_principal));
    attributes.emplace_back(k.source, Value::object(std::move(source)));
  }
  if (want[k.destination.as_string()]) {
    rego::ObjectItems destination;
    destination.reserve(2);
    destination.emplace_back(k.address, socket_address(r.destination_ip, r.destination_port));
    // Envoy reports the local certificate's URI SAN: the workload's own SPIFFE ID, under mTLS.
    if (principals && !r.destination_service_account.empty()) {
      destination.emplace_back(
          k.principal, str("spiffe://" + std::string(c.trust_domain) + "/ns/" + r.destination_namespace +
                           "/sa/" + r.destination_service_account));
    }
    attributes.emplace_back(k.destination, Value::object(std::move(destination)));
  }
  if (auto w = want[k.request.as_string()]) {
    rego::ObjectItems request;
    request.reserve(2);
    if (c.now > 0 && (*w)[k.time.as_string()])
      request.emplace_back(k.time, str(timefmt::utc_rfc3339(static_cast<std::time_t>(c.now))));
    if (r.http) {
      if (auto hw = (*w)[k.http.as_string()]) request.emplace_back(k.http, http_object(r, c, *hw));
    }
    attributes.emplace_back(k.request, Value::object(std::move(request)));
  }
  // The verified JWT payload where Envoy's jwt_authn filter puts it for Istio (payload_in_metadata
  // "payload"). protojson names the fields metadataContext.filterMetadata; metadata_context.
  // filter_metadata (the proto field names) holds the same document.
  if (c.auth && c.auth->outcome == jwt::RequestAuth::Outcome::Authenticated && c.auth->claims.is_object()) {
    const bool json_names = want[k.metadata_context.as_string()].has_value();
    const bool proto_names = want[k.metadata_context_proto.as_string()].has_value();
    if (json_names || proto_names) {
      const Value jwt_metadata =
          Value::object({{k.jwt_authn, Value::object({{k.payload, Value::from_json(c.auth->claims)}})}});
      if (json_names)
        attributes.emplace_back(k.metadata_context, Value::object({{k.filter_metadata, jwt_metadata}}));
      if (proto_names)
        attributes.emplace_back(k.metadata_context_proto,
                                Value::object({{k.filter_metadata_proto, jwt_metadata}}));
    }
  }
  return Value::object(std::move(attributes));
}

}  // namespace

Result<Value> opa_input(const Request& r, const OpaInputContext& c) { return opa_input(r, c, nullptr); }

Result<Value> opa_input(const Request& r, const OpaInputContext& c, const rego::InputUse* use) {
  const Keys& k = keys();
  const Want want(use);
  std::string_view path_only, query;
  if (r.http) {
    path_only = r.http->path;
    const auto q = path_only.find('?');
    if (q != std::string_view::npos) {
      query = path_only.substr(q + 1);
      path_only = path_only.substr(0, q);
    }
    if (const auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
    if (const auto hash = path_only.find('#'); hash != std::string_view::npos)
      path_only = path_only.substr(0, hash);
  }

  rego::ObjectItems input;
  input.reserve(7);
  // A path that does not decode is an error whether or not a policy reads parsed_path (as the
  // plugin, which refuses the request); only a '%' escape can fail to decode.
  const bool path_wanted = want[k.parsed_path.as_string()].has_value();
  if (path_wanted || path_only.find('%') != std::string_view::npos) {
    auto path_value = parsed_path(path_only);
    if (!path_value) return fail(path_value.error());
    if (path_wanted) input.emplace_back(k.parsed_path, std::move(*path_value));
  }
  if (auto w = want[k.attributes.as_string()]) input.emplace_back(k.attributes, attributes_object(r, c, *w));
  if (want[k.parsed_query.as_string()]) input.emplace_back(k.parsed_query, parsed_query(query));
  // The proxy does not buffer bodies for OPA.
  if (want[k.parsed_body.as_string()]) input.emplace_back(k.parsed_body, Value::null());
  if (want[k.truncated_body.as_string()]) input.emplace_back(k.truncated_body, Value::boolean(false));
  if (want[k.version.as_string()]) input.emplace_back(k.version, k.version_value);
  // The caller's SPIFFE ID also at the top level (meshguard's input contract, docs/OPA.md), so a
  // policy need not dig into attributes; absent exactly when attributes.source.principal is.
  if (c.peer_identity && !r.source_principal.empty() && want[k.source_principal.as_string()]) {
    input.emplace_back(k.source_principal, str("spiffe://" + r.source_principal));
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
  // Only the parts of the input document some OPAPolicy's rules can read.
  auto input = opa_input(r, c, s.opa_input_use());
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
