// tls/origination.h — TLS originated by a proxy to a server outside the mesh (Istio's
// DestinationRule trafficPolicy.tls mode SIMPLE, at an egress gateway): no client certificate, the
// server's chain verified against the rule's caCertificates (or the system's roots), and its name
// checked (DNS SAN, RFC 6125 wildcards as OpenSSL applies them) against the SNI sent. Unlike the
// mesh's own mTLS (tls.h) this speaks to third parties, so TLS 1.2 is accepted as well as 1.3.
#pragma once

#include <string>

#include "common/result.h"
#include "crypto/openssl.h"

namespace mg::tls {

// A client context that verifies servers against the PEM bundle at `ca_file` (must hold at least
// one certificate), or, with `ca_file` empty, against OpenSSL's default trust store. Verification
// failure aborts the handshake.
Result<crypto::SslCtxPtr> origination_context(const std::string& ca_file);

// Per connection, before its handshake: sends `server_name` as SNI and requires the server's
// certificate to be issued for it (SSL_set1_host: SAN DNS names, no CN fallback).
Status prepare_origination(SSL* ssl, const std::string& server_name);

// After a completed handshake: the chain verified and the name matched (the handshake fails
// otherwise; this is the explicit check that it did not complete unverified).
Status check_origination(SSL* ssl);

}  // namespace mg::tls
