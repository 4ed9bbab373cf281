#include "proxy/chain.h"

#include "proxy/enforcement_step.h"

namespace mg::proxy {

std::string_view to_string(Refusal reason) {
  switch (reason) {
    case Refusal::PlaintextOnStrictPort:
      return "plaintext_on_strict_port";
    case Refusal::NoCertificate:
      return "no_certificate";
    case Refusal::TlsHandshakeFailed:
      return "tls_handshake_failed";
    case Refusal::PeerCertificateRejected:
      return "peer_certificate_rejected";
    case Refusal::Denied:
      return "denied";
    case Refusal::MaxConnections:
      return "max_connections";
    case Refusal::ProxyProtocolInvalid:
      return "proxy_protocol_invalid";
    case Refusal::PeerMetadataInvalid:
      return "peer_metadata_invalid";
    case Refusal::TlsClientHelloInvalid:
      return "tls_client_hello_invalid";
    case Refusal::NoRoute:
      return "no_route";
  }
  return "unknown";
}

std::string_view to_string(Verdict::ExtAuthzCall::Outcome outcome) {
  switch (outcome) {
    case Verdict::ExtAuthzCall::Outcome::Allowed:
      return "allowed";
    case Verdict::ExtAuthzCall::Outcome::Denied:
      return "denied";
    case Verdict::ExtAuthzCall::Outcome::Error:
      return "error";
    case Verdict::ExtAuthzCall::Outcome::Timeout:
      return "timeout";
  }
  return "error";
}

RequestChain default_request_chain() {
  RequestChain chain;
  chain.steps.push_back({"enforce", [](RequestContext& ctx) { return enforce_request(nullptr, ctx); }});
  return chain;
}

ConnectionChain default_connection_chain() {
  ConnectionChain chain;
  chain.steps.push_back({"enforce", [](ConnectionContext& ctx) { return enforce_connection(nullptr, ctx); }});
  return chain;
}

ChainSet::ChainSet() {
  replace(std::make_shared<const RequestChain>(default_request_chain()),
          std::make_shared<const ConnectionChain>(default_connection_chain()));
}

}  // namespace mg::proxy
