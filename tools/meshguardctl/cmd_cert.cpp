// meshguardctl cert issue | cert inspect — issue an X.509-SVID from a CA directory (the key is
// generated here and never leaves OUTDIR) and describe a certificate chain, optionally verifying it.
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "ca/authority.h"
#include "commands.h"
#include "common/files.h"
#include "common/time.h"
#include "crypto/openssl.h"
#include "identity/svid.h"

namespace mg::ctl {

namespace {

struct IssueOptions {
  std::string ca_dir;
  std::string spiffe_id;
  std::string out_dir;
  std::string ttl = "24h";
  std::string key_type = "ec-p256";
};

std::string rfc3339(const ASN1_TIME* t) {
  const std::time_t unix = crypto::asn1_to_unix(t);
  return unix == 0 ? "invalid" : timefmt::utc_rfc3339(unix);
}

int run_cert_issue(const IssueOptions& opt) {
  std::time_t now = std::time(nullptr);
  // Every check happens before OUTDIR is touched.
  auto id = identity::SpiffeId::parse(opt.spiffe_id);
  if (!id) return fail_line(id.error().to_string());
  auto ttl = ca::parse_duration(opt.ttl);
  if (!ttl) return fail_line(ttl.error().to_string());
  auto key_type = crypto::parse_key_type(opt.key_type);
  if (!key_type) return fail_line(key_type.error().to_string());
  auto authority = ca::Authority::load_dir(opt.ca_dir, now);
  if (!authority) return fail_line(authority.error().to_string());
  auto key = crypto::generate_key(*key_type);
  if (!key) return fail_line(key.error().to_string());
  auto csr = crypto::make_csr(key->get(), id->str());
  if (!csr) return fail_line(csr.error().to_string());
  auto svid = authority->sign_csr(csr->get(), *id, *ttl, now);
  if (!svid) return fail_line(svid.error().to_string());

  if (auto st = files::make_dirs(opt.out_dir, 0755); !st) return fail_line(st.error().to_string());
  struct Item {
    const char* name;
    std::string data;
    mode_t mode;
  } items[] = {{"key.pem", crypto::private_key_to_pem(key->get()), 0600},
               {"cert-chain.pem", svid->chain_pem, 0644},
               {"root-cert.pem", authority->bundle().to_pem(), 0644}};
  for (const auto& item : items) {
    if (auto st = files::write_file_atomic(opt.out_dir + "/" + item.name, item.data, item.mode); !st)
      return fail_line(st.error().to_string());
  }
  // Say when it really expires: the TTL may have been capped by the CA's maximum or its own expiry.
  std::string valid_until;
  if (auto issued = crypto::parse_cert_chain_pem(svid->cert_pem); issued)
    valid_until = ", valid until " + rfc3339(X509_get0_notAfter(issued->front().get()));
  std::cout << "issued " << id->str() << valid_until << " to " << opt.out_dir << " (key.pem, cert-chain.pem, root-cert.pem)\n";
  return 0;
}


using crypto::name_text;


std::string serial_hex(X509* cert) {
  crypto::BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex ? hex : "";
  OPENSSL_free(hex);
  return out;  // upper-case, as openssl and every other meshguard output print serials
}

nlohmann::json describe(X509* cert) {
  nlohmann::json j;
  j["subject"] = name_text(X509_get_subject_name(cert));
  j["issuer"] = name_text(X509_get_issuer_name(cert));
  j["serial"] = serial_hex(cert);
  j["notBefore"] = rfc3339(X509_get0_notBefore(cert));
  j["notAfter"] = rfc3339(X509_get0_notAfter(cert));
  j["isCa"] = X509_check_ca(cert) == 1;
  j["sha256Fingerprint"] = crypto::cert_sha256_fingerprint(cert);
  return j;
}

struct InspectOptions {
  std::string file;
  std::string bundle_file;
  std::string trust_domain;
  std::string output = "table";
};

// The trust domain to verify against: explicit, else the roots' spiffe://<td> SAN, else the leaf's.
std::string pick_trust_domain(const InspectOptions& opt, const std::vector<crypto::X509Ptr>& roots,
                              const std::optional<identity::SpiffeId>& leaf_id) {
  if (!opt.trust_domain.empty()) return opt.trust_domain;
  for (const auto& r : roots) {
    auto id = identity::spiffe_id_of(r.get());
    if (id && id->is_trust_domain_id()) return std::string(id->trust_domain());
  }
  return leaf_id ? std::string(leaf_id->trust_domain()) : std::string("unknown");
}

int inspect_chain(const InspectOptions& opt) {
  auto pem = files::read_file(opt.file);
  if (!pem) return fail_line(pem.error().to_string());
  auto chain = crypto::parse_cert_chain_pem(*pem);
  if (!chain) return fail_line(opt.file + ": " + chain.error().to_string());
  X509* leaf = chain->front().get();

  nlohmann::json out;
  auto id = identity::spiffe_id_of(leaf);
  std::optional<identity::SpiffeId> leaf_id;
  if (id) {
    leaf_id = *id;
    out["spiffeId"] = id->str();
  } else {
    out["spiffeId"] = nullptr;
    out["spiffeIdError"] = std::string(id.error().code());
  }
  nlohmann::json leaf_info = describe(leaf);
  for (const char* k : {"serial", "notBefore", "notAfter", "issuer", "subject", "sha256Fingerprint"})
    out[k] = leaf_info[k];
  out["chain"] = nlohmann::json::array();
  for (const auto& c : *chain) out["chain"].push_back(describe(c.get()));

  if (!opt.bundle_file.empty()) {
    auto roots_pem = files::read_file(opt.bundle_file);
    if (!roots_pem) return fail_line(roots_pem.error().to_string());
    auto roots = crypto::parse_cert_chain_pem(*roots_pem);
    if (!roots) return fail_line(opt.bundle_file + ": " + roots.error().to_string());
    auto bundle = identity::TrustBundle::from_pem(pick_trust_domain(opt, *roots, leaf_id), *roots_pem);
    if (!bundle) return fail_line(opt.bundle_file + ": " + bundle.error().to_string());
    auto verified = identity::verify_svid(*chain, *bundle, std::time(nullptr));
    out["trustDomain"] = bundle->trust_domain();
    out["verified"] = static_cast<bool>(verified);
    if (verified) {
      out["reason"] = nullptr;
    } else {
      out["reason"] = std::string(verified.error().code());
      out["reasonMessage"] = verified.error().message;
    }
  }

  if (opt.output == "json") {
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  auto text = [](const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  std::cout << "SPIFFE ID:    " << (leaf_id ? leaf_id->str() : "(none: " + text(out["spiffeIdError"]) + ")") << "\n"
            << "Serial:       " << text(out["serial"]) << "\n"
            << "Not before:   " << text(out["notBefore"]) << "\n"
            << "Not after:    " << text(out["notAfter"]) << "\n"
            << "Subject:      " << (text(out["subject"]).empty() ? "(empty)" : text(out["subject"])) << "\n"
            << "Issuer:       " << text(out["issuer"]) << "\n"
            << "SHA-256:      " << text(out["sha256Fingerprint"]) << "\n"
            << "Chain:\n";
  for (size_t i = 0; i < out["chain"].size(); ++i) {
    const auto& c = out["chain"][i];
    std::string subject = text(c["subject"]);
    std::cout << "  [" << i << "] " << (subject.empty() ? "(empty subject)" : subject) << (c["isCa"].get<bool>() ? " (CA)" : "")
              << "  issuer: " << text(c["issuer"]) << "  not after: " << text(c["notAfter"]) << "\n";
  }
  if (out.contains("verified")) {
    if (out["verified"].get<bool>())
      std::cout << "Verified:     yes (trust domain " << text(out["trustDomain"]) << ")\n";
    else
      std::cout << "Verified:     no (" << text(out["reason"]) << ": " << text(out["reasonMessage"]) << ")\n";
  }
  return 0;
}

int run_cert_inspect(const InspectOptions& opt) {
  if (opt.output != "table" && opt.output != "json")
    return fail_line("output.bad_format: unknown output format '" + opt.output + "' (want table or json)");
  try {
    return inspect_chain(opt);
  } catch (const std::exception& e) {
    return fail_line(std::string("cannot describe the certificate: ") + e.what());
  }
}

}  // namespace

void register_cert_commands(CLI::App& app, Action& action) {
  auto* cert = app.add_subcommand("cert", "Issue and inspect X.509-SVIDs");
  cert->require_subcommand(1);

  auto issue_opt = std::make_shared<IssueOptions>();
  auto* issue = cert->add_subcommand("issue", "Generate a key locally and issue an X.509-SVID for it");
  issue->add_option("--ca-dir", issue_opt->ca_dir, "CA directory (from 'ca init')")->required();
  issue->add_option("--spiffe-id", issue_opt->spiffe_id, "SPIFFE ID, e.g. spiffe://cluster.local/ns/default/sa/sleep")
      ->required();
  issue->add_option("--out", issue_opt->out_dir, "output directory (key.pem 0600, cert-chain.pem, root-cert.pem)")
      ->required();
  issue->add_option("--ttl", issue_opt->ttl, "certificate lifetime, e.g. 1h, 30m, 24h (default 24h; capped by the CA)");
  // --key-type and -o are validated by the commands themselves: a bad value is one clear stderr line.
  issue->add_option("--key-type", issue_opt->key_type, "ec-p256 (default) | rsa-2048 | rsa-3072");
  issue->callback([issue_opt, &action] { action = [issue_opt] { return run_cert_issue(*issue_opt); }; });

  auto inspect_opt = std::make_shared<InspectOptions>();
  auto* inspect = cert->add_subcommand("inspect", "Describe a certificate chain; with --bundle, verify it as an SVID");
  inspect->add_option("FILE", inspect_opt->file, "PEM certificate chain, leaf first")->required();
  inspect->add_option("--bundle", inspect_opt->bundle_file, "PEM trust bundle (root certificates) to verify against");
  inspect->add_option("--trust-domain", inspect_opt->trust_domain,
                      "trust domain the bundle is for (default: from the roots' spiffe:// SAN, else the leaf's)");
  inspect->add_option("-o,--output", inspect_opt->output, "table (default) | json");
  inspect->callback([inspect_opt, &action] { action = [inspect_opt] { return run_cert_inspect(*inspect_opt); }; });
}

}  // namespace mg::ctl
