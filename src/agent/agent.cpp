#include "agent/agent.h"

#include <openssl/x509.h>
#include <sys/stat.h>

#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "api/grpc_tls.h"
#include "common/files.h"
#include "common/time.h"
#include "common/version.h"
#include "crypto/openssl.h"
#include "identity/svid.h"
#include "meshguard/v1/meshguard.grpc.pb.h"
#include "policy/engine.h"
#include "policy/parse.h"
#include "policy/path.h"
#include "tls/tls.h"

namespace mg::agent {
namespace pb = ::meshguard::v1;
using Clock = std::chrono::steady_clock;

const char* to_string(CertState s) {
  switch (s) {
    case CertState::Initializing: return "Initializing";
    case CertState::Available: return "Available";
    case CertState::Unavailable: return "Unavailable";
  }
  return "Unavailable";
}

namespace {

void log_line(const std::string& line) {
  std::fprintf(stderr, "meshguard-proxy agent: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// ±10% of `base`, so a fleet started together does not renew together.
std::chrono::milliseconds jitter(std::chrono::milliseconds base) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int64_t> d(-base.count() / 10, base.count() / 10);
  return base + std::chrono::milliseconds(d(rng));
}

pb::WatchRequest telemetry_message(const telemetry::InsightBatch& batch) {
  pb::WatchRequest req;
  auto* t = req.mutable_telemetry();
  for (const auto& f : batch.flows) {
    auto* c = t->add_flows();
    c->set_source_principal(f.source_principal);
    c->set_mtls(f.mtls);
    c->set_allowed(f.allowed);
    c->set_policy(f.policy);
    c->set_requests(f.requests);
    c->set_method(f.method);
    c->set_path_prefix(f.path_prefix);
  }
  for (const auto& d : batch.decisions) {
    auto* s = t->add_decisions();
    s->set_time_unix_ms(d.time_unix_ms);
    s->set_source_principal(d.source_principal);
    s->set_source_address(d.source_address);
    s->set_method(d.method);
    s->set_path(d.path);
    s->set_status(d.status);
    s->set_policy(d.policy);
    s->set_rule(d.rule);
    s->set_reason(d.reason);
    s->set_allowed(d.allowed);
    s->set_audit(d.audit);
    s->set_mtls(d.mtls);
  }
  t->set_flows_dropped(batch.flows_dropped);
  t->set_decisions_dropped(batch.decisions_dropped);
  return req;
}

}  // namespace

struct AgentState {
  AgentOptions o;
  std::vector<std::string> control_planes;  // o.control_plane split at commas
  std::atomic<size_t> control_plane_index{0};
  // The replica in use; next_control_plane() moves on after `used` failed (unless another
  // thread moved on already), so the renewal and the watch do not skip one between them.
  std::string control_plane() const { return control_planes[control_plane_index.load() % control_planes.size()]; }
  void next_control_plane(const std::string& used) {
    if (control_planes.size() < 2) return;
    size_t i = control_plane_index.load();
    if (control_planes[i % control_planes.size()] != used) return;
    if (control_plane_index.compare_exchange_strong(i, i + 1))
      log_line("moving from control plane " + used + " to " + control_plane());
  }
  Agent::Hooks hooks;
  mutable std::mutex mutex;
  std::condition_variable cv;
  bool stopping = false;
  AgentStatus st;
  std::string last_policies;  // the last accepted snapshot's YAML (restored if the proxy refuses a new one)
  grpc::ClientContext* watch_ctx = nullptr;
  std::thread renew_thread, watch_thread;

  std::string path(const char* name) const { return o.state_dir + "/" + name; }

  std::string trust_domain = "cluster.local";  // the control plane's (its serving identity's)

  // The roots to trust for the control plane: those pushed with the last snapshot (they follow
  // CA rotations; a proxy of another mesh than the default is sent them apart from its mesh's
  // bundle, control-plane-roots.pem), else the operator-provided bundle.
  Result<std::string> control_plane_roots() const {
    if (files::exists(path("control-plane-roots.pem"))) {
      auto pushed = files::read_file(path("control-plane-roots.pem"));
      if (pushed && !pushed->empty()) return pushed;
    }
    if (files::exists(path("root-cert.pem"))) {
      auto pushed = files::read_file(path("root-cert.pem"));
      if (pushed && !pushed->empty()) return pushed;
    }
    return files::read_file(o.ca_bundle_file);
  }

