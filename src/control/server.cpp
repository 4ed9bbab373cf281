// control/server.cpp — the control plane's lifecycle: open() loads (or creates) the CA, the
// bootstrap keys, the store and the control plane's own identities; start() serves the three gRPC
// services and the metrics endpoint and runs the distributor and housekeeping; shutdown() stops
// them in order. Each concern is a component of its own (see docs/ARCHITECTURE.md):
//   ca_rotation          the signing CA and its two-phase rotation
//   bootstrap_credentials token-signing key, Kubernetes JWKS
//   model                the immutable configuration view
//   registry             registered proxies and their grace period; computed endpoints
//   distributor          per-proxy records, debounced snapshot push
//   watch_service        ConfigService.Watch streams
//   certificate_service  CertificateService.Sign
//   admin_service        AdminService (meshguardctl)
//   console_service      ConsoleService (meshguardctl dashboard) and the console's telemetry window
//   own_identity         control/ and admin/ SVIDs, renewed at half-life
//   metrics_endpoint     /metrics and /healthz/ready
// This file only wires them and runs housekeeping (own identities, the Kubernetes JWKS).
#include "control/server.h"

#include <unistd.h>

#include <cstdio>
#include <thread>

#include "api/grpc_tls.h"
#include "ca/authority.h"
#include "common/files.h"
#include "common/thread_annotations.h"
#include "control/admin_service.h"
#include "control/bootstrap_credentials.h"
#include "control/ca_rotation.h"
#include "control/certificate_service.h"
#include "control/console_service.h"
#include "control/distributor.h"
#include "control/etcd_ca.h"
#include "control/etcd_ca_rotation.h"
#include "control/etcd_lease.h"
#include "control/etcd_live.h"
#include "control/etcd_store.h"
#include "control/mesh_cas.h"
#include "control/metrics_endpoint.h"
#include "control/model.h"
#include "control/own_identity.h"
#include "control/store.h"
#include "control/support.h"
#include "control/watch_service.h"
#include "telemetry/metrics.h"

namespace mg::control {

struct ControlPlane::Impl {
  ServerOptions options;
  telemetry::Registry metrics;  // first: every component below reports into it
  std::string td;               // the trust domain: fixed for the life of the CA
  std::unique_ptr<Store> store;
  std::unique_ptr<CaRotation> ca;
  std::unique_ptr<BootstrapCredentials> bootstrap;
  std::unique_ptr<MeshCas> mesh_cas;  // the other meshes' CAs (docs/MESHES.md)
  std::unique_ptr<ConfigModel> model;
  std::unique_ptr<OwnIdentities> own;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Distributor> distributor;
  // Replicas on etcd: the store (also in `store`), this replica's lease and the live endpoints
  // shared through it (started once serving: the replica's id names its port).
  EtcdStore* etcd_store = nullptr;
  std::unique_ptr<ReplicaLease> etcd_lease;
  std::unique_ptr<EtcdLive> etcd_live;
  // With the built-in CA: the store again, the seal key and the rotation led through etcd.
  EtcdStore* etcd = nullptr;
  std::optional<SealKey> seal;
  std::unique_ptr<EtcdCaRotation> etcd_rotation;

  std::unique_ptr<grpc::Service> certificate_service, watch_service;
  std::unique_ptr<AdminService> admin_service;
  std::unique_ptr<ConsoleService> console_service;
  std::unique_ptr<grpc::Server> server;
  int bound_port = 0;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint;

  std::thread housekeeping_thread;
  Mutex stop_mutex;
  CondVar stop_cv;
  bool stopping MG_GUARDED_BY(stop_mutex) = false;

