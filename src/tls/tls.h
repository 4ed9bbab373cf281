// tls/tls.h — meshguard's mTLS material and the checks made on every handshake.
//
// Protocol: TLS 1.3 only, on both sides (meshguard talks to meshguard; 1.3 has no renegotiation,
// encrypts certificates and has one well-reviewed cipher list, so there is nothing to downgrade to).
//
// Credentials are immutable once built: a reload builds new ones and swaps a shared_ptr, so new
// handshakes use the new certificate while live connections keep the one they started with.
// Peers: the handshake itself requires a certificate chaining to the trust bundle; after it,
// verify_peer() applies the X.509-SVID rules (identity::verify_svid) and yields the SPIFFE ID.
#pragma once

#include <atomic>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "crypto/openssl.h"
#include "identity/spiffe_id.h"
#include "identity/trust_bundle.h"

namespace mg::tls {

struct TlsFiles {
  std::string cert_chain;    // PEM: leaf SVID first, then intermediates
  std::string key;           // PEM private key, must not be readable by group/others
  std::string trust_bundle;  // PEM roots of our trust domain
  // Optional: the federated trust domains' bundles (identity::parse_federated_bundles' text; the
  // agent's federated-bundles.pem). Empty path or no file: no federation.
  std::string federated_bundles = {};
};

struct Credentials {
  crypto::SslCtxPtr server_ctx;  // inbound: requires and verifies a client certificate
  crypto::SslCtxPtr client_ctx;  // outbound: presents our SVID, verifies the server's chain
  identity::SpiffeId own_id;     // our SPIFFE ID (the leaf's URI SAN)
  identity::TrustBundle bundle;  // roots of own_id's trust domain
  // Federated trust domains (SPIFFE federation): a peer of one of them is verified with its roots.
  std::vector<identity::TrustBundle> federated;
  std::string serial_hex;        // leaf serial, upper-case hex
  std::string fingerprint;       // leaf SHA-256, "AB:CD:..."
  std::time_t not_before = 0;
  std::time_t not_after = 0;
  std::vector<crypto::X509Ptr> chain;  // as loaded, leaf first (for /config_dump)
};

// Loads and checks the files (key permissions, key matches the leaf, the leaf is a valid SVID
// for the bundle at `now`) and builds both contexts. Fails closed with a clear error.
Result<std::shared_ptr<const Credentials>> load_credentials(const TlsFiles& files, std::time_t now);

// The current credentials, readable from any thread without locks on the hot path
// (std::atomic<std::shared_ptr>, available in libstdc++ 12 for gcc 12 and clang 14).
class CredentialStore {
 public:
  std::shared_ptr<const Credentials> current() const { return current_.load(std::memory_order_acquire); }
  void replace(std::shared_ptr<const Credentials> next) { current_.store(std::move(next), std::memory_order_release); }

 private:
  std::atomic<std::shared_ptr<const Credentials>> current_;
};

// ALPN between proxies (issue 15). Servers select h2 over http/1.1 (both contexts built here);
// a client offers both only on connections that carry HTTP (offer_http_alpn, per SSL before its
// handshake). A TCP route's connection offers istio-peer-exchange alone (offer_peer_exchange_alpn):
// selected, both proxies exchange workload metadata before the app's bytes (proxy/peer_exchange.h);
// not selected (an older or foreign server), the bytes flow as they are. negotiated_alpn: "" when none.
inline constexpr std::string_view kAlpnH2 = "h2";
inline constexpr std::string_view kAlpnHttp11 = "http/1.1";
inline constexpr std::string_view kAlpnPeerExchange = "istio-peer-exchange";
bool offer_http_alpn(SSL* ssl);
bool offer_peer_exchange_alpn(SSL* ssl);
std::string_view negotiated_alpn(SSL* ssl);
// A gateway's edge contexts' choice (h2, else http/1.1, else none: tls/edge.h). The mesh's server
// context built here also selects istio-peer-exchange (only a mesh peer is answered on it).
void select_http_alpn(SSL_CTX* ctx);

// PERMISSIVE: a TLS connection starts with a handshake record (0x16) of major version 3.
// Needs the first two bytes; fewer bytes are "not yet known" → false.
bool looks_like_tls(std::string_view first_bytes);

struct PeerIdentity {
  identity::SpiffeId id;
  std::string cert_sha256_hex;  // lower-case hex of the leaf's DER hash (Envoy's XFCC "Hash")
};

// After a completed handshake on `ssl`: applies the X.509-SVID rules to the peer's chain.
// A resumed session carries no chain (peers do not resend certificates); its leaf was fully
// verified by this same context when the session was created (ticket keys are per context, so a
// credential or bundle reload forces full handshakes), so only the leaf rules that depend on
// time are re-checked: a valid SPIFFE ID and notBefore <= now <= notAfter.
Result<PeerIdentity> verify_peer(SSL* ssl, const Credentials& creds, std::time_t now);

using SslSessionPtr = std::unique_ptr<SSL_SESSION, crypto::Deleter<SSL_SESSION, SSL_SESSION_free>>;

// Client-side session capture for resumption. TLS 1.3 tickets arrive after the handshake, so the
// client context hands each new session to the SessionSink attached to its SSL (if any); the
// caller keeps the sink alive as long as the SSL and resumes with `latest` (once: TLS 1.3
// sessions are single-use) on a later connection via SSL_set_session.
struct SessionSink {
  SslSessionPtr latest;
};
void attach_session_sink(SSL* ssl, SessionSink* sink);

// Secure naming: the server's ID must be one of `allowed` (exact SPIFFE ID strings).
Status check_secure_naming(const identity::SpiffeId& server, const std::vector<std::string>& allowed);

// Envoy-style x-forwarded-client-cert for an inbound mTLS request:
// By=<our id>;Hash=<peer cert sha256 hex>;URI=<peer id>
std::string xfcc_value(const identity::SpiffeId& own, const PeerIdentity& peer);

}  // namespace mg::tls
