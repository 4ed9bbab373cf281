#include "tls/edge.h"

#include <openssl/ssl.h>

#include "tls/tls.h"

namespace mg::tls {

namespace {

struct Chooser {
  EdgeChooser choose;
  void* arg;
};

void free_chooser(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<Chooser*>(ptr); }

int chooser_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_chooser);
  return index;
}

// The servername callback: runs while the ClientHello is processed, before a certificate is
// chosen, so switching the SSL's context here decides what the client is shown.
int on_server_name(SSL* ssl, int* alert, void*) {
  const auto* chooser =
      static_cast<const Chooser*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), chooser_index()));
  if (chooser == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  SSL_CTX* chosen = chooser->choose(chooser->arg, name ? std::string_view(name) : std::string_view());
  if (chosen == nullptr || SSL_set_SSL_CTX(ssl, chosen) == nullptr) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

Result<crypto::SslCtxPtr> new_edge_ctx() {
  crypto::SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return fail(crypto::openssl_error("tls.edge_context", "SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_id_context(ctx.get(), reinterpret_cast<const unsigned char*>("meshguard-edge"), 14);
  select_http_alpn(ctx.get());
  return ctx;
}

}  // namespace

Result<crypto::SslCtxPtr> edge_server_context(const std::string& cert_file, const std::string& key_file) {
  auto ctx = new_edge_ctx();
  if (!ctx) return ctx;
  if (SSL_CTX_use_certificate_chain_file(ctx->get(), cert_file.c_str()) != 1)
    return fail(crypto::openssl_error("tls.edge_certificate", "certificate " + cert_file));
  if (SSL_CTX_use_PrivateKey_file(ctx->get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return fail(crypto::openssl_error("tls.edge_key", "key " + key_file));
  if (SSL_CTX_check_private_key(ctx->get()) != 1)
    return fail(crypto::openssl_error("tls.edge_key", "key " + key_file + " does not match " + cert_file));
  return ctx;
}

Result<crypto::SslCtxPtr> edge_front_context(EdgeChooser choose, void* arg) {
  auto ctx = new_edge_ctx();
  if (!ctx) return ctx;
  // Owned by the context (freed with it), found again through the context in the callback.
  if (SSL_CTX_set_ex_data(ctx->get(), chooser_index(), new Chooser{choose, arg}) != 1)
    return fail(crypto::openssl_error("tls.edge_context", "SSL_CTX_set_ex_data"));
  SSL_CTX_set_tlsext_servername_callback(ctx->get(), on_server_name);
  return ctx;
}

}  // namespace mg::tls