  // Every housekeeping_interval: the own identities' renewal and the Kubernetes JWKS re-read.
  void housekeeping_loop() {
    while (true) {
      {
        MutexLock lock(stop_mutex);
        const auto until = std::chrono::steady_clock::now() + options.housekeeping_interval;
        while (!stopping && stop_cv.wait_until(lock, until)) {
        }
        if (stopping) return;
      }
      (void)own->renew(*ca->signer(), /*at_start=*/false);
      bootstrap->reload_k8s_jwks();
    }
  }
};

namespace {
// This replica among its peers on etcd (its etcd keys' name, shown in "led by replica ..."):
// host:port plus a random tag, unique even for replicas restarted on the same port.
std::string replica_id(int port) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "replica");
  for (char* c = host; *c; ++c) {
    if (*c == '/') *c = '_';
  }
  auto tag = crypto::random_bytes(4);
  return std::string(host) + ":" + std::to_string(port) + "#" + (tag ? crypto::hex(tag->data(), tag->size()) : "0");
}
}  // namespace

ControlPlane::ControlPlane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlPlane::~ControlPlane() { shutdown(); }

Result<std::unique_ptr<ControlPlane>> ControlPlane::open(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const std::string& dir = options.data_dir;
  if (dir.empty()) return fail("control.no_data_dir", "--data-dir is required");
  const bool on_etcd = !options.store.empty();
  const bool plug_in = !options.plug_in_ca_dir.empty();
  // --seal-key seals the built-in CA kept in etcd (and the token key); a plugged-in CA's own key
  // seals the token key, and SQLite keeps its CA in the data dir.
  std::optional<SealKey> seal;
  if (!options.seal_key_file.empty()) {
    if (!on_etcd)
      return fail("control.seal_key", "--seal-key seals the CA kept in etcd: it needs --store etcd://...");
    if (plug_in)
      return fail(
          "control.seal_key",
          "--seal-key seals the built-in CA kept in etcd; with --plug-in-ca the shared token key is sealed "
          "under the plugged-in CA's key: give one of them");
    auto key = read_seal_key_file(options.seal_key_file);
    if (!key) return fail(key.error());
    seal = std::move(*key);
  }
  std::unique_ptr<EtcdStore> etcd;
  if (on_etcd) {
    EtcdOptions eo = options.etcd;
    auto endpoints = parse_etcd_url(options.store);
    if (!endpoints) return fail(endpoints.error());
    eo.endpoints = std::move(*endpoints);
    auto opened = open_etcd_store(eo);
    if (!opened) return fail(opened.error());
    etcd = std::move(*opened);
  }
  if (auto st = files::make_dirs(dir, 0700); !st) return fail(st.error());
  const auto now = unix_now();

  // CA: an operator's plugged-in CA, or the built-in one (created on first start) — in the data
  // dir, or, for replicas on etcd, in etcd (etcd_ca.h), so that every replica signs with it.
  const std::string ca_dir = dir + "/ca";
  if (!plug_in && !on_etcd) {
    if (auto st = CaRotation::complete_interrupted(dir); !st) return fail(st.error());
  }
  Result<ca::Authority> loaded = fail("control.ca", "no CA");
  if (plug_in) {
    if (etcd) {
      if (auto st = check_no_shared_ca(*etcd, options.etcd.prefix); !st) return fail(st.error());
    }
    loaded = ca::Authority::load_plug_in_dir(options.plug_in_ca_dir, options.trust_domain, now);
  } else if (etcd) {
    bool created = false;
    auto shared =
        open_shared_ca(*etcd, options.etcd.prefix, options.trust_domain, seal ? &*seal : nullptr, &created);
    if (!shared) return fail(shared.error());
    const std::string where = etcd_shared_key(options.etcd.prefix, kSharedCaName);
    log_line(std::string(created ? "created the built-in CA at " : "signing with the built-in CA at ") +
             where + " (in etcd, shared by every replica)");
    if (!seal)
      log_line("WARNING: the CA's private key is kept in etcd in clear (no --seal-key): whoever can read " +
               where +
               " can sign certificates for the whole mesh; etcd's access control is its only guard "
               "(docs/ETCD.md, docs/SECURITY.md)");
    loaded = ca::Authority::from_pem(shared->trust_domain, shared->current, now);
  } else if (files::exists(ca_dir + "/" + ca::kCaKeyFile)) {
    loaded = ca::Authority::load_dir(ca_dir, now);
  } else {
    loaded = ca::Authority::create_self_signed(options.trust_domain, crypto::KeyType::EcP256, now);
    if (loaded) {
      if (auto st = loaded->save_dir(ca_dir); !st) return fail(st.error());
    }
  }
  if (!loaded) return fail(loaded.error());
  auto authority = std::make_shared<const ca::Authority>(std::move(*loaded));
  impl->td = authority->trust_domain();
  const std::string td = impl->td;
  // Only the data dir's built-in CA is persisted by a rotation; on etcd, rotations are led through
  // etcd (etcd_ca_rotation.h, from start()).
  impl->ca = std::make_unique<CaRotation>(std::move(authority), dir, !plug_in && !on_etcd, impl->metrics);

  // Bootstrap-token signing key, and the Kubernetes issuer when configured. On etcd the key is
  // shared (the first replica to start creates it), so a token minted by one replica works on all;
  // it is kept sealed under the plugged-in CA's key or the --seal-key key (sealed_secret.h):
  // reading etcd does not give it away.
  std::string shared_token_key;
  std::optional<SealKey> token_seal = seal;  // also seals the other meshes' CAs kept in etcd
  if (etcd) {
    if (plug_in) {
      auto from_ca = SealKey::from_ca_key(impl->ca->signer()->to_pem().ca_key);
      if (!from_ca) return fail(from_ca.error());
      token_seal = std::move(*from_ca);
    }
    auto pem = open_shared_token_key(*etcd, options.etcd.prefix, token_seal ? &*token_seal : nullptr);
    if (!pem) return fail(pem.error());
    shared_token_key = std::move(*pem);
  }
  auto bootstrap = BootstrapCredentials::open({dir, api::control_plane_id(td).str(), options.k8s_issuer,
                                               options.k8s_jwks_file, options.k8s_audience, shared_token_key},
                                              impl->metrics);
  if (!bootstrap) return fail(bootstrap.error());
  impl->bootstrap = std::move(*bootstrap);

  impl->seal = std::move(seal);
  if (etcd) {
    impl->etcd_store = etcd.get();
    if (!plug_in) impl->etcd = etcd.get();
    impl->store = std::move(etcd);
  } else {
    auto store = open_sqlite_store(dir + "/store.db");
    if (!store) return fail(store.error());
    impl->store = std::move(*store);
  }
  // Other meshes' built-in CAs: in the data dir, or, for replicas on etcd, in etcd (sealed as the
  // token key is), so that every replica signs for every mesh; or plugged in (Mesh.spec.ca.pluginDir).
  impl->mesh_cas = impl->etcd_store
                       ? std::make_unique<MeshCas>(*impl->etcd_store, std::move(token_seal), impl->metrics)
                       : std::make_unique<MeshCas>(dir, impl->metrics);
  impl->model =
      std::make_unique<ConfigModel>(*impl->store, *impl->ca, td, impl->metrics, impl->mesh_cas.get());
  if (auto st = impl->model->rebuild(); !st) return fail(st.error());
  if (const auto* mesh = impl->model->current()->mesh.resource; mesh && mesh->trust_domain != td)
    return fail("control.trust_domain_mismatch",
                "the stored Mesh names trust domain " + mesh->trust_domain + " but the CA's is " + td);

  // Own serving certificate (issued at every start) and an admin identity for meshguardctl;
  // both renewed while running (housekeeping_loop).
  impl->own = std::make_unique<OwnIdentities>(dir, td, options.own_certificate_ttl, impl->metrics);
  if (auto st = impl->own->renew(*impl->ca->signer(), /*at_start=*/true); !st) return fail(st.error());
  impl->registry = std::make_unique<Registry>(options.endpoint_grace);
  // The registrations of the last run: the first proxies to reconnect are sent the endpoints of
  // peers that have not reconnected yet, rather than a partial set (503 UH for the rest).
  auto saved = impl->store->registrations();
  if (!saved) return fail(saved.error());
  const auto restored = impl->registry->restore(*saved, std::chrono::steady_clock::now(), unix_now());
  for (const auto& e : restored.errors) log_line("registration dropped: " + e);
  if (!saved->empty())
    log_line("restored " + std::to_string(restored.restored) +
             " registrations (live for the endpoint grace, " +
             std::to_string(options.endpoint_grace.count()) + " ms, unless their proxies reconnect); " +
             std::to_string(restored.expired) + " expired");
  impl->distributor =
      std::make_unique<Distributor>(*impl->model, *impl->registry, *impl->store, impl->metrics,
                                    options.push_debounce, options.forget_disconnected);
  return std::unique_ptr<ControlPlane>(new ControlPlane(std::move(impl)));
}

