// meshguardctl ca init | ca init --plug-in | ca rotate — create, adopt and rotate the mesh CA.
// Everything is built and validated in memory before the first file is written; each file is
// then replaced atomically (keys 0600), so a refused command leaves the directory untouched.
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "ca/authority.h"
#include "commands.h"
#include "common/files.h"

namespace mg::ctl {

namespace {

struct CaInitOptions {
  std::string dir;
  std::string trust_domain;
  std::string key_type = "ec-p256";
  std::string plug_in_dir;
  bool force = false;
};

bool same_directory(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  auto ca = std::filesystem::weakly_canonical(a, ec1);
  auto cb = std::filesystem::weakly_canonical(b, ec2);
  return !ec1 && !ec2 && ca == cb;
}

void print_summary(const char* what, const std::string& dir, const ca::Authority& authority) {
  std::cout << what << " CA for trust domain " << authority.trust_domain() << " in " << dir << "\n"
            << "  ca-cert SHA-256 fingerprint: " << crypto::cert_sha256_fingerprint(authority.ca_cert()) << "\n"
            << "  roots in root-cert.pem:      " << authority.bundle().roots().size() << "\n";
}

int run_ca_init(const CaInitOptions& opt) {
  std::time_t now = std::time(nullptr);
  bool plug_in = !opt.plug_in_dir.empty();
  bool adopting_in_place = plug_in && same_directory(opt.plug_in_dir, opt.dir);
  if (!opt.force && !adopting_in_place && files::exists(opt.dir + "/" + ca::kCaKeyFile))
    return fail_line(opt.dir + " already holds a CA (ca-key.pem exists); use 'ca rotate', or --force to replace it");

  auto authority = [&]() -> Result<ca::Authority> {
    if (plug_in) return ca::Authority::load_plug_in_dir(opt.plug_in_dir, opt.trust_domain, now);
    auto key_type = crypto::parse_key_type(opt.key_type);
    if (!key_type) return fail(key_type.error());
    return ca::Authority::create_self_signed(opt.trust_domain, *key_type, now);
  }();
  if (!authority) return fail_line(authority.error().to_string());
  if (auto st = authority->save_dir(opt.dir); !st) return fail_line(st.error().to_string());
  print_summary(plug_in ? "plugged in" : "initialized", opt.dir, *authority);
  return 0;
}

int run_ca_rotate(const std::string& dir) {
  std::time_t now = std::time(nullptr);
  auto authority = ca::Authority::load_dir(dir, now);
  if (!authority) return fail_line(authority.error().to_string());
  auto rotated = authority->rotate(now);
  if (!rotated) return fail_line(rotated.error().to_string());
  if (auto st = rotated->save_dir(dir); !st) return fail_line(st.error().to_string());
  print_summary("rotated", dir, *rotated);
  return 0;
}

}  // namespace

void register_ca_commands(CLI::App& app, Action& action) {
  auto* ca = app.add_subcommand("ca", "Create, plug in and rotate the mesh certificate authority");
  ca->require_subcommand(1);

  auto opt = std::make_shared<CaInitOptions>();
  auto* init = ca->add_subcommand("init", "Create a self-signed root CA, or adopt an operator's CA (--plug-in)");
  init->add_option("--dir", opt->dir, "CA directory to write (root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem)")
      ->required();
  init->add_option("--trust-domain", opt->trust_domain, "SPIFFE trust domain, e.g. cluster.local")->required();
  // Validated by run_ca_init (crypto::parse_key_type), so a bad value is one clear stderr line.
  auto* key_type = init->add_option("--key-type", opt->key_type, "ec-p256 (default) | rsa-2048 | rsa-3072");
  init->add_option("--plug-in", opt->plug_in_dir,
                   "operator cacerts directory (ca-cert.pem, ca-key.pem 0600, cert-chain.pem, root-cert.pem)")
      ->excludes(key_type);
  init->add_flag("--force", opt->force, "replace a CA that already exists in --dir");
  init->callback([opt, &action] { action = [opt] { return run_ca_init(*opt); }; });

  struct RotateOptions {
    std::string dir, server, admin_dir;
    int wait = 30;
  };
  auto ro = std::make_shared<RotateOptions>();
  const char* server_env = std::getenv("MESHGUARD_SERVER");
  const char* admin_env = std::getenv("MESHGUARD_ADMIN_DIR");
  ro->server = server_env ? server_env : "127.0.0.1:15012";
  ro->admin_dir = admin_env ? admin_env : "";
  auto* rotate = ca->add_subcommand(
      "rotate",
      "Replace the root; the bundle keeps old roots until they expire. With --dir: offline, on a CA directory. "
      "Without: through the running control plane (new bundle to every proxy first, then the new root signs); "
      "--mesh NAME: mesh NAME's CA, its proxies only");
  rotate->add_option("--dir", ro->dir, "CA directory (offline rotation)");
  rotate->add_option("--server", ro->server, "control plane address (env MESHGUARD_SERVER)");
  rotate->add_option("--admin-dir", ro->admin_dir, "admin identity directory (env MESHGUARD_ADMIN_DIR)");
  rotate->add_option("--wait", ro->wait, "seconds to wait for every proxy to acknowledge the new bundle")
      ->check(CLI::Range(1, 600));
  rotate->callback([ro, &action] {
    action = [ro] {
      if (!ro->dir.empty()) return run_ca_rotate(ro->dir);
      return rotate_ca_online(ro->server, ro->admin_dir, ro->wait);
    };
  });
}

}  // namespace mg::ctl