  Result<std::shared_ptr<const tls::Credentials>> current_credentials() const {
    return tls::load_credentials(
        {path("cert-chain.pem"), path("key.pem"), path("root-cert.pem"), path("federated-bundles.pem")},
        std::time(nullptr));
  }

  // Several meshes (docs/MESHES.md): the control plane's roots for a proxy of another mesh, and
  // the federated trust domains' bundles. Returns whether a file changed.
  Result<bool> write_mesh_files(const std::string& control_plane_bundle, const std::string& federated) {
    bool changed = false;
    auto write_if_changed = [&](const char* name, const std::string& text, bool remove_when_empty) -> Status {
      const bool present = files::exists(path(name));
      if (!present && text.empty()) return {};
      if (present && text.empty() && remove_when_empty) {
        changed = true;
        return files::write_file_atomic(path(name), "", 0644);
      }
      auto old = files::read_file(path(name));
      if (old && *old == text) return {};
      changed = true;
      return files::write_file_atomic(path(name), text, 0644);
    };
    if (auto st = write_if_changed("control-plane-roots.pem", control_plane_bundle, true); !st)
      return fail(st.error());
    if (auto st = write_if_changed("federated-bundles.pem", federated, true); !st) return fail(st.error());
    return changed;
  }

  void refresh_cert_status() {
    auto creds = current_credentials();
    std::lock_guard lock(mutex);
    if (creds) {
      st.cert_state = CertState::Available;
      st.spiffe_id = (*creds)->own_id.str();
      st.serial = (*creds)->serial_hex;
      st.not_after = (*creds)->not_after;
    } else if (st.cert_state == CertState::Available) {
      st.cert_state = CertState::Unavailable;
    }
  }