Status ControlPlane::start() {
  Impl& s = *impl_;
  s.certificate_service = make_certificate_service({s.td, *s.model, *s.ca, *s.bootstrap, s.metrics});
  s.console_service = ConsoleService::create(s.td, *s.model, *s.distributor);
  s.watch_service = make_watch_service(*s.distributor, *s.model, *s.console_service);
  s.admin_service = AdminService::create({s.td, *s.store, *s.model, *s.distributor, *s.ca, *s.bootstrap,
                                          s.metrics, *s.registry, s.mesh_cas.get()});
  grpc::ServerBuilder builder;
  const std::string own_dir = s.options.data_dir + "/control";
  builder.AddListeningPort(s.options.listen,
                           api::server_credentials(own_dir + "/serving.pem", own_dir + "/root-cert.pem",
                                                   s.options.housekeeping_interval),
                           &s.bound_port);
  builder.RegisterService(s.certificate_service.get());
  builder.RegisterService(s.watch_service.get());
  builder.RegisterService(s.admin_service->service());
  builder.RegisterService(s.console_service->service());
  builder.SetMaxReceiveMessageSize(static_cast<int>(api::kMaxMessageBytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  // Proxies send ACKs of a few bytes: probing their bandwidth only adds a PING round per message.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  s.server = builder.BuildAndStart();
  if (!s.server || s.bound_port == 0) return fail("control.bind", "cannot listen on " + s.options.listen);

  if (!s.options.metrics_listen.empty()) {
    auto endpoint = MetricsEndpoint::start(s.options.metrics_listen, s.metrics);
    if (!endpoint) return fail(endpoint.error());
    s.metrics_endpoint = std::move(*endpoint);
  }
  s.metrics.describe("pilot_xds", "Proxies with an open config stream");
  s.metrics.describe("pilot_xds_pushes", "Snapshots sent to proxies (type=snapshot)");
  s.metrics.describe("pilot_total_xds_rejects", "Snapshots a proxy refused (NACK) (type=snapshot)");
  s.metrics.describe(
      "pilot_proxy_convergence_time",
      "Seconds from a change (apply/delete/CA rotation) to its snapshot being sent to a proxy");
  s.metrics.describe("meshguard_push_ack_latency_milliseconds", "From a change to the proxy's ACK of it");
  s.metrics.describe("meshguard_proxy_config_revision",
                     "Store revision of the snapshot each proxy last ACKed");
  s.metrics.describe("meshguard_csr_total", "Certificate requests by result and kind (bootstrap|renewal)");
  s.metrics.describe("meshguard_mesh_proxies_connected", "Proxies with an open config stream, per mesh");
  s.metrics.describe("meshguard_mesh_pushes_total", "Snapshots sent to proxies, per mesh");
  s.metrics.describe("meshguard_mesh_certificates_issued_total", "Workload certificates issued, per mesh");
  s.metrics.describe("meshguard_config_acks_total", "Snapshot ACKs and NACKs");
  s.metrics.describe("meshguard_config_reload_total",
                     "Re-reads of the Kubernetes JWKS file (resource=k8s_jwks) by result");
  s.metrics.describe("meshguard_own_certificate_issued_total",
                     "The control plane's own identities issued: identity (control|admin), result");
  s.metrics.describe("meshguard_own_certificate_expiry_timestamp_seconds",
                     "notAfter (Unix seconds) of the control plane's own identities");
  s.distributor->on_endpoints_changed(
      [admin = s.admin_service.get()](int64_t revision, const std::vector<Registry::Change>& changes) {
        admin->publish_endpoint_changes(revision, changes);
      });
  // Another replica's change (etcd): rebuilt and pushed like one applied here. Once more now, for
  // a change that came in between open() and this.
  s.store->on_external_change([d = s.distributor.get()] { d->mark_dirty(); });
  s.distributor->mark_dirty();
  s.distributor->start();
  if (s.etcd_store) {
    const std::string replica = replica_id(s.bound_port);
    auto lease = ReplicaLease::start(s.etcd_store->client(), s.options.etcd_lease_ttl);
    if (!lease) return fail(lease.error());
    s.etcd_lease = std::move(*lease);
    if (s.etcd) {
      auto rotation = EtcdCaRotation::start(
          {*s.etcd, *s.ca, *s.distributor, s.seal ? &*s.seal : nullptr, s.metrics, *s.etcd_lease}, replica);
      if (!rotation) return fail(rotation.error());
      s.etcd_rotation = std::move(*rotation);
    }
    s.mesh_cas->follow_etcd(*s.distributor, *s.etcd_lease, replica);  // the other meshes' built-in CAs
    s.etcd_live = EtcdLive::start({*s.etcd_store, *s.registry, *s.distributor, *s.etcd_lease}, replica);
    log_line("replica " + replica + ": live endpoints shared through etcd (lease " +
             std::to_string(s.options.etcd_lease_ttl.count()) + " s)");
  }
  s.housekeeping_thread = std::thread([&s] { s.housekeeping_loop(); });
  log_line("trust domain " + s.td + ", store revision " + std::to_string(s.model->current()->revision));
  return {};
}

std::string ControlPlane::address() const {
  auto colon = impl_->options.listen.rfind(':');
  return impl_->options.listen.substr(0, colon) + ":" + std::to_string(impl_->bound_port);
}

std::string ControlPlane::metrics_address() const {
  return impl_->metrics_endpoint ? impl_->metrics_endpoint->address() : "";
}

const std::string& ControlPlane::trust_domain() const { return impl_->td; }

void ControlPlane::shutdown() {
  Impl& s = *impl_;
  {
    MutexLock lock(s.stop_mutex);
    if (s.stopping) return;
    s.stopping = true;
    s.stop_cv.notify_all();
  }
  if (s.etcd_rotation) s.etcd_rotation->stop();  // calls off a rotation it leads
  s.mesh_cas->stop_following();                  // idem, the other meshes'
  if (s.etcd_live) s.etcd_live->stop();
  if (s.etcd_lease) s.etcd_lease->stop();  // revoked: this replica's keys go at once
  s.store->on_external_change(nullptr);  // the distributor goes before the store's watch thread
  s.distributor->stop();
  if (s.admin_service) s.admin_service->close_watchers();
  if (s.server) s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  s.distributor->join();
  s.ca->join();
  s.mesh_cas->join();
  if (s.housekeeping_thread.joinable()) s.housekeeping_thread.join();
  if (s.metrics_endpoint) s.metrics_endpoint->stop();
}

void ControlPlane::wait() {
  if (impl_->server) impl_->server->Wait();
}

}  // namespace mg::control
