// control/own_identity.cpp — see own_identity.h.
#include "control/own_identity.h"

#include <openssl/x509.h>

#include <vector>

#include "api/grpc_tls.h"
#include "common/files.h"
#include "common/time.h"
#include "control/support.h"
#include "crypto/openssl.h"
#include "identity/svid.h"

namespace mg::control {

namespace {

// A fresh serving or admin SVID from the CA (key generated here, written 0600) in the layout of
// api::load_svid_dir; a serving one also as serving.pem, chain and key in one file (0600), which
// gRPC re-reads (api::server_credentials). Returns the new certificate's notAfter.
Result<std::time_t> issue_local_svid(const ca::Authority& authority, const identity::SpiffeId& id,
                                     const std::string& dir, std::chrono::seconds ttl,
                                     const std::vector<std::string>& dns_names, bool serving) {
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  if (!key) return fail(key.error());
  auto csr = crypto::make_csr(key->get());
  if (!csr) return fail(csr.error());
  auto issued = authority.sign_csr(csr->get(), id, ttl, unix_now(), dns_names);
  if (!issued) return fail(issued.error());
  auto leaf = crypto::parse_cert_chain_pem(issued->cert_pem);
  if (!leaf || leaf->empty())
    return fail("control.own_certificate", "cannot read the certificate just issued");
  const std::string key_pem = crypto::private_key_to_pem(key->get());
  if (auto st = files::make_dirs(dir, 0700); !st) return fail(st.error());
  // serving.pem first: cert-chain.pem, which own_svid_state judges, is replaced only once what
  // gRPC serves has been, so a failed write is retried at the next check.
  if (serving) {
    if (auto st = files::write_file_atomic(dir + "/serving.pem", issued->chain_pem + key_pem, 0600); !st)
      return fail(st.error());
  }
  if (auto st = files::write_file_atomic(dir + "/key.pem", key_pem, 0600); !st) return fail(st.error());
  if (auto st = files::write_file_atomic(dir + "/cert-chain.pem", issued->chain_pem, 0644); !st)
    return fail(st.error());
  if (auto st = files::write_file_atomic(dir + "/root-cert.pem", authority.bundle().to_pem(), 0644); !st)
    return fail(st.error());
  return crypto::asn1_to_unix(X509_get0_notAfter(leaf->front().get()));
}

// What an own identity directory needs. `reissue`: it is missing or unreadable, not a valid SVID
// under `authority`'s bundle at `now`, or past half of its life counted from its issuance (the CA
// backdates notBefore by kClockSkewBackdate) — renewal at half-life, as every mesh agent does.
// A CA rotation alone does not re-issue it: the serving certificate moves to the new CA at its
// next renewal, so proxies that missed the rotation can still connect and receive the new bundle
// until then. `stale_bundle`: root-cert.pem is not the current bundle (rewritten on its own).
struct OwnSvidState {
  bool reissue = true;
  bool stale_bundle = false;
  std::time_t not_after = 0;
};
OwnSvidState own_svid_state(const std::string& dir, const ca::Authority& authority, std::time_t now) {
  OwnSvidState out;
  auto files = api::load_svid_dir(dir);
  if (!files) return out;
  auto chain = crypto::parse_cert_chain_pem(files->cert_chain_pem);
  if (!chain || chain->empty() || !identity::verify_svid(*chain, authority.bundle(), now)) return out;
  X509* leaf = chain->front().get();
  const std::time_t issued = crypto::asn1_to_unix(X509_get0_notBefore(leaf)) + ca::kClockSkewBackdate.count();
  out.not_after = crypto::asn1_to_unix(X509_get0_notAfter(leaf));
  out.reissue = now >= issued + (out.not_after - issued) / 2;
  out.stale_bundle = files->bundle_pem != authority.bundle().to_pem();
  return out;
}

}  // namespace

Status OwnIdentities::renew(const ca::Authority& authority, bool at_start) const {
  const std::time_t now = unix_now();
  struct Own {
    const char* name;
    identity::SpiffeId id;
    std::vector<std::string> dns_names;
  };
  // admin/ first: meshguardctl checks the serving certificate with admin/root-cert.pem, which
  // must already hold the CA that signs the next serving certificate.
  const Own owns[] = {{"admin", api::admin_id(trust_domain_), {}},
                      {"control", api::control_plane_id(trust_domain_), {api::kControlPlaneHost}}};
  for (const Own& own : owns) {
    const bool serving = std::string_view(own.name) == "control";
    const std::string dir = data_dir_ + "/" + own.name;
    auto& expiry = metrics_.gauge("meshguard_own_certificate_expiry_timestamp_seconds", {{"identity", own.name}});
    const OwnSvidState state = own_svid_state(dir, authority, now);
    if (!state.reissue && !(at_start && serving)) {
      expiry.set(static_cast<double>(state.not_after));
      if (state.stale_bundle) {
        if (auto st = files::write_file_atomic(dir + "/root-cert.pem", authority.bundle().to_pem(), 0644);
            !st)
          log_line("cannot update " + dir + "/root-cert.pem (retrying): " + st.error().to_string());
      }
      continue;
    }
    auto not_after = issue_local_svid(authority, own.id, dir, ttl_, own.dns_names, serving);
    metrics_
        .counter("meshguard_own_certificate_issued_total",
                 {{"identity", own.name}, {"result", not_after ? "success" : "error"}})
        .inc();
    if (!not_after) {
      if (at_start) return fail(not_after.error());
      if (state.not_after > 0) expiry.set(static_cast<double>(state.not_after));
      log_line("cannot renew " + own.id.str() + " (retrying): " + not_after.error().to_string());
      continue;
    }
    expiry.set(static_cast<double>(*not_after));
    if (!at_start) log_line("renewed " + own.id.str() + ", valid until " +
                                  timefmt::utc_rfc3339(static_cast<std::time_t>(*not_after)));
  }
  return {};
}

}  // namespace mg::control
