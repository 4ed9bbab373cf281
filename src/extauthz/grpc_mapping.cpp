#include "extauthz/grpc_mapping.h"

#include <algorithm>

namespace mg::extauthz {
namespace {

namespace pb = envoy::service::auth::v3;

void set_peer(pb::AttributeContext::Peer& peer, const std::string& address, uint32_t port,
              const std::string& principal) {
  auto* socket = peer.mutable_address()->mutable_socket_address();
  socket->set_address(address);
  socket->set_port_value(port);
  if (!principal.empty()) peer.set_principal(principal);
}

bool valid_name(std::string_view name) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) { return http::is_token_char(c); });
}

bool valid_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// The header's value: `value`, or raw_value when a provider uses that instead.
const std::string& value_of(const pb::HeaderValue& h) {
  return h.value().empty() ? h.raw_value() : h.value();
}

bool check_header(const pb::HeaderValueOption& o, std::string& error) {
  const auto& name = o.header().key();
  if (!valid_name(name) || !valid_value(value_of(o.header()))) {
    error = "provider sent a header HTTP cannot carry: \"" + name.substr(0, 64) + "\"";
    return false;
  }
  return true;
}

}  // namespace

void to_check_request(const CheckAttributes& a, pb::CheckRequest& out) {
  auto* ctx = out.mutable_attributes();
  set_peer(*ctx->mutable_source(), a.source_address, a.source_port, a.source_principal);
  set_peer(*ctx->mutable_destination(), a.destination_address, a.destination_port, a.destination_principal);
  auto* request = ctx->mutable_request();
  request->mutable_time()->set_seconds(a.time_seconds);
  request->mutable_time()->set_nanos(a.time_nanos);
  auto* h = request->mutable_http();
  h->set_id(a.id);
  h->set_method(a.method);
  h->set_path(a.path);
  h->set_host(a.host);
  h->set_scheme(a.scheme);
  h->set_protocol(a.protocol);
  h->set_query(a.query);
  h->set_size(a.size);
  if (!a.body.empty()) {
    if (a.pack_as_bytes) {
      h->set_raw_body(a.body);
    } else {
      h->set_body(a.body);
    }
  }
  auto& headers = *h->mutable_headers();
  for (const auto& [name, value] : a.headers) headers[name] = value;
  if (!a.sni.empty()) ctx->mutable_tls_session()->set_sni(a.sni);
}

CheckResult from_check_response(const pb::CheckResponse& response) {
  CheckResult r;
  std::string error;
  if (response.status().code() == 0) {
    r.kind = CheckResult::Kind::Allow;
    r.status = 200;
    if (!response.has_ok_response()) return r;
    const auto& ok = response.ok_response();
    for (const auto& name : ok.headers_to_remove()) {
      if (!valid_name(name)) return CheckResult::failure("provider asked to remove an invalid header name");
      if (!proxy_owned_header(name)) r.upstream_remove.push_back(name);
    }
    for (const auto& o : ok.headers()) {
      if (!check_header(o, error)) return CheckResult::failure(error);
      if (proxy_owned_header(o.header().key())) continue;
      http::Header h{o.header().key(), value_of(o.header())};
      // Envoy: `append` when given decides (true adds a value, false replaces); else append_action.
      if (o.has_append()) {
        (o.append().value() ? r.upstream_append : r.upstream_set).push_back(std::move(h));
        continue;
      }
      switch (o.append_action()) {
        case pb::HeaderValueOption::ADD_IF_ABSENT:
          r.upstream_add_if_absent.push_back(std::move(h));
          break;
        case pb::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD:
          r.upstream_set.push_back(std::move(h));
          break;
        case pb::HeaderValueOption::OVERWRITE_IF_EXISTS:
          r.upstream_set_if_present.push_back(std::move(h));
          break;
        default:
          r.upstream_append.push_back(std::move(h));
          break;
      }
    }
    for (const auto& o : ok.response_headers_to_add()) {
      if (!check_header(o, error)) return CheckResult::failure(error);
      if (!proxy_owned_header(o.header().key()))
        r.downstream_headers.push_back({o.header().key(), value_of(o.header())});
    }
    return r;
  }
  r.kind = CheckResult::Kind::Deny;
  r.status = 403;
  if (response.has_denied_response()) {
    const auto& denied = response.denied_response();
    const int code = denied.status().code();
    if (code >= 100 && code <= 599) r.status = code;  // Envoy: an unset (Empty) code is 403
    r.body = denied.body();
    for (const auto& o : denied.headers()) {
      if (!check_header(o, error)) return CheckResult::failure(error);
      if (!proxy_owned_header(o.header().key()))
        r.downstream_headers.push_back({o.header().key(), value_of(o.header())});
    }
  }
  return r;
}

}  // namespace mg::extauthz
