// control/server.h — meshguard-control: the CA service, the resource store behind the admin API,
// and distribution of per-workload snapshots to connected proxies (gRPC over mTLS, api/).
//
// Data directory (created on first start, 0700):
//   store.db          the resources (SQLite, WAL; control/store.h) — not with --store etcd://
//                     (the resources, registrations, built-in CAs and token-signing key are in etcd,
//                     with each replica's live endpoints: docs/ETCD.md)
//   ca/               the built-in CA (Istio cacerts layout, ca/authority.h) unless --plug-in-ca or etcd
//   meshes/<name>/ca/ the built-in CA of another mesh (mesh_cas.h); not with etcd, nor for a
//                     plugged-in one; meshes/<name>.retired-<unix time>/ a deleted mesh's
//   token-key.pem     P-256 key that signs bootstrap tokens (0600); not with etcd
//   control/          the control plane's own serving SVID, re-issued at every start
//   admin/            an admin SVID (key.pem 0600, cert-chain.pem, root-cert.pem) for meshguardctl
//
// Authentication: proxies bootstrap with a token bound to namespace + service account and then
// renew and watch with their SVID; the admin API requires the admin SVID. Namespace
// meshguard-system is reserved: no token is ever minted or accepted for it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "control/etcd_keys.h"

namespace mg::control {

struct ServerOptions {
  std::string data_dir;
  // "" (SQLite in data_dir) or "etcd://HOST:PORT[,HOST:PORT...]": replicas sharing one etcd
  // (etcd's endpoints are parsed from it; prefix and TLS files are in `etcd`). Without
  // plug_in_ca_dir the replicas share the built-in CA kept in etcd (control/etcd_ca.h).
  std::string store;
  EtcdOptions etcd;
  std::string listen = "127.0.0.1:15012";  // port 0: kernel-chosen (see ControlPlane::address)
  std::string trust_domain = "cluster.local";  // for a new built-in CA only
  std::string plug_in_ca_dir;                  // an operator's cacerts directory, read at every start
  // On etcd without plug_in_ca_dir: a file (0600, 32+ bytes) whose key seals the CA's private key
  // and the token key kept in etcd; empty: they are kept in clear (docs/ETCD.md).
  std::string seal_key_file;
  // On etcd: the TTL of this replica's etcd lease (etcd_lease.h: its live registrations and, with
  // the built-in CA, its CA-rotation acknowledgement key and, while it leads a rotation, the
  // election key). A dead replica's keys vanish within it.
  std::chrono::seconds etcd_lease_ttl{5};
  std::string metrics_listen;                  // "127.0.0.1:15014"; empty: no metrics endpoint
  std::chrono::milliseconds push_debounce{100};
  // How long a proxy whose stream ended stays listed (unhealthy) in its services' endpoints.
  std::chrono::milliseconds endpoint_grace{10'000};
  // How long `workload list` keeps showing a proxy whose stream ended (CONNECTED no) before it
  // is dropped; a registered Workload stays listed (without its proxy's state).
  std::chrono::milliseconds forget_disconnected{5 * 60'000};
  // Optional: also accept Kubernetes service-account tokens from this issuer (projected tokens with
  // `audience`), verified with the JWKS in `k8s_jwks_file` (e.g. the cluster's /openid/v1/jwks).
  std::string k8s_issuer;
  std::string k8s_jwks_file;
  std::string k8s_audience = "meshguard";
  // The control plane's own identities in data_dir — control/ (its serving certificate) and
  // admin/ (meshguardctl's) — are issued with this lifetime and issued again while it runs once
  // half of it has passed.
  std::chrono::seconds own_certificate_ttl = std::chrono::hours(24 * 30);
  // How often the control plane checks those, and reads k8s_jwks_file again (a changed file
  // replaces the keys); gRPC re-reads the serving certificate as often.
  std::chrono::seconds housekeeping_interval = std::chrono::seconds(60);
};

class ControlPlane {
 public:
  static Result<std::unique_ptr<ControlPlane>> open(const ServerOptions& options);
  ~ControlPlane();

  Status start();
  std::string address() const;          // "127.0.0.1:PORT" once started
  std::string metrics_address() const;  // "" without a metrics endpoint
  const std::string& trust_domain() const;
  void shutdown();  // closes every stream; returns when the server has stopped
  void wait();

  struct Impl;

 private:
  explicit ControlPlane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mg::control