  Status sign(bool with_token);
  Status handle_snapshot(const pb::ConfigSnapshot& snap, std::string& error_out);
  // One Watch stream; returns after the first snapshot when `first_only`.
  Status watch_once(bool first_only);
  void renew_loop();
  void watch_loop();
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    return !cv.wait_for(lock, d, [&] { return stopping; });
  }
};

Status AgentState::sign(bool with_token) {
  auto roots = control_plane_roots();
  if (!roots) return fail(roots.error());
  std::optional<api::SvidFiles> own;
  std::string token;
  if (with_token) {
    if (o.token_file.empty()) return fail("agent.no_token", "no valid certificate and no --token-file to bootstrap with");
    auto t = files::read_file(o.token_file);
    if (!t) return fail(t.error());
    token = trim(*t);
  } else {
    auto files = api::load_svid_dir(o.state_dir);
    if (!files) return fail(files.error());
    own = std::move(*files);
  }
  auto key = crypto::generate_key(crypto::KeyType::EcP256);
  if (!key) return fail(key.error());
  auto csr = crypto::make_csr(key->get());
  if (!csr) return fail(csr.error());
  unsigned char* der = nullptr;
  int der_len = i2d_X509_REQ(csr->get(), &der);
  if (der_len <= 0) return fail("agent.csr", "cannot encode the CSR");
  pb::SignRequest req;
  req.set_csr_der(std::string(reinterpret_cast<char*>(der), static_cast<size_t>(der_len)));
  OPENSSL_free(der);

  const std::string address = control_plane();
  auto channel = api::make_channel(address, *roots, own);
  auto stub = pb::CertificateService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (with_token) ctx.AddMetadata("authorization", "Bearer " + token);
  pb::SignResponse resp;
  auto status = stub->Sign(&ctx, req, &resp);
  if (!status.ok()) {
    // Refusals are final for this token or certificate; only an unreachable control plane is worth retrying.
    const bool refused = status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                         status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
                         status.error_code() == grpc::StatusCode::INVALID_ARGUMENT;
    if (!refused) next_control_plane(address);
    return fail(refused ? "agent.refused" : "agent.sign", "certificate request refused: " + api::describe(status));
  }
  if (auto ok = api::check_control_plane_identity(ctx, trust_domain); !ok) return ok;

  // Check what came back before it replaces anything: a valid SVID, for the identity we run as.
  // Its trust domain is the control plane's, or, for a proxy of another mesh (the token says
  // which), that mesh's (docs/MESHES.md).
  auto chain = crypto::parse_cert_chain_pem(resp.cert_chain_pem());
  if (!chain) return fail(chain.error());
  std::string workload_td = trust_domain;
  if (!resp.mesh_name().empty() && !chain->empty()) {
    if (auto leaf = identity::spiffe_id_of(chain->front().get()); leaf)
      workload_td = std::string(leaf->trust_domain());
  }
  auto bundle = identity::TrustBundle::from_pem(workload_td, resp.trust_bundle_pem());
  if (!bundle) return fail(bundle.error());
  auto id = identity::verify_svid(*chain, *bundle, std::time(nullptr));
  if (!id) return fail(id.error().to_error());
  auto expected = identity::SpiffeId::istio(workload_td, o.ns, o.service_account);
  if (!expected || !(*id == *expected))
    return fail("agent.wrong_identity", "the control plane issued " + id->str() + " but this workload runs as " +
                                            (expected ? expected->str() : o.ns + "/" + o.service_account));
  if (auto st = write_mesh_files(resp.control_plane_bundle_pem(), resp.federated_bundles()); !st)
    return fail(st.error());
  if (auto st = files::write_file_atomic(path("root-cert.pem"), resp.trust_bundle_pem(), 0644); !st) return st;
  if (auto st = files::write_file_atomic(path("key.pem"), crypto::private_key_to_pem(key->get()), 0600); !st) return st;
  if (auto st = files::write_file_atomic(path("cert-chain.pem"), resp.cert_chain_pem(), 0644); !st) return st;
  log_line(std::string(with_token ? "bootstrapped" : "renewed") + " " + id->str() + ", valid until " +
           timefmt::utc_rfc3339(static_cast<std::time_t>(resp.not_after_unix())));
  refresh_cert_status();
  return {};
}

Status AgentState::handle_snapshot(const pb::ConfigSnapshot& snap, std::string& error_out) {
  auto fail_with = [&](const Error& e) {
    error_out = e.to_string();
    return Status(fail(e));
  };
  // Parsed once, here: the proxy gets these very resources (on_config), not the file.
  auto parsed = policy::parse_resources(snap.policies_yaml(), "snapshot " + snap.version());
  if (!parsed) return fail_with(parsed.error());
  auto set = std::make_shared<const policy::ResourceSet>(std::move(*parsed));
  policy::WorkloadRef ref{o.ns, {snap.labels().begin(), snap.labels().end()}, o.service_account};
  if (!hooks.on_config) {
    // No proxy yet (bootstrap, before start()): validate with the engine the proxy runs, for this
    // workload, before anything is written. With a proxy, its compile (the one that is enforced,
    // with its mesh settings: proxy/policy_chain.cpp) is the validation.
    auto compiled = policy::compile_snapshot(*set, ref, policy::mesh_config_of(*set));
    if (!compiled) return fail_with(compiled.error());
  }

  auto previous = files::read_file(path("policies/snapshot.yaml"));
  if (auto st = files::make_dirs(path("policies"), 0700); !st) return fail_with(st.error());
  if (auto st = files::write_file_atomic(path("policies/snapshot.yaml"), snap.policies_yaml(), 0644); !st)
    return fail_with(st.error());
  bool bundle_changed = false;
  if (!snap.trust_bundle_pem().empty()) {
    auto old = files::read_file(path("root-cert.pem"));
    if (!old || *old != snap.trust_bundle_pem()) {
      if (auto st = files::write_file_atomic(path("root-cert.pem"), snap.trust_bundle_pem(), 0644); !st)
        return fail_with(st.error());
      bundle_changed = true;
    }
    auto mesh_files = write_mesh_files(snap.control_plane_bundle_pem(), snap.federated_bundles());
    if (!mesh_files) return fail_with(mesh_files.error());
    bundle_changed = bundle_changed || *mesh_files;
  }
  if (hooks.on_config) {
    if (auto st = hooks.on_config(set, "snapshot.yaml", snap.policies_yaml()); !st) {
      // The proxy refused it: put back what it enforces, so a restart loads the same.
      if (previous) (void)files::write_file_atomic(path("policies/snapshot.yaml"), *previous, 0644);
      return fail_with(st.error());
    }
  }
  if (bundle_changed && hooks.on_credentials) hooks.on_credentials();
  const std::time_t received = std::time(nullptr);
  nlohmann::json meta = {{"version", snap.version()}, {"revision", snap.revision()},
                         {"receivedUnix", static_cast<int64_t>(received)}, {"labels", ref.labels}};
  (void)files::write_file_atomic(path("snapshot.json"), meta.dump(2) + "\n", 0644);
  std::lock_guard lock(mutex);
  st.config_version = snap.version();
  st.config_revision = snap.revision();
  st.config_received = received;
  st.labels = ref.labels;
  return {};
}

Status AgentState::watch_once(bool first_only) {
  auto roots = control_plane_roots();
  if (!roots) return fail(roots.error());
  auto own = api::load_svid_dir(o.state_dir);
  if (!own) return fail(own.error());
  const std::string address = control_plane();
  auto channel = api::make_channel(address, *roots, *own);
  auto stub = pb::ConfigService::NewStub(channel);
  grpc::ClientContext ctx;
  {
    std::lock_guard lock(mutex);
    if (stopping) return {};
    watch_ctx = &ctx;
  }
  struct Clear {
    AgentState* self;
    ~Clear() {
      std::lock_guard lock(self->mutex);
      self->watch_ctx = nullptr;
      self->st.connected = false;
    }
  } clear{this};
  auto stream = stub->Watch(&ctx);
  pb::WatchRequest hello;
  auto* h = hello.mutable_hello();
  h->set_workload(o.workload_name);
  h->set_proxy_version(mg::version());
  for (const auto& [k, v] : o.labels) (*h->mutable_labels())[k] = v;
  {
    std::lock_guard lock(mutex);
    h->set_cert_state(to_string(st.cert_state));
    h->set_cert_serial(st.serial);
    h->set_cert_not_after_unix(st.not_after);
    h->set_last_version(st.config_version);
    h->set_last_revision(st.config_revision);
    h->set_admin_address(hooks.admin_address);
    h->set_address(hooks.address);
    for (const auto& port : hooks.inbound_ports) {
      auto* p = h->add_inbound_ports();
      p->set_port(port.port);
      p->set_app_port(port.app_port);
      p->set_protocol(port.protocol);
    }
  }
  bool checked_server = false;
  // gRPC allows one writer at a time: the ACKs (this thread) and the telemetry sender take turns.
  std::mutex write_mutex;
  // The telemetry sender: started once the control plane is verified, stopped (and joined) before
  // the stream is finished or this returns.
  struct Sender {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread thread;
    ~Sender() { stop(); }
    void stop() {
      {
        std::lock_guard lock(m);
        done = true;
      }
      cv.notify_all();
      if (thread.joinable()) thread.join();
    }
  } sender;
  auto start_sender = [&] {
    if (first_only || !hooks.take_insights) return;
    sender.thread = std::thread([&] {
      while (true) {
        {
          std::unique_lock lock(sender.m);
          if (sender.cv.wait_for(lock, hooks.insights_interval, [&] { return sender.done; })) return;
        }
        auto batch = hooks.take_insights();
        if (batch.empty()) continue;
        auto message = telemetry_message(batch);
        std::lock_guard lock(write_mutex);
        if (!stream->Write(message)) return;  // the stream is ending: the reader sees it too
      }
    });
  };
  if (stream->Write(hello)) {
    pb::ConfigSnapshot snap;
    while (stream->Read(&snap)) {
      if (!checked_server) {
        if (auto ok = api::check_control_plane_identity(ctx, trust_domain); !ok) {
          ctx.TryCancel();
          return ok;
        }
        checked_server = true;
        {
          std::lock_guard lock(mutex);
          st.connected = true;
        }
        start_sender();
      }
      std::string error;
      auto handled = handle_snapshot(snap, error);
      pb::WatchRequest ack;
      ack.mutable_ack()->set_version(snap.version());
      ack.mutable_ack()->set_accepted(static_cast<bool>(handled));
      ack.mutable_ack()->set_error(error);
      if (!handled) log_line("refused snapshot " + snap.version() + ": " + error);
      bool written;
      {
        std::lock_guard lock(write_mutex);
        written = stream->Write(ack);
      }
      if (!written) break;
      if (first_only && handled) {
        stream->WritesDone();
        ctx.TryCancel();
        stream->Finish();
        return {};
      }
    }
  }
  sender.stop();  // a write in flight ends with the call (Read already saw it end)
  auto status = stream->Finish();
  std::string why = api::describe(status);
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
      status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::lock_guard lock(mutex);
    st.last_error = why;
    return fail("agent.refused", "config stream refused: " + why);
  }
  {
    std::lock_guard lock(mutex);
    st.last_error = why;
    if (stopping) return fail("agent.watch", "config stream ended: " + why);
  }
  // Gone, or never reached: the next replica (the same one again when there is only one). A
  // stream the renewal cancelled (a new certificate) was no failure of this replica.
  if (status.error_code() != grpc::StatusCode::CANCELLED) next_control_plane(address);
  return fail("agent.watch", "config stream ended (" + address + "): " + why);
}

