#include "tls/tls.h"

#include <openssl/err.h>
#include <algorithm>
#include <span>

#include "common/files.h"
#include "identity/svid.h"

namespace mg::tls {

namespace {

int session_sink_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Keeps a copy: the object OpenSSL passes is also the live connection's session, which OpenSSL
// marks not resumable when that connection is freed without a close_notify (as splices end).
// Returns 0: OpenSSL keeps (and later drops) its own reference.
int on_new_client_session(SSL* ssl, SSL_SESSION* session) {
  auto* sink = static_cast<SessionSink*>(SSL_get_ex_data(ssl, session_sink_index()));
  if (!sink) return 0;
  sink->latest.reset(SSL_SESSION_dup(session));
  return 0;
}

// ALPN, server side: h2 when the client offers it (one connection, many streams), else http/1.1
// when offered; on the mesh's context, else istio-peer-exchange (a TCP route's client proxy);
// a client that offers none of them gets no ALPN answer. `arg`: the list, in order of preference.
using AlpnChoices = std::span<const std::string_view>;
constexpr std::string_view kHttpAlpns[] = {kAlpnH2, kAlpnHttp11};
constexpr std::string_view kMeshAlpns[] = {kAlpnH2, kAlpnHttp11, kAlpnPeerExchange};
const AlpnChoices kHttpChoices(kHttpAlpns);
const AlpnChoices kMeshChoices(kMeshAlpns);

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  for (std::string_view want : *static_cast<const AlpnChoices*>(arg)) {
    for (unsigned int i = 0; i < inlen;) {
      unsigned int len = in[i];
      if (i + 1 + len > inlen) break;
      if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == want) {
        *out = in + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

Result<crypto::SslCtxPtr> make_ctx(bool server, const std::vector<crypto::X509Ptr>& chain, EVP_PKEY* key,
                                   const identity::TrustBundle& bundle,
                                   const std::vector<identity::TrustBundle>& federated) {
  crypto::SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return fail(crypto::openssl_error("tls.context", "SSL_CTX_new failed"));
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    return fail(crypto::openssl_error("tls.context", "cannot require TLS 1.3"));
  }
  if (SSL_CTX_use_certificate(ctx.get(), chain[0].get()) != 1) {
    return fail(crypto::openssl_error("tls.context", "cannot use the certificate"));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get()) != 1) {
      return fail(crypto::openssl_error("tls.context", "cannot add an intermediate certificate"));
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key) != 1) {
    return fail(crypto::openssl_error("tls.context", "cannot use the private key"));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return fail(crypto::openssl_error("tls.key_mismatch", "the private key does not match the certificate"));
  }
  auto store = bundle.make_store();
  if (!store) return fail(store.error());
  // The handshake accepts a chain to any trusted root; verify_peer then binds each trust domain
  // to its own roots (a federated root never vouches for our trust domain).
  for (const auto& f : federated) {
    for (const auto& r : f.roots()) {
      if (X509_STORE_add_cert(store->get(), r.get()) != 1) {
        crypto::last_error();  // a root both bundles hold is already there
      }
    }
  }
  // SSL_CTX_set_cert_store takes ownership.
  SSL_CTX_set_cert_store(ctx.get(), store->release());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
  SSL_CTX_set_verify_depth(ctx.get(), 8);
  if (server) {
    // Stateless TLS 1.3 tickets, encrypted with keys random per context: a credential reload
    // (new context) invalidates every earlier ticket, and nothing survives a restart.
    SSL_CTX_set_session_id_context(ctx.get(), reinterpret_cast<const unsigned char*>("meshguard"), 9);
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, const_cast<AlpnChoices*>(&kMeshChoices));
  } else {
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), on_new_client_session);
  }
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

}  // namespace

Result<std::shared_ptr<const Credentials>> load_credentials(const TlsFiles& files, std::time_t now) {
  if (auto st = files::check_private_key_permissions(files.key); !st) return fail(st.error());
  auto chain_pem = files::read_file(files.cert_chain);
  if (!chain_pem) return fail(chain_pem.error());
  auto key_pem = files::read_file(files.key);
  if (!key_pem) return fail(key_pem.error());
  auto bundle_pem = files::read_file(files.trust_bundle);
  if (!bundle_pem) return fail(bundle_pem.error());

  auto chain = crypto::parse_cert_chain_pem(*chain_pem);
  if (!chain) return fail(Error{chain.error().code, files.cert_chain + ": " + chain.error().message});
  auto key = crypto::parse_private_key_pem(*key_pem);
  if (!key) return fail(Error{key.error().code, files.key + ": " + key.error().message});

  if (X509_check_private_key((*chain)[0].get(), key->get()) != 1) {
    ERR_clear_error();
    return fail("tls.key_mismatch", files.key + " does not match the certificate in " + files.cert_chain);
  }
  auto own = identity::spiffe_id_of((*chain)[0].get());
  if (!own) return fail(Error{std::string(own.error().code()), files.cert_chain + ": " + own.error().message});
  auto bundle = identity::TrustBundle::from_pem(own->trust_domain(), *bundle_pem);
  if (!bundle) return fail(Error{bundle.error().code, files.trust_bundle + ": " + bundle.error().message});
  // Our own certificate must be one a peer would accept: fail closed on an expired or foreign SVID.
  auto verified = identity::verify_svid(*chain, *bundle, now);
  if (!verified) {
    return fail(Error{std::string(verified.error().code()), files.cert_chain + ": " + verified.error().message});
  }

  std::vector<identity::TrustBundle> federated;
  if (!files.federated_bundles.empty() && files::exists(files.federated_bundles)) {
    auto text = files::read_file(files.federated_bundles);
    if (!text) return fail(text.error());
    auto parsed = identity::parse_federated_bundles(*text);
    if (!parsed)
      return fail(Error{parsed.error().code, files.federated_bundles + ": " + parsed.error().message});
    for (auto& b : *parsed) {
      if (b.trust_domain() != own->trust_domain()) federated.push_back(std::move(b));
    }
  }

  auto server = make_ctx(true, *chain, key->get(), *bundle, federated);
  if (!server) return fail(server.error());
  auto client = make_ctx(false, *chain, key->get(), *bundle, federated);
  if (!client) return fail(client.error());

  X509* leaf = (*chain)[0].get();
  auto creds = std::make_shared<Credentials>(
      Credentials{std::move(*server), std::move(*client), std::move(*verified), std::move(*bundle),
                  std::move(federated), crypto::cert_serial_hex(leaf), crypto::cert_sha256_fingerprint(leaf),
                  crypto::asn1_to_unix(X509_get0_notBefore(leaf)),
                  crypto::asn1_to_unix(X509_get0_notAfter(leaf)), std::move(*chain)});
  return std::shared_ptr<const Credentials>(std::move(creds));
}

