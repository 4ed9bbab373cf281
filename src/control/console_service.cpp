// control/console_service.cpp — see console_service.h.
#include "control/console_service.h"

#include <chrono>

#include "common/files.h"
#include "console/api.h"
#include "console/assets.h"
#include "console/suggest.h"
#include "control/distributor.h"
#include "control/model.h"
#include "control/support.h"
#include "crypto/openssl.h"
#include "policy/check.h"

namespace mg::control {
namespace pb = ::meshguard::v1;

telemetry::InsightBatch insight_batch(const pb::Telemetry& t, size_t max_flows, size_t max_decisions) {
  telemetry::InsightBatch b;
  b.flows_dropped = t.flows_dropped();
  b.decisions_dropped = t.decisions_dropped();
  for (const auto& f : t.flows()) {
    if (b.flows.size() >= max_flows) {
      b.flows_dropped += f.requests();
      continue;
    }
    b.flows.push_back(
        {f.source_principal(), f.mtls(), f.allowed(), f.policy(), f.requests(), f.method(), f.path_prefix()});
  }
  for (const auto& d : t.decisions()) {
    if (b.decisions.size() >= max_decisions) {
      ++b.decisions_dropped;
      continue;
    }
    b.decisions.push_back({d.time_unix_ms(), d.source_principal(), d.source_address(), d.method(), d.path(),
                           d.status(), d.policy(), d.rule(), d.reason(), d.allowed(), d.audit(), d.mtls()});
  }
  return b;
}

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr size_t kDefaultRecentDecisions = 20, kMaxRecentDecisions = 100;

class ConsoleServiceImpl final : public ConsoleService, public pb::ConsoleService::CallbackService {
 public:
  ConsoleServiceImpl(std::string trust_domain, const ConfigModel& model, const Distributor& distributor)
      : trust_domain_(std::move(trust_domain)), model_(model), distributor_(distributor) {}

  grpc::Service* service() override { return this; }

  void report(const std::string& proxy, const pb::Telemetry& t) override {
    const auto& limits = window_.limits();
    window_.report(proxy, insight_batch(t, limits.max_flows_per_bucket, limits.max_decisions), now_ms());
  }

