// meshguard-control: the control plane (CA service, resource store, per-workload push).
//   meshguard-control --data-dir DIR [--listen 127.0.0.1:15012] [--metrics 127.0.0.1:15014]
//                     [--trust-domain TD] [--plug-in-ca CACERTS_DIR] [--debounce-ms 100] [--endpoint-grace 10s]
//                     [--forget-disconnected 5m]
//                     [--store etcd://HOST:PORT[,HOST:PORT...] [--etcd-prefix /meshguard/] [--seal-key FILE]
//                      [--etcd-cacert FILE [--etcd-cert FILE --etcd-key FILE]]]   (docs/ETCD.md)
//                     [--k8s-issuer ISS --k8s-jwks FILE [--k8s-audience meshguard]]
// Prints "listening grpc ADDR" (and "listening metrics ADDR") once serving; SIGTERM/SIGINT stop it.
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "ca/authority.h"
#include "common/version.h"
#include "control/etcd_keys.h"
#include "control/server.h"

int main(int argc, char** argv) {
  CLI::App app{std::string("meshguard-control ") + mg::version() + " — the meshguard control plane"};
  app.set_version_flag("--version", std::string("meshguard-control ") + mg::version());
  mg::control::ServerOptions options;
  int debounce_ms = 100;
  std::string endpoint_grace = "10s";
  std::string forget_disconnected = "5m";
  app.add_option("--data-dir", options.data_dir,
                 "store, CA, keys and identities (created 0700); with --store etcd:// only this replica's own "
                 "identities")
      ->required();
  std::string store = "sqlite";
  app.add_option("--store", store,
                 "sqlite (store.db in the data dir) or etcd://HOST:PORT[,HOST:PORT...]: replicas sharing one etcd "
                 "cluster, and the built-in CA kept there (or --plug-in-ca)")
      ->capture_default_str();
  app.add_option("--etcd-prefix", options.etcd.prefix, "with --store etcd://: the key prefix of this mesh's data")
      ->capture_default_str();
  app.add_option("--etcd-cacert", options.etcd.ca_file, "with --store etcd://: TLS to etcd, trusting these roots");
  app.add_option("--etcd-cert", options.etcd.cert_file, "with --store etcd://: client certificate (PEM) to etcd");
  app.add_option("--etcd-key", options.etcd.key_file, "with --store etcd://: its private key (PEM)");
  app.add_option("--seal-key", options.seal_key_file,
                 "with --store etcd:// and the built-in CA: a file (mode 0600, 32+ random bytes, e.g. openssl rand "
                 "-base64 32) whose key seals the CA's and the token's private keys in etcd; the same on every "
                 "replica (without it they are kept in clear)");
  app.add_option("--listen", options.listen, "gRPC address (port 0: any free port)")->capture_default_str();
  app.add_option("--metrics", options.metrics_listen, "Prometheus /metrics address, IPv4:PORT, e.g. 127.0.0.1:15014 (default: none)");
  app.add_option("--trust-domain", options.trust_domain, "trust domain of a new built-in CA")->capture_default_str();
  app.add_option("--plug-in-ca", options.plug_in_ca_dir, "an operator's cacerts directory instead of the built-in CA");
  app.add_option("--k8s-issuer", options.k8s_issuer, "also accept Kubernetes service-account tokens from this issuer");
  app.add_option("--k8s-jwks", options.k8s_jwks_file, "that issuer's JWKS file (its /openid/v1/jwks)");
  app.add_option("--k8s-audience", options.k8s_audience, "audience the service-account token must carry")
      ->capture_default_str();
  app.add_option("--debounce-ms", debounce_ms, "wait this long after a change before pushing")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  app.add_option("--endpoint-grace", endpoint_grace,
                 "how long a proxy whose stream ended stays among its services' endpoints (listed unhealthy), "
                 "e.g. 10s, 1m")
      ->capture_default_str();
  app.add_option("--forget-disconnected", forget_disconnected,
                 "how long `workload list` keeps showing a proxy whose stream ended (CONNECTED no) before "
                 "dropping it, e.g. 30s, 5m")
      ->capture_default_str();
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("meshguard-control: ") + e.what() + " (see --help)\n";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (store != "sqlite") {
    if (!mg::control::is_etcd_url(store)) {
      std::fprintf(stderr, "meshguard-control: --store: expected sqlite or etcd://HOST:PORT[,HOST:PORT...] (see --help)\n");
      return 2;
    }
    options.store = store;
  } else if (!options.etcd.ca_file.empty() || !options.etcd.cert_file.empty() || !options.etcd.key_file.empty()) {
    std::fprintf(stderr, "meshguard-control: --etcd-* flags need --store etcd://... (see --help)\n");
    return 2;
  }
  options.push_debounce = std::chrono::milliseconds(debounce_ms);
  auto grace = mg::ca::parse_duration(endpoint_grace);
  if (!grace) {
    std::fprintf(stderr, "meshguard-control: --endpoint-grace: %s (see --help)\n", grace.error().to_string().c_str());
    return 2;
  }
  options.endpoint_grace = *grace;
  auto forget = mg::ca::parse_duration(forget_disconnected);
  if (!forget) {
    std::fprintf(stderr, "meshguard-control: --forget-disconnected: %s (see --help)\n",
                 forget.error().to_string().c_str());
    return 2;
  }
  options.forget_disconnected = *forget;

  // Signals are taken synchronously by one thread, so shutdown runs as ordinary code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto cp = mg::control::ControlPlane::open(options);
  if (!cp) {
    std::fprintf(stderr, "meshguard-control: %s\n", cp.error().to_string().c_str());
    return 1;
  }
  if (auto st = (*cp)->start(); !st) {
    std::fprintf(stderr, "meshguard-control: %s\n", st.error().to_string().c_str());
    return 1;
  }
  std::printf("listening grpc %s\n", (*cp)->address().c_str());
  if (!(*cp)->metrics_address().empty()) std::printf("listening metrics %s\n", (*cp)->metrics_address().c_str());
  std::printf("admin identity %s/admin\n", options.data_dir.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "meshguard-control: signal %d, shutting down\n", sig);
  (*cp)->shutdown();
  return 0;
}
