// tls/edge.h — TLS toward clients outside the mesh, on a gateway's HTTPS listener (Istio Gateway
// servers[].tls mode SIMPLE): the certificate and key of a credentialName, no client certificate
// asked for. Unlike the mesh's own mTLS (tls.h) this serves browsers and curl, so TLS 1.2 is
// accepted as well as 1.3; ALPN selects h2, else http/1.1, as the mesh's server does.
#pragma once

#include <string>

#include "common/result.h"
#include "crypto/openssl.h"

namespace mg::tls {

// A server context presenting the PEM chain in `cert_file` (leaf first) with the key in
// `key_file`. Fails with OpenSSL's reason when either does not load or they do not match.
Result<crypto::SslCtxPtr> edge_server_context(const std::string& cert_file, const std::string& key_file);

// A server context with no certificate of its own: every handshake must be handed a context
// from `choose` (SNI, tls/edge.h's caller), called with `arg` and the server name the client sent
// ("" when none); `choose` returns the context to continue with, or null to refuse the handshake
// (alert unrecognized_name).
using EdgeChooser = SSL_CTX* (*)(void* arg, std::string_view server_name);
Result<crypto::SslCtxPtr> edge_front_context(EdgeChooser choose, void* arg);

}  // namespace mg::tls
