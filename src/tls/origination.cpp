#include "tls/origination.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "crypto/openssl.h"

namespace mg::tls {

Result<crypto::SslCtxPtr> origination_context(const std::string& ca_file) {
  crypto::SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return fail(crypto::openssl_error("tls.origination_context", "SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return fail(crypto::openssl_error("tls.origination_ca", "the system's default CA certificates"));
    }
    return ctx;
  }
  if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    return fail(crypto::openssl_error("tls.origination_ca", "caCertificates " + ca_file));
  }
  // A file that parses to nothing would verify nothing: refused rather than trusted as empty.
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  if (objects == nullptr || sk_X509_OBJECT_num(objects) == 0) {
    return fail("tls.origination_ca", "caCertificates " + ca_file + " holds no certificate");
  }
  return ctx;
}

Status prepare_origination(SSL* ssl, const std::string& server_name) {
  if (server_name.empty()) return fail("tls.origination_sni", "no server name to send and verify");
  if (SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
    return fail(crypto::openssl_error("tls.origination_sni", "SNI " + server_name));
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  if (SSL_set1_host(ssl, server_name.c_str()) != 1) {
    return fail(crypto::openssl_error("tls.origination_sni", "hostname check " + server_name));
  }
  return {};
}

Status check_origination(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return fail("tls.origination_unverified", "the server presented no certificate");
  const long result = SSL_get_verify_result(ssl);
  if (result != X509_V_OK) {
    return fail("tls.origination_unverified", X509_verify_cert_error_string(result));
  }
  return {};
}

}  // namespace mg::tls