void attach_session_sink(SSL* ssl, SessionSink* sink) { SSL_set_ex_data(ssl, session_sink_index(), sink); }

void select_http_alpn(SSL_CTX* ctx) {
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, const_cast<AlpnChoices*>(&kHttpChoices));
}

bool offer_http_alpn(SSL* ssl) {
  static constexpr unsigned char kProtos[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  return SSL_set_alpn_protos(ssl, kProtos, sizeof kProtos) == 0;  // 0 is success here
}

bool offer_peer_exchange_alpn(SSL* ssl) {
  static constexpr unsigned char kProtos[] = {19,  'i', 's', 't', 'i', 'o', '-', 'p', 'e', 'e',
                                              'r', '-', 'e', 'x', 'c', 'h', 'a', 'n', 'g', 'e'};
  static_assert(sizeof kProtos == 1 + kAlpnPeerExchange.size());
  return SSL_set_alpn_protos(ssl, kProtos, sizeof kProtos) == 0;
}

std::string_view negotiated_alpn(SSL* ssl) {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return data == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), len);
}

bool looks_like_tls(std::string_view first_bytes) {
  return first_bytes.size() >= 2 && static_cast<unsigned char>(first_bytes[0]) == 0x16 &&
         static_cast<unsigned char>(first_bytes[1]) == 0x03;
}

Result<PeerIdentity> verify_peer(SSL* ssl, const Credentials& creds, std::time_t now) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (!leaf) return fail("tls.no_peer_certificate", "the peer presented no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    return fail("tls.peer_chain_invalid",
                std::string("peer certificate rejected: ") + X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
  }
  if (SSL_session_reused(ssl)) {
    auto id = identity::spiffe_id_of(leaf);
    if (!id) return fail(id.error().to_error());
    if (!identity::bundle_for(id->trust_domain(), creds.bundle, creds.federated)) {
      return fail("svid.wrong_trust_domain", "resumed session: peer trust domain is not trusted");
    }
    if (X509_cmp_time(X509_get0_notBefore(leaf), &now) > 0) {
      return fail("svid.not_yet_valid", "resumed session: peer certificate is not valid yet");
    }
    if (X509_cmp_time(X509_get0_notAfter(leaf), &now) < 0) {
      return fail("svid.expired", "resumed session: peer certificate has expired");
    }
    auto digest = crypto::sha256(crypto::cert_der(leaf));
    return PeerIdentity{std::move(*id), crypto::hex(digest.data(), digest.size())};
  }
  std::vector<X509*> chain{leaf};
  // The client side's list starts with the leaf; the server side's does not.
  if (STACK_OF(X509)* presented = SSL_get_peer_cert_chain(ssl)) {
    for (int i = 0; i < sk_X509_num(presented); ++i) {
      X509* c = sk_X509_value(presented, i);
      if (X509_cmp(c, leaf) != 0) chain.push_back(c);
    }
  }
  // The peer's trust domain picks the roots it must chain to: ours, or a federated domain's.
  const identity::TrustBundle* bundle = &creds.bundle;
  if (!creds.federated.empty()) {
    auto claimed = identity::spiffe_id_of(leaf);
    if (!claimed) return fail(claimed.error().to_error());
    if (const auto* b = identity::bundle_for(claimed->trust_domain(), creds.bundle, creds.federated))
      bundle = b;
  }
  auto id = identity::verify_svid(std::span<X509* const>(chain.data(), chain.size()), *bundle, now);
  if (!id) return fail(id.error().to_error());
  auto digest = crypto::sha256(crypto::cert_der(leaf));
  return PeerIdentity{std::move(*id), crypto::hex(digest.data(), digest.size())};
}

Status check_secure_naming(const identity::SpiffeId& server, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), server.str()) != allowed.end()) return {};
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return fail("tls.secure_naming", "server identity " + server.str() + " is not one of [" + list + "]");
}

std::string xfcc_value(const identity::SpiffeId& own, const PeerIdentity& peer) {
  // Once per forwarded request: one allocation, not one per piece.
  std::string out;
  out.reserve(3 + own.str().size() + 6 + peer.cert_sha256_hex.size() + 5 + peer.id.str().size());
  out += "By=";
  out += own.str();
  out += ";Hash=";
  out += peer.cert_sha256_hex;
  out += ";URI=";
  out += peer.id.str();
  return out;
}

}  // namespace mg::tls
