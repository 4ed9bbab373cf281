// policy/request.h — one request as it reaches the destination's proxy (owned strings), and
// the JSON form `meshguardctl authz check --request` reads (DESIGN.md "Offline decision
// contract"). The proxy fills the same struct from the wire; the engine reads views of it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace mg::policy {

struct HttpRequest {
  std::string method;
  std::string path;  // as received: may carry a query and need normalization
  std::string host;  // :authority / Host
  std::vector<std::pair<std::string, std::string>> headers;  // names as received

  // Case-insensitive header lookup; nullptr when absent.
  const std::string* header(std::string_view name) const;
};

struct Request {
  // The destination workload (whose policies apply) and the connection's local end.
  std::string destination_namespace;
  std::map<std::string, std::string> destination_labels;
  std::string destination_service_account;
  std::string destination_ip;  // may be empty
  uint32_t destination_port = 0;

  // The peer: `source_principal` empty means plaintext (no mTLS identity). It is kept
  // without the `spiffe://` scheme (Istio's principal form).
  std::string source_principal;
  std::string source_ip;  // may be empty
  std::string sni;        // TLS SNI the client sent, may be empty

  std::optional<HttpRequest> http;  // absent: a TCP connection
  std::optional<int64_t> time;      // unix seconds for JWT exp / nbf
};

// Parses request.json. Unknown fields and wrong types are errors ("request.<field>: why").
Result<Request> parse_request_json(std::string_view json);

// "td/ns/<ns>/sa/<sa>" → "<ns>"; empty when the principal has no /ns/ segment.
std::string_view principal_namespace(std::string_view principal);

// Removes a leading "spiffe://".
std::string_view strip_spiffe(std::string_view principal);

}  // namespace mg::policy
