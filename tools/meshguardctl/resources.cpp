// meshguardctl: see resources.h.
#include "resources.h"

#include "policy/parse.h"
#include "rego/yaml_value.h"

namespace mg::ctl {

Result<Fetched> fetch(const Conn& c, const std::vector<Target>& targets, const std::string& ns,
                      const LabelSelector& selector) {
  Fetched out;
  auto stub = admin_stub(c);  // one connection for every target
  if (!stub) return fail(stub.error());
  for (const auto& t : targets) {
    pb::GetRequest req;
    req.set_kind(t.kind->kind);
    req.set_namespace_(t.kind->namespaced ? ns : "");
    req.set_name(t.name);
    req.set_mesh(selected_mesh());
    pb::GetResponse resp;
    auto ctx = call_context();
    auto st = (*stub)->Get(ctx.get(), req, &resp);
    if (st.error_code() == grpc::StatusCode::NOT_FOUND && !t.name.empty()) {
      out.not_found.push_back(std::string(t.kind->plural) + " \"" + t.name + "\" not found" +
                              (t.kind->namespaced && !ns.empty() ? " in namespace " + ns : ""));
      continue;
    }
    if (!st.ok()) {
      rpc_failed(c, st);
      return fail("ctl.rpc", "");
    }
    out.revision = resp.revision();
    for (auto& r : *resp.mutable_resources()) {
      if (!selector.empty()) {
        auto obj = to_object(r);
        if (!obj || !selector.matches(labels_of(*obj))) continue;
      }
      out.items.push_back(std::move(r));
    }
  }
  return out;
}

Result<policy::ResourceSet> stored_set(const Conn& c) {
  auto all = get_resources(c, "", "");
  if (!all) return fail(all.error());
  policy::ResourceSet set;
  for (const auto& r : all->resources()) {
    auto parsed = policy::parse_resources(r.yaml(), key_str(r.key()));
    if (!parsed) return fail(parsed.error());
    set.append(std::move(*parsed));
  }
  return set;
}

Result<nlohmann::json> to_object(const pb::Resource& r) {
  std::string error;
  auto value = rego::yaml_to_value(r.yaml(), &error);
  if (!value) return fail("ctl.bad_stored", key_str(r.key()) + ": " + error);
  nlohmann::json obj = value->to_json();
  if (!obj.is_object()) return fail("ctl.bad_stored", key_str(r.key()) + ": not a YAML mapping");
  obj["metadata"]["resourceVersion"] = std::to_string(r.revision());
  return obj;
}

std::map<std::string, std::string> labels_of(const nlohmann::json& object) {
  std::map<std::string, std::string> out;
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return out;
  auto labels = md->find("labels");
  if (labels == md->end() || !labels->is_object()) return out;
  for (const auto& [k, v] : labels->items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  return out;
}

std::string document_text(const std::string& yaml) {
  std::string_view text = yaml;
  if (text.substr(0, 3) == "---") {
    auto nl = text.find('\n');
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  std::string out(text);
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

}  // namespace mg::ctl