void AgentState::renew_loop() {
  auto backoff = std::chrono::milliseconds(1000);
  while (true) {
    auto creds = current_credentials();
    std::chrono::milliseconds wait{0};
    if (creds) {
      // Renew at half-life, as every mesh agent does: a failed renewal has the other half to retry.
      // The life is counted from when we obtained the certificate (the file's mtime), not from
      // notBefore, which the CA backdates for clock skew.
      const auto now = std::time(nullptr);
      struct stat info {};
      std::time_t obtained = (*creds)->not_before;
      if (::stat(path("cert-chain.pem").c_str(), &info) == 0) obtained = std::max(obtained, info.st_mtime);
      const auto renew_at = obtained + ((*creds)->not_after - obtained) / 2;
      if (renew_at > now) wait = jitter(std::chrono::milliseconds((renew_at - now) * 1000));
    }
    if (wait.count() > 0 && !wait_for(wait)) return;
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
    }
    auto still_valid = current_credentials();
    auto st = sign(/*with_token=*/!still_valid);
    if (st) {
      backoff = std::chrono::milliseconds(1000);
      if (hooks.on_credentials) hooks.on_credentials();
      // The watch stream was opened with the old certificate: reconnect with the new one.
      std::lock_guard lock(mutex);
      if (watch_ctx) watch_ctx->TryCancel();
      continue;
    }
    log_line("renewal failed: " + st.error().to_string());
    refresh_cert_status();
    if (!wait_for(jitter(backoff))) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(60'000));
  }
}

