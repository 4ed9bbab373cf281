// meshguardctl get | describe — stored resources, read the kubectl way: TYPE[,TYPE] [NAME...] or
// TYPE/NAME (lib/kinds.h), -l selectors (lib/selector.h), -o table|wide|name|yaml|json|
// jsonpath=TEMPLATE (lib/jsonpath.h), -w to follow changes. `describe` adds what the control plane
// knows around a resource: the workloads it selects and why (or, for a Workload, the policies that
// select it; a Service: its ports, selected workloads and endpoints, registry_view.h), and the
// recent denials and audits the console's telemetry window holds for a Workload (as destination) or
// a policy that decides requests (ConsoleService.RecentDecisions).
#include <algorithm>
#include <iostream>

#include "admin_client.h"
#include "api/grpc_tls.h"
#include "commands.h"
#include "jsonpath.h"
#include "policy/mesh.h"
#include "policy/parse.h"
#include "policy/select.h"
#include "registry_view.h"
#include "resources.h"

namespace mg::ctl {
namespace {

struct GetOptions {
  std::vector<std::string> args;
  std::string ns = "default";
  bool all_namespaces = false;
  std::string output = "table";
  std::string selector;
  bool watch = false;
  int watch_count = 0;
  Conn conn;
};

std::string selector_text(const nlohmann::json& obj) {
  auto spec = obj.find("spec");
  if (spec == obj.end() || !spec->is_object()) return "-";
  auto sel = spec->find("selector");
  if (sel == spec->end()) return "<none>";
  std::string out;
  // A policy's selector.matchLabels, or a Gateway's plain label map.
  const bool policy = sel->is_object() && sel->contains("matchLabels");
  const nlohmann::json& labels = policy ? (*sel)["matchLabels"] : *sel;
  if (labels.is_object()) {
    for (const auto& [k, v] : labels.items())
      out += (out.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out.empty() ? "<none>" : out;
}

std::string labels_text(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "<none>" : out;
}

// The one spec field a reader looks for first, per kind (-o wide's DETAIL).
std::string detail_text(const std::string& kind, const nlohmann::json& obj) {
  const nlohmann::json spec = obj.value("spec", nlohmann::json::object());
  if (!spec.is_object()) return "-";
  if (kind == "AuthorizationPolicy") return "action=" + spec.value("action", std::string("ALLOW"));
  if (kind == "PeerAuthentication") {
    auto mtls = spec.value("mtls", nlohmann::json::object());
    return "mtls=" + (mtls.is_object() ? mtls.value("mode", std::string("UNSET")) : std::string("UNSET"));
  }
  if (kind == "RequestAuthentication")
    return "jwtRules=" + std::to_string(spec.value("jwtRules", nlohmann::json::array()).size());
  if (kind == "Workload") return "serviceAccount=" + spec.value("serviceAccount", std::string("-"));
  if (kind == "Mesh") return "trustDomain=" + spec.value("trustDomain", std::string("cluster.local"));
  if (kind == "Gateway")
    return "servers=" + std::to_string(spec.value("servers", nlohmann::json::array()).size());
  if (kind == "VirtualService" || kind == "ServiceEntry") {
    std::string hosts;
    for (const auto& h : spec.value("hosts", nlohmann::json::array()))
      hosts += (hosts.empty() ? "" : ",") + (h.is_string() ? h.get<std::string>() : h.dump());
    return "hosts=" + (hosts.empty() ? std::string("-") : hosts);
  }
  return "decision=" + spec.value("decision", std::string("data.envoy.authz.allow"));
}

int print_table_output(const Fetched& f, bool wide) {
  std::vector<std::vector<std::string>> rows{{"KIND", "NAMESPACE", "NAME", "REVISION", "AGE"}};
  if (wide) rows[0].insert(rows[0].end(), {"UPDATED", "LABELS", "SELECTOR", "DETAIL"});
  for (const auto& r : f.items) {
    rows.push_back({r.key().kind(), r.key().namespace_().empty() ? "-" : r.key().namespace_(), r.key().name(),
                    std::to_string(r.revision()), age(r.updated_unix())});
    if (!wide) continue;
    auto obj = to_object(r);
    if (!obj) return fail_line(obj.error().message);
    rows.back().insert(rows.back().end(), {utc(r.updated_unix()), labels_text(labels_of(*obj)),
                                           selector_text(*obj), detail_text(r.key().kind(), *obj)});
  }
  print_table(rows);
  return 0;
}

// kubectl's shapes: one named resource is the object itself, anything else a List.
Result<nlohmann::json> as_json(const Fetched& f, bool single) {
  if (single && f.items.size() == 1) return to_object(f.items[0]);
  nlohmann::json items = nlohmann::json::array();
  for (const auto& r : f.items) {
    auto obj = to_object(r);
    if (!obj) return fail(obj.error());
    items.push_back(std::move(*obj));
  }
  return nlohmann::json{{"apiVersion", "v1"},
                        {"kind", "List"},
                        {"metadata", {{"resourceVersion", std::to_string(f.revision)}}},
                        {"items", std::move(items)}};
}

int print_items(const Fetched& f, const std::string& output, bool single, const std::string& ns) {
  if (output == "table" || output == "wide") {
    if (f.items.empty()) {
      if (f.not_found.empty())
        std::cerr << "No resources found" << (ns.empty() ? "" : " in " + ns + " namespace") << ".\n";
      return 0;
    }
    return print_table_output(f, output == "wide");
  }
  if (output == "name") {
    for (const auto& r : f.items) {
      const auto* k = kind_of(r.key().kind());
      std::cout << (k ? qualified_name(*k) : r.key().kind()) << "/" << r.key().name() << "\n";
    }
    return 0;
  }
  if (output == "yaml") {
    bool first = true;
    for (const auto& r : f.items) {
      if (!first) std::cout << "---\n";
      first = false;
      std::cout << document_text(r.yaml());
    }
    return 0;
  }
  auto j = as_json(f, single);
  if (!j) return fail_line(j.error().message);
  if (output == "json") {
    std::cout << j->dump(4) << "\n";
    return 0;
  }
  auto text = render_jsonpath(output.substr(output.find('=') + 1), *j);
  if (!text) return fail_line(text.error().message);
  std::cout << *text;
  return 0;
}

Status check_output(const std::string& output) {
  for (const char* o : {"table", "wide", "name", "yaml", "json"}) {
    if (output == o) return {};
  }
  if (output.rfind("jsonpath=", 0) == 0 && output.size() > 9) return {};
  return fail("ctl.bad_output",
              "-o " + output + ": expected table, wide, name, yaml, json or jsonpath=TEMPLATE");
}

// Streams changes until the server ends the stream (or the user interrupts); `max_events` > 0
// stops after that many (scripts).
int run_watch(const Conn& c, const std::string& kind, const std::string& ns, int max_events) {
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::WatchResourcesRequest req;
  req.set_kind(kind);
  req.set_namespace_(kind == "Mesh" ? "" : ns);
  req.set_mesh(selected_mesh());
  grpc::ClientContext ctx;
  auto reader = (*stub)->WatchResources(&ctx, req);
  // The server answers with its metadata once the watch is registered; list after that, and skip
  // the events the listing already shows.
  reader->WaitForInitialMetadata();
  auto listing = get_resources(c, req.kind(), req.namespace_());
  if (!listing) return 1;
  Fetched f;
  f.items.assign(listing->resources().begin(), listing->resources().end());
  print_table_output(f, false);
  std::cout << "-- revision " << listing->revision() << ", watching" << std::endl;
  pb::ResourceEvent e;
  int seen = 0;
  while (reader->Read(&e)) {
    // ServiceEndpoints change without a store revision: their events are ordered by the registry's
    // generation instead.
    if (e.key().kind() == "ServiceEndpoints" ? e.generation() <= listing->endpoints_generation()
                                             : e.revision() <= listing->revision())
      continue;
    std::cout << "revision " << e.revision() << "  " << key_str(e.key()) << " " << e.change() << std::endl;
    if (max_events > 0 && ++seen >= max_events) {
      ctx.TryCancel();
      reader->Finish();
      return 0;
    }
  }
  auto st = reader->Finish();
  if (!st.ok()) return rpc_failed(c, st);
  return 0;
}

// ListMeshes as a table (--mesh: that mesh's row only).
int print_meshes_table(const Conn& c) {
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  pb::ListMeshesResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->ListMeshes(ctx.get(), pb::ListMeshesRequest{}, &resp);
  if (!st.ok()) return rpc_failed(c, st);
  std::vector<std::vector<std::string>> rows{
      {"NAME", "TRUST DOMAIN", "CA ROOT SERIAL", "CA ROOT EXPIRES", "WORKLOADS", "FEDERATES WITH"}};
  for (const auto& m : resp.meshes()) {
    if (!selected_mesh().empty() && m.name() != selected_mesh()) continue;
    std::string federates;
    for (const auto& f : m.federates_with()) federates += (federates.empty() ? "" : ",") + f;
    rows.push_back({m.name(), m.trust_domain(), m.ca_root_serial().empty() ? "-" : m.ca_root_serial(),
                    utc(m.ca_root_not_after_unix()), std::to_string(m.workloads_connected()),
                    federates.empty() ? "-" : federates});
  }
  if (rows.size() == 1) return fail_line("mesh " + selected_mesh() + " not found");
  print_table(rows);
  return 0;
}

int run_get(const GetOptions& o) {
  if (auto s = check_output(o.output); !s) return fail_line(s.error().message);
  auto selector = LabelSelector::parse(o.selector);
  if (!selector) return fail_line(selector.error().message);
  const std::string ns = o.all_namespaces ? "" : o.ns;
  if (o.watch) {
    if (o.args.size() == 1 && o.args[0] == "all") return run_watch(o.conn, "", ns, o.watch_count);
    auto targets = parse_targets(o.args);
    if (!targets) return fail_line(targets.error().message);
    if (targets->size() != 1 || !targets->front().name.empty())
      return fail_line("--watch takes one resource type (or all), not names");
    return run_watch(o.conn, targets->front().kind->kind, ns, o.watch_count);
  }
  auto targets = parse_targets(o.args);
  if (!targets) return fail_line(targets.error().message);
  // get meshes (as a table): each mesh served, its trust domain, CA and connected proxies.
  if ((o.output == "table" || o.output == "wide") && !targets->empty() &&
      std::all_of(targets->begin(), targets->end(),
                  [](const Target& t) { return t.kind->kind == std::string("Mesh") && t.name.empty(); }))
    return print_meshes_table(o.conn);
  auto fetched = fetch(o.conn, *targets, ns, *selector);
  if (!fetched) return fetched.error().message.empty() ? 1 : fail_line(fetched.error().message);
  const bool single = targets->size() == 1 && !targets->front().name.empty();
  int rc = 0;
  auto only = [&](const char* kind) {
    return std::all_of(targets->begin(), targets->end(),
                       [&](const Target& t) { return t.kind->kind == std::string(kind); });
  };
  if ((o.output == "table" || o.output == "wide") && !fetched->items.empty() &&
      (only("Service") || only("ServiceEndpoints")))
    rc = only("Service") ? print_services_table(o.conn, *fetched) : print_endpoints_table(o.conn, *fetched);
  else
    rc = print_items(*fetched, o.output, single, ns);
  for (const auto& nf : fetched->not_found) rc = fail_line(nf);
  return rc;
}

// ---- describe -----------------------------------------------------------------------------------

policy::WorkloadRef ref_of(const pb::WorkloadStatus& w) {
  return {w.namespace_(), {w.labels().begin(), w.labels().end()}, w.service_account()};
}

void describe_selection(const std::string& kind, const policy::Meta& meta, const policy::Selector& selector,
                        const std::vector<pb::WorkloadStatus>& wls, const policy::MeshConfig& mesh) {
  std::vector<std::vector<std::string>> selected{{"  NAMESPACE", "NAME", "CONNECTED", "WHY"}},
      others = selected;
  for (const auto& w : wls) {
    auto a = policy::applies_to(meta, selector, ref_of(w), mesh, kind != "PeerAuthentication");
    (a.applies ? selected : others)
        .push_back({"  " + w.namespace_(), w.name(), w.connected() ? "yes" : "no", a.why});
  }
  std::cout << "Selected workloads:\n";
  if (selected.size() == 1)
    std::cout << "  <none> of the " << wls.size() << " workloads the control plane knows\n";
  else
    print_table(selected);
  if (others.size() > 1) {
    std::cout << "Not selected:\n";
    print_table(others);
  }
}

void describe_workload(const policy::Workload& wl, const policy::ResourceSet& set,
                       const policy::MeshConfig& mesh) {
  const policy::WorkloadRef ref{wl.meta.ns, wl.labels, wl.service_account};
  std::cout << "Policies applied:\n";
  std::vector<std::vector<std::string>> rows{{"  KIND", "NAME", "WHY"}};
  for (const auto& p : set.authorization_policies) {
    auto a = policy::applies_to(p.meta, p.selector, ref, mesh);
    if (a.applies) rows.push_back({"  AuthorizationPolicy", p.meta.full_name(), a.why});
  }
  for (const auto& p : set.request_authentications) {
    auto a = policy::applies_to(p.meta, p.selector, ref, mesh);
    if (a.applies) rows.push_back({"  RequestAuthentication", p.meta.full_name(), a.why});
  }
  for (const auto& p : set.opa_policies) {
    auto a = policy::applies_to(p.meta, p.selector, ref, mesh);
    if (a.applies) rows.push_back({"  OPAPolicy", p.meta.full_name(), a.why});
  }
  if (rows.size() == 1)
    std::cout << "  <none>\n";
  else
    print_table(rows);
  const auto mtls = policy::resolve_peer_authentication(set, ref, mesh);
  std::cout << "mTLS mode:    " << policy::to_string(mtls.workload.mode) << " ("
            << (mtls.workload.decided_by.empty() ? "default"
                                                 : "PeerAuthentication " + mtls.workload.decided_by)
            << ")\n";
  for (const auto& [port, m] : mtls.ports)
    std::cout << "  port " << port << ": " << policy::to_string(m.mode) << " (PeerAuthentication "
              << m.decided_by << ")\n";
}

// "Recent decisions:" and a table of the console window's samples for a workload's proxy
// (`destination`) or a policy; `none …` when there are none. A control plane that cannot answer
// is said on the line; describe goes on (the rest of what it printed holds).
void describe_decisions(const Conn& c, const std::string& ns, const std::string& workload,
                        const std::string& policy) {
  std::cout << "Recent decisions";
  auto channel = admin_channel(c);
  if (!channel) {
    std::cout << ": unavailable (" << channel.error().message << ")\n";
    return;
  }
  pb::RecentDecisionsRequest req;
  req.set_namespace_(ns);
  req.set_workload(workload);
  req.set_policy(policy);
  pb::RecentDecisionsResponse resp;
  auto ctx = call_context();
  auto st = pb::ConsoleService::NewStub(*channel)->RecentDecisions(ctx.get(), req, &resp);
  if (!st.ok()) {
    std::cout << ": unavailable (" << api::describe(st) << ")\n";
    return;
  }
  const std::string window = std::to_string(resp.window_seconds() / 60) + " minutes";
  if (resp.decisions().empty()) {
    std::cout << ": none in the last " << window << " (the console's telemetry window)\n";
    return;
  }
  std::cout << " (denials and audits, newest first; the last " << window << "):\n";
  const bool by_policy = workload.empty();
  std::vector<std::vector<std::string>> rows{{"  TIME", "SOURCE"}};
  if (by_policy) rows[0].push_back("DESTINATION");
  for (const char* h : {"METHOD", "PATH", "STATUS", "DECISION", "POLICY", "RULE", "REASON"})
    rows[0].push_back(h);
  const auto or_dash = [](const std::string& v) { return v.empty() ? std::string("-") : v; };
  for (const auto& d : resp.decisions()) {
    const auto& s = d.sample();
    std::vector<std::string> row{"  " + utc(s.time_unix_ms() / 1000), d.source()};
    if (by_policy) row.push_back(d.destination());
    row.insert(row.end(), {or_dash(s.method()), or_dash(s.path()), std::to_string(s.status()),
                           s.audit() ? "AUDIT" : (s.allowed() ? "ALLOW" : "DENY"), or_dash(s.policy()),
                           s.rule() >= 0 ? std::to_string(s.rule()) : "-", or_dash(s.reason())});
    rows.push_back(std::move(row));
  }
  print_table(rows);
}

int describe_one(const Conn& c, const pb::Resource& r, const policy::ResourceSet& set,
                 const std::vector<pb::WorkloadStatus>& wls, const policy::MeshConfig& mesh) {
  auto obj = to_object(r);
  if (!obj) return fail_line(obj.error().message);
  const auto* k = kind_of(r.key().kind());
  std::vector<std::vector<std::string>> head{
      {"Name:", r.key().name()},
      {"Namespace:", r.key().namespace_().empty() ? "<cluster-wide>" : r.key().namespace_()},
      {"Kind:", r.key().kind() + (k ? std::string(" (") + k->group + ")" : "")},
      {"Labels:", labels_text(labels_of(*obj))},
      {"Revision:", std::to_string(r.revision())},
      {"Updated:", utc(r.updated_unix())}};
  if (r.key().kind() != "Workload" && r.key().kind() != "Mesh")
    head.push_back({"Selector:", selector_text(*obj)});
  head.push_back({"Summary:", detail_text(r.key().kind(), *obj)});
  print_table(head);
  bool found = false;
  policy::for_each_kind(set, [&](const char* kind, const auto& list) {
    if (r.key().kind() != kind) return;
    for (const auto& res : list) {
      if (res.meta.ns != (r.key().namespace_().empty() ? res.meta.ns : r.key().namespace_()) ||
          res.meta.name != r.key().name())
        continue;
      found = true;
      if constexpr (requires { res.selector; }) describe_selection(kind, res.meta, res.selector, wls, mesh);
      if constexpr (requires { res.service_account; }) describe_workload(res, set, mesh);
    }
  });
  // ServiceEndpoints are computed, not stored: nothing of theirs is in the stored set.
  if (!found && r.key().kind() != "ServiceEndpoints")
    std::cout << "(changed while describing: run describe again)\n";
  // What the proxies' telemetry sampled (docs/CONSOLE.md): a Workload's as the destination, a
  // deciding policy's wherever it decided.
  if (r.key().kind() == "Workload") describe_decisions(c, r.key().namespace_(), r.key().name(), "");
  if (r.key().kind() == "AuthorizationPolicy" || r.key().kind() == "OPAPolicy")
    describe_decisions(c, "", "", r.key().namespace_() + "/" + r.key().name());
  std::cout << "Document:\n";
  std::string doc = document_text(r.yaml());
  for (size_t pos = 0; pos < doc.size();) {
    auto nl = doc.find('\n', pos);
    std::cout << "  " << doc.substr(pos, nl - pos) << "\n";
    pos = nl + 1;
  }
  return 0;
}

int run_describe(const GetOptions& o) {
  auto targets = parse_targets(o.args);
  if (!targets) return fail_line(targets.error().message);
  auto selector = LabelSelector::parse(o.selector);
  if (!selector) return fail_line(selector.error().message);
  const std::string ns = o.all_namespaces ? "" : o.ns;
  auto fetched = fetch(o.conn, *targets, ns, *selector);
  if (!fetched) return fetched.error().message.empty() ? 1 : fail_line(fetched.error().message);
  auto set = stored_set(o.conn);
  if (!set) return set.error().message.empty() ? 1 : fail_line(set.error().message);
  auto wls = list_workloads(o.conn);
  if (!wls) return 1;
  // The settings of the mesh looked at (the default one without --mesh; docs/MESHES.md).
  const auto mesh = policy::mesh_config_of(
      policy::resources_of_mesh(*set, selected_mesh().empty() ? policy::kDefaultMesh : selected_mesh()));
  int rc = 0;
  bool first = true;
  for (const auto& r : fetched->items) {
    if (!first) std::cout << "\n";
    first = false;
    if (r.key().kind() == "Service") {
      auto parsed = policy::parse_resources(r.yaml(), key_str(r.key()));
      if (!parsed || parsed->services.size() != 1) {
        rc |= fail_line(key_str(r.key()) + ": the stored document is not a Service");
        continue;
      }
      rc |= describe_service(o.conn, parsed->services[0], r);
      continue;
    }
    rc |= describe_one(o.conn, r, *set, *wls, mesh);
  }
  if (fetched->items.empty() && fetched->not_found.empty())
    std::cerr << "No resources found" << (ns.empty() ? "" : " in " + ns + " namespace") << ".\n";
  for (const auto& nf : fetched->not_found) rc = fail_line(nf);
  return rc;
}

void add_query_options(CLI::App* cmd, GetOptions& o) {
  cmd->add_option("args", o.args,
                  "TYPE[,TYPE...] [NAME...] or TYPE/NAME...; TYPE: ap, pa, ra, wl, mesh, opa, svc, "
                  "endpoints, gw, vs, se, all, "
                  "or a kind's name, plural or KIND.GROUP")
      ->required();
  cmd->add_option("-n,--namespace", o.ns, "namespace")->capture_default_str();
  cmd->add_flag("-A,--all-namespaces", o.all_namespaces, "every namespace");
  cmd->add_option("-l,--selector", o.selector,
                  "label query: k=v, k!=v, k in (a,b), k notin (a,b), k, !k; comma-separated, all must hold");
  add_conn_options(cmd, o.conn);
}

}  // namespace

void register_get_commands(CLI::App& app, Action& action) {
  static GetOptions get_opt;
  auto* get = app.add_subcommand("get", "List or show stored resources (kubectl get)");
  add_query_options(get, get_opt);
  get->add_option("-o,--output", get_opt.output, "table | wide | name | yaml | json | jsonpath=TEMPLATE")
      ->capture_default_str();
  get->add_flag("-w,--watch", get_opt.watch, "after listing, print every change as it is applied");
  get->add_option("--watch-count", get_opt.watch_count,
                  "with --watch: stop after this many changes (0: never)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  get->callback([&action] { action = [] { return run_get(get_opt); }; });

  static GetOptions describe_opt;
  auto* describe = app.add_subcommand(
      "describe",
      "Show a resource with the workloads it selects and why (a Workload: the policies applied to it), and "
      "the recent denials and audits of a Workload or a policy");
  add_query_options(describe, describe_opt);
  describe->callback([&action] { action = [] { return run_describe(describe_opt); }; });
}

}  // namespace mg::ctl
