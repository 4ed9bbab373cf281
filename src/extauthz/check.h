// extauthz/check.h — the pure half of a CUSTOM AuthorizationPolicy's call to its extension
// provider (Mesh.spec.extensionProviders, Istio's meshConfig): what the provider's answer means
// for the request, in one vocabulary for both protocols (CheckResult), the HTTP protocol of
// Envoy's ext_authz filter as Istio configures it for envoyExtAuthzHttp (the check request
// built from the client's request; the provider's response interpreted), Istio's header-name
// patterns, and the failOpen / statusOnError rule. The gRPC protocol's mapping is in
// grpc_mapping.h (it needs the generated messages); the I/O is the proxy's (proxy/ext_authz.h).
// No I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "policy/resources.h"

namespace mg::extauthz {

// The provider's answer, or why there is none.
struct CheckResult {
  enum class Kind { Allow, Deny, Error };
  Kind kind = Kind::Error;
  // Deny: the response the client gets (the provider's status, body and headers).
  int status = 403;
  std::string body;
  // Deny: headers on the local reply. Allow (gRPC response_headers_to_add): added to the
  // app's response to the client.
  std::vector<http::Header> downstream_headers;
  // Allow: the forwarded request's mutations, applied in this order: remove, set (replacing
  // every value of the name), append (add a value), add only when absent.
  std::vector<std::string> upstream_remove;
  std::vector<http::Header> upstream_set;
  std::vector<http::Header> upstream_append;
  std::vector<http::Header> upstream_add_if_absent;
  std::vector<http::Header> upstream_set_if_present;  // OVERWRITE_IF_EXISTS (gRPC)
  // Error: what went wrong (timeout, connection refused, a malformed answer, gRPC status).
  std::string error;
  bool timed_out = false;

  static CheckResult failure(std::string why, bool timeout = false) {
    CheckResult r;
    r.kind = Kind::Error;
    r.error = std::move(why);
    r.timed_out = timeout;
    return r;
  }
};

// Host and the fields the proxy's own framing and connection handling write (Content-Length,
// Transfer-Encoding, Connection and the other hop-by-hop ones): never copied between the client's
// request, a provider's answer and the forwarded request or reply.
bool proxy_owned_header(std::string_view name);

// Istio's header-name patterns (includeRequestHeadersInCheck, headersToUpstreamOnAllow,
// headersToDownstreamOnDeny): "abc" exact, "abc*" prefix, "*abc" suffix; names compared
// without regard to case.
bool header_pattern_matches(std::string_view pattern, std::string_view name);
bool any_pattern_matches(const std::vector<std::string>& patterns, std::string_view name);

// The client's request body as far as includeRequestBodyInCheck buffered it.
struct CheckBody {
  bool present = false;  // includeRequestBodyInCheck applies and the request has a body
  std::string data;      // at most maxRequestBytes
  bool partial = false;  // the body goes on past `data` (allowPartialMessage)
};

// The HTTP check request Envoy's ext_authz filter sends for `original`: the original method;
// target pathPrefix + the original path and query; Host (the original's), Authorization (when
// present), the headers includeRequestHeadersInCheck names, then includeAdditionalHeadersInCheck
// (set, replacing a copied one); Content-Length: 0 and no body — or, with a buffered `body`, its
// length (the caller sends body->data after the head) and x-envoy-auth-partial-body: true|false.
// The connection to the provider is kept alive (HTTP/1.1).
http::Request build_http_check(const policy::ExtensionProvider& provider, const http::Request& original,
                               const CheckBody* body = nullptr);

// The provider's HTTP response (head and whole body) read as Envoy reads it: 200 allows, and the
// response headers headersToUpstreamOnAllow names are set on the forwarded request (none named:
// the request is forwarded unchanged); a 5xx is an error (failOpen / statusOnError decide, as
// Envoy's failure_mode_allow documents); any other status denies with that status, the body,
// and the headers headersToDownstreamOnDeny names (plus Path, Status, Content-Length,
// WWW-Authenticate and Location; none named: every header but Host), never framing or
// hop-by-hop fields, which the proxy's local reply writes itself.
CheckResult interpret_http_check(const policy::ExtensionProvider& provider, const http::Response& response,
                                 std::string body);

// Istio: a call that failed (timeout, provider unreachable, error answer) allows the request
// when failOpen, else denies it with statusOnError (403 by default) and an empty body.
struct ErrorOutcome {
  bool allow = false;
  int status = 403;
};
ErrorOutcome on_error(const policy::ExtensionProvider& provider);

// Applies an allowing result's mutations to the request forwarded upstream.
void apply_upstream_mutations(const CheckResult& result, http::Headers& headers);

}  // namespace mg::extauthz