void AgentState::watch_loop() {
  auto backoff = std::chrono::milliseconds(250);
  while (true) {
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
    }
    auto started = Clock::now();
    auto st = watch_once(false);
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
    }
    if (!st) log_line(st.error().to_string());
    // A stream that lived a while was healthy: reconnect promptly after it ends.
    if (Clock::now() - started > std::chrono::seconds(10)) backoff = std::chrono::milliseconds(250);
    if (!wait_for(jitter(backoff))) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

class AgentImpl final : public Agent {
 public:
  explicit AgentImpl(std::unique_ptr<AgentState> state) : impl_(std::move(state)) {}
  ~AgentImpl() override { stop(); }
  Status ensure_ready(std::chrono::seconds timeout) override;
  void start(Hooks hooks) override;
  void stop() override;
  void update_inbound_ports(std::vector<Hooks::InboundPort> ports) override;
  AgentStatus status() const override;
  std::string cert_chain_path() const override { return impl_->path("cert-chain.pem"); }
  std::string key_path() const override { return impl_->path("key.pem"); }
  std::string bundle_path() const override { return impl_->path("root-cert.pem"); }
  std::string federated_bundles_path() const override { return impl_->path("federated-bundles.pem"); }
  std::string policy_dir() const override { return impl_->path("policies"); }

 private:
  std::unique_ptr<AgentState> impl_;
};