  grpc::ServerUnaryReactor* Http(grpc::CallbackServerContext* ctx, const pb::ConsoleRequest* req,
                                 pb::ConsoleResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    if (auto admin = require_admin(ctx, *model_.current()->bundle, trust_domain_); !admin) {
      reactor->Finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return reactor;
    }
    answer(*req, *resp);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* RecentDecisions(grpc::CallbackServerContext* ctx,
                                            const pb::RecentDecisionsRequest* req,
                                            pb::RecentDecisionsResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    const auto m = model_.current();
    if (auto admin = require_admin(ctx, *m->bundle, trust_domain_); !admin) {
      reactor->Finish(status_of(grpc::StatusCode::PERMISSION_DENIED, admin.error()));
      return reactor;
    }
    if (req->workload().empty() == !req->namespace_().empty() ||
        (req->workload().empty() && req->policy().empty())) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "name a workload (namespace and workload) and/or a policy (ns/name)"));
      return reactor;
    }
    if (req->limit() < 0 || req->limit() > static_cast<int32_t>(kMaxRecentDecisions)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "limit must be 0.." + std::to_string(kMaxRecentDecisions)));
      return reactor;
    }
    const size_t limit = req->limit() == 0 ? kDefaultRecentDecisions : static_cast<size_t>(req->limit());
    const std::string destination = req->workload().empty() ? "" : req->namespace_() + "/" + req->workload();
    const int64_t now = now_ms();
    for (auto& row : console::recent_decisions(window_.decisions(now), workloads(*m), destination,
                                               req->policy(), limit)) {
      auto* out = resp->add_decisions();
      out->set_destination(row.decision.destination);
      out->set_source(row.source);
      const auto& d = row.decision.sample;
      auto* s = out->mutable_sample();
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
    resp->set_window_seconds(window_.limits().window_ms() / 1000);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  static void json(pb::ConsoleResponse& resp, int status, const nlohmann::ordered_json& body) {
    resp.set_status(status);
    resp.set_content_type("application/json");
    resp.set_body(body.dump() + "\n");
  }
  static void error(pb::ConsoleResponse& resp, int status, const std::string& message) {
    json(resp, status, {{"error", message}});
  }

  // Every workload: the proxies connected (or recently), then registered Workloads never connected.
  std::vector<console::ConsoleWorkload> workloads(const Model& m) const {
    std::vector<console::ConsoleWorkload> out;
    std::set<std::string> seen;
    for (const auto& [key, rec] : distributor_.proxies()) {
      console::ConsoleWorkload w;
      w.ns = rec.workload.ns;
      w.name = rec.workload.name;
      w.service_account = rec.workload.service_account;
      w.labels = rec.workload.labels;
      w.spiffe_id = rec.spiffe_id;
      w.registered = rec.workload.registered;
      w.connected = rec.connected;
      w.cert_state = rec.cert_state;
      w.cert_serial = rec.cert_serial;
      w.cert_not_after = rec.cert_not_after;
      w.sent_version = rec.sent_version;
      w.acked_version = rec.acked_version;
      w.nack_error = rec.nack_error;
      w.sent_revision = rec.sent_revision;
      w.acked_revision = rec.acked_revision;
      w.acked_bundle = rec.acked_bundle;
      w.proxy_version = rec.proxy_version;
      seen.insert(key);
      out.push_back(std::move(w));
    }
    for (const auto& reg : m.set.workloads) {
      if (seen.count(reg.meta.ns + "/" + reg.meta.name)) continue;
      console::ConsoleWorkload w;
      w.ns = reg.meta.ns;
      w.name = reg.meta.name;
      w.service_account = reg.service_account;
      w.labels = reg.labels;
      w.registered = true;
      if (auto id = identity::SpiffeId::istio(trust_domain_, reg.meta.ns, reg.service_account))
        w.spiffe_id = id->str();
      out.push_back(std::move(w));
    }
    return out;
  }

  console::MeshView mesh_view(const Model& m) const {
    console::MeshView v;
    v.trust_domain = trust_domain_;
    v.revision = m.revision;
    v.certificate_ttl_seconds = m.mesh.certificate_ttl_seconds;
    v.bundle_hash = m.bundle_hash;
    if (auto roots = crypto::parse_cert_chain_pem(m.bundle_pem)) {
      for (const auto& r : *roots) {
        const auto s = crypto::summarize(r.get());
        v.roots.push_back({s.subject, s.fingerprint, static_cast<int64_t>(s.not_after)});
      }
    }
    return v;
  }

  void answer(const pb::ConsoleRequest& req, pb::ConsoleResponse& resp) {
    const std::string& path = req.path();
    const bool get = req.method() == "GET" || req.method() == "HEAD";
    if (path.rfind("/api/", 0) == 0) {
      api(path.substr(5), req, resp, get);
      return;
    }
    if (!get) return error(resp, 405, "method not allowed");
    if (path == "/d3.min.js") {
      // Debian's libjs-d3, read at run time: nothing fetched, nothing copied into the repository.
      auto d3 = files::read_file(console::kD3Path);
      if (!d3)
        return error(resp, 404,
                     std::string(console::kD3Path) + " is not installed (Debian package libjs-d3)");
      resp.set_status(200);
      resp.set_content_type("text/javascript; charset=utf-8");
      resp.set_body(std::move(*d3));
      return;
    }
    const std::string name = path == "/" ? "index.html" : path.substr(1);
    const auto* asset = console::find_asset(name);
    if (!asset) return error(resp, 404, "no such page: " + path);
    resp.set_status(200);
    resp.set_content_type(std::string(asset->content_type));
    resp.set_body(std::string(asset->body));
  }

  void api(const std::string& name, const pb::ConsoleRequest& req, pb::ConsoleResponse& resp, bool get) {
    const auto m = model_.current();
    const int64_t now = now_ms();
    if (name == "whatif") {
      if (req.method() != "POST") return error(resp, 405, "POST a JSON body to /api/whatif");
      auto j = console::whatif_json(m->set, m->mesh.config, workloads(*m), req.body());
      if (!j) return error(resp, 400, j.error().message);
      return json(resp, 200, *j);
    }
    if (name == "suggest/dryrun") {
      if (req.method() != "POST") return error(resp, 405, "POST a JSON body to /api/suggest/dryrun");
      auto j = console::dry_run_json(m->set, m->mesh.config, workloads(*m), window_.flows(now), req.body());
      if (!j) return error(resp, 400, j.error().message);
      return json(resp, 200, *j);
    }
    if (!get) return error(resp, 405, "method not allowed");
    const auto list = workloads(*m);
    if (name == "suggest") {
      const auto query = console::parse_query(req.query());
      auto it = query.find("workload");
      if (it == query.end()) return error(resp, 400, "/api/suggest needs ?workload=NS/NAME");
      auto j = console::suggest_json(list, window_.flows(now), it->second);
      if (!j) return error(resp, j.error().code == "console.no_workload" ? 404 : 400, j.error().message);
      return json(resp, 200, *j);
    }
    if (name == "graph") {
      const auto flows = window_.flows(now);
      std::map<std::string, int64_t> covered;
      for (const auto& f : flows) {
        if (!covered.count(f.destination)) covered[f.destination] = window_.covered_ms(f.destination, now);
      }
      return json(resp, 200, console::graph_json(list, flows, covered, window_.limits()));
    }
    if (name == "workloads") return json(resp, 200, console::workloads_json(list, mesh_view(*m), now / 1000));
    if (name == "policies") return json(resp, 200, console::policies_json(m->set, m->mesh.config, list));
    if (name == "decisions")
      return json(resp, 200,
                  console::decisions_json(window_.decisions(now), list, console::parse_query(req.query())));
    if (name == "mesh")
      return json(
          resp, 200,
          console::mesh_json(mesh_view(*m), m->set, m->mesh.config, list, window_.stats(now), now / 1000));
    error(resp, 404, "no such API: /api/" + name);
  }

  const std::string trust_domain_;
  const ConfigModel& model_;
  const Distributor& distributor_;
  console::InsightWindow window_;
};

}  // namespace

std::unique_ptr<ConsoleService> ConsoleService::create(std::string trust_domain, const ConfigModel& model,
                                                       const Distributor& distributor) {
  return std::make_unique<ConsoleServiceImpl>(std::move(trust_domain), model, distributor);
}

}  // namespace mg::control