Result<std::unique_ptr<Agent>> Agent::create(AgentOptions options) {
  if (options.control_plane.empty()) return fail("agent.options", "--control-plane is required");
  if (options.ca_bundle_file.empty()) return fail("agent.options", "--ca-bundle is required");
  if (options.state_dir.empty()) return fail("agent.options", "--state-dir is required");
  if (options.workload_name.empty() || options.ns.empty() || options.service_account.empty())
    return fail("agent.options", "the workload needs a name, namespace and service account");
  auto impl = std::make_unique<AgentState>();
  impl->o = std::move(options);
  for (size_t start = 0;;) {
    const size_t comma = impl->o.control_plane.find(',', start);
    auto one = impl->o.control_plane.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (one.empty() || one.find(':') == std::string::npos)
      return fail("agent.options", "--control-plane: expected HOST:PORT[,HOST:PORT...], got \"" +
                                       impl->o.control_plane + "\"");
    impl->control_planes.push_back(std::move(one));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (auto st = files::make_dirs(impl->o.state_dir, 0700); !st) return fail(st.error());
  if (auto st = files::make_dirs(impl->path("policies"), 0700); !st) return fail(st.error());
  // The trust domain is the control plane's: read it from the bundle's spiffe://<td> URI SAN
  // (built-in CA roots carry one), else cluster.local.
  if (auto pem = files::read_file(impl->o.ca_bundle_file); pem) {
    if (auto roots = crypto::parse_cert_chain_pem(*pem); roots && !roots->empty()) {
      if (auto id = identity::spiffe_id_of(roots->front().get()); id) impl->trust_domain = std::string(id->trust_domain());
    }
  } else {
    return fail(pem.error());
  }
  if (auto meta = files::read_file(impl->path("snapshot.json")); meta) {
    auto j = nlohmann::json::parse(*meta, nullptr, false);
    if (j.is_object() && j.contains("version") && j["version"].is_string()) {
      impl->st.config_version = j["version"].get<std::string>();
      if (j.contains("revision") && j["revision"].is_number_integer()) impl->st.config_revision = j["revision"].get<int64_t>();
      if (j.contains("receivedUnix") && j["receivedUnix"].is_number_integer())
        impl->st.config_received = j["receivedUnix"].get<int64_t>();
      if (j.contains("labels") && j["labels"].is_object()) {
        for (const auto& [k, v] : j["labels"].items()) {
          if (v.is_string()) impl->st.labels[k] = v.get<std::string>();
        }
      }
    }
  }
  impl->refresh_cert_status();
  return std::unique_ptr<Agent>(new AgentImpl(std::move(impl)));
}

Status AgentImpl::ensure_ready(std::chrono::seconds timeout) {
  AgentState& s = *impl_;
  const auto deadline = Clock::now() + timeout;
  auto backoff = std::chrono::milliseconds(250);
  Error last{"agent.timeout", "timed out"};
  while (Clock::now() < deadline) {
    bool have_cert = static_cast<bool>(s.current_credentials());
    bool have_snapshot = files::exists(s.path("snapshot.json")) && files::exists(s.path("policies/snapshot.yaml"));
    if (have_cert && have_snapshot) return {};
    Status st = have_cert ? s.watch_once(true) : s.sign(true);
    if (!st) {
      last = st.error();
      if (last.code == "agent.no_token" || last.code == "agent.refused" || last.code == "agent.wrong_identity") {
        return fail("agent.not_ready", "the control plane refused this workload: " + last.to_string());
      }
      log_line(last.to_string() + " (retrying)");
      std::this_thread::sleep_for(jitter(backoff));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(4000));
    }
  }
  return fail("agent.not_ready", "no certificate and configuration from the control plane in time: " + last.to_string());
}

void AgentImpl::start(Hooks hooks) {
  impl_->hooks = std::move(hooks);
  impl_->renew_thread = std::thread([this] { impl_->renew_loop(); });
  impl_->watch_thread = std::thread([this] { impl_->watch_loop(); });
}

void AgentImpl::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
    if (impl_->watch_ctx) impl_->watch_ctx->TryCancel();
    impl_->cv.notify_all();
  }
  if (impl_->renew_thread.joinable()) impl_->renew_thread.join();
  if (impl_->watch_thread.joinable()) impl_->watch_thread.join();
}

void AgentImpl::update_inbound_ports(std::vector<Hooks::InboundPort> ports) {
  std::lock_guard lock(impl_->mutex);
  impl_->hooks.inbound_ports = std::move(ports);
  // The Hello is the registration: a new stream sends it (the watch loop reconnects after its
  // short backoff).
  if (impl_->watch_ctx) impl_->watch_ctx->TryCancel();
}

AgentStatus AgentImpl::status() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->st;
}

}  // namespace mg::agent
