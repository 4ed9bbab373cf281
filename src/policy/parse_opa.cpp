// policy/parse_opa.cpp — the OPAPolicy kind for policy::parse_resources: Rego modules compiled
// once at parse time (a module that does not compile is refused with the line and column inside the
// YAML), data, decision query and options, with the shared walkers of parse_internal.h; parse.cpp
// dispatches here by kind.
#include <charconv>
#include <string>
#include <utility>
#include <vector>

#include "policy/opa.h"
#include "policy/parse.h"
#include "policy/parse_internal.h"
#include "rego/engine.h"
#include "rego/yaml_value.h"

namespace mg::policy::detail {

namespace {

// Spends the parse budget on every node under `n`, so an aliased `spec.data` cannot expand into
// more work than the document's size allows before it is converted.
Status spend_tree(Ctx& ctx, const YAML::Node& n) {
  if (auto s = spend(ctx, n); !s) return s;
  if (n.IsSequence()) {
    for (const auto& item : n) {
      if (auto s = spend_tree(ctx, item); !s) return s;
    }
  } else if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (auto s = spend_tree(ctx, it->second); !s) return s;
    }
  }
  return {};
}

// "data.envoy.authz.allow" (a reference under data) or "envoy/authz/allow" (the OPA-Envoy
// plugin's `path` form) → {"envoy", "authz", "allow"}; empty when malformed.
std::vector<std::string> decision_path(std::string_view text) {
  std::vector<std::string> out;
  auto identifier = [](std::string_view seg) {
    if (seg.empty() || !(std::isalpha(static_cast<unsigned char>(seg[0])) || seg[0] == '_')) return false;
    for (char c : seg) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    }
    return true;
  };
  const bool dotted = text.starts_with("data.");
  if (dotted) {
    text.remove_prefix(5);
  } else if (text.starts_with('/')) {
    text.remove_prefix(1);
  }
  const char sep = dotted ? '.' : '/';
  while (true) {
    const auto end = text.find(sep);
    const auto seg = text.substr(0, end);
    if (dotted ? !identifier(seg)
               : (seg.empty() || seg.find_first_of(" \t\r\n.") != std::string_view::npos)) {
      return {};
    }
    out.emplace_back(seg);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}

// Where a module written as the YAML scalar `node` starts in the whole text: the line of its
// first row (1-based) and the column its rows are indented by. A block scalar (`|`, `>`) starts
// on the line after its indicator, indented like its first non-blank line; any other scalar is
// taken to start right after its mark (exact for a one-line quoted or plain scalar).
struct ScalarOrigin {
  int line = 0;
  int column = 0;  // added to a Rego column
};

ScalarOrigin scalar_origin(const Ctx& ctx, const YAML::Node& node) {
  const std::string_view body = ctx.document.substr(std::min(ctx.body_offset, ctx.document.size()));
  const auto mark = node.Mark();
  ScalarOrigin o{line_of(node), mark.column};
  const auto pos = static_cast<size_t>(std::max(0, mark.pos));
  if (pos >= body.size() || (body[pos] != '|' && body[pos] != '>')) {
    if (pos < body.size() && (body[pos] == '"' || body[pos] == '\'')) ++o.column;
    return o;
  }
  size_t line_start = body.find('\n', pos);
  int line = o.line;
  while (line_start != std::string_view::npos) {
    ++line;
    const size_t begin = line_start + 1;
    const size_t eol = std::min(body.find('\n', begin), body.size());
    const auto text = body.substr(begin, eol - begin);
    const auto indent = text.find_first_not_of(' ');
    if (indent != std::string_view::npos && text[indent] != '\r') {
      // Rows before the first non-blank one are blank lines of the scalar itself.
      return {o.line + 1, static_cast<int>(indent)};
    }
    line_start = eol < body.size() ? eol : std::string_view::npos;
  }
  return {o.line + 1, 0};
}

}  // namespace

Status parse_opa_policy(Ctx& ctx, const YAML::Node& spec, const YAML::Node& doc, OpaPolicy& p) {
  std::vector<YAML::Node> module_nodes;
  YAML::Node data_node;
  YAML::Node decision_node;
  bool has_policy = false, has_modules = false;
  auto s = for_each_field(
      ctx, spec, "OPAPolicy.spec",
      {"selector", "policy", "modules", "data", "decision", "regoVersion", "onError", "includeRequestBody"},
      [&](const std::string& key, const YAML::Node& v) -> Status {
        if (key == "selector") return parse_selector(ctx, v, p.selector);
        if (key == "policy" || key == "modules") {
          (key == "policy" ? has_policy : has_modules) = true;
          if (key == "policy") {
            auto text = scalar(ctx, v, "spec.policy");
            if (!text) return fail(text.error());
            module_nodes.push_back(v);
            p.modules.push_back(std::move(*text));
            return {};
          }
          if (!v.IsSequence() || v.size() == 0)
            return err(ctx, v, "spec.modules must be a non-empty list of Rego modules");
          for (const auto& item : v) {
            if (auto st = spend(ctx, item); !st) return st;
            auto text = scalar(ctx, item, "spec.modules entries");
            if (!text) return fail(text.error());
            module_nodes.push_back(item);
            p.modules.push_back(std::move(*text));
          }
          return {};
        }
        if (key == "data") {
          if (!v.IsMap()) return err(ctx, v, "spec.data must be a mapping (it is placed under data)");
          data_node = v;
          return spend_tree(ctx, v);
        }
        if (key == "includeRequestBody") {
          p.include_request_body.present = true;
          bool has_max = false;
          auto st = for_each_field(
              ctx, v, "includeRequestBody", {"maxBytes", "allowPartial"},
              [&](const std::string& k, const YAML::Node& x) -> Status {
                auto text = scalar(ctx, x, "includeRequestBody." + k);
                if (!text) return fail(text.error());
                if (k == "allowPartial") {
                  if (*text != "true" && *text != "false") {
                    return err(ctx, x, "includeRequestBody.allowPartial must be true or false",
                               "policy.bad_value");
                  }
                  p.include_request_body.allow_partial = *text == "true";
                  return {};
                }
                uint32_t n = 0;
                const auto* end = text->data() + text->size();
                auto [ptr, ec] = std::from_chars(text->data(), end, n);
                if (ec != std::errc() || ptr != end || n == 0 || n > (16u << 20)) {
                  return err(ctx, x,
                             "includeRequestBody.maxBytes must be a whole number of bytes from 1 to 16777216",
                             "policy.bad_value");
                }
                p.include_request_body.max_bytes = n;
                has_max = true;
                return {};
              });
          if (!st) return st;
          if (!has_max) return err(ctx, v, "includeRequestBody.maxBytes is required");
          return {};
        }
        auto text = scalar(ctx, v, "spec." + key);
        if (!text) return fail(text.error());
        if (key == "decision") {
          p.decision = *text;
          decision_node = v;
          p.decision_path = decision_path(*text);
          if (p.decision_path.empty()) {
            return err(ctx, v,
                       "spec.decision must name a rule under data, like data.envoy.authz.allow or "
                       "envoy/authz/allow, "
                       "not \"" +
                           *text + "\"",
                       "policy.bad_value");
          }
        } else if (key == "regoVersion") {
          if (*text != "v1" && *text != "v0") {
            return err(ctx, v, "spec.regoVersion must be v1 or v0, not \"" + *text + "\"",
                       "policy.bad_value");
          }
          p.rego_v0 = *text == "v0";
        } else if (*text == "Deny" || *text == "Allow") {  // onError
          p.allow_on_error = *text == "Allow";
        } else {
          return err(ctx, v, "spec.onError must be Deny or Allow, not \"" + *text + "\"", "policy.bad_value");
        }
        return {};
      });
  if (!s) return s;
  const YAML::Node& at = spec.IsDefined() && !spec.IsNull() ? spec : doc;
  if (has_policy == has_modules)
    return err(ctx, at, "OPAPolicy: exactly one of spec.policy and spec.modules is required");
  if (p.decision_path.empty()) p.decision_path = decision_path(p.decision);

  std::vector<rego::ModuleSource> sources;
  for (size_t i = 0; i < p.modules.size(); ++i) {
    sources.push_back({has_policy ? "spec.policy" : "spec.modules[" + std::to_string(i) + "]", p.modules[i],
                       p.rego_v0 ? rego::RegoVersion::V0 : rego::RegoVersion::V1});
  }
  rego::Value data =
      data_node.IsDefined() ? rego::yaml_node_to_value(data_node) : rego::Value::empty_object();
  auto plan = rego::compile(sources, std::move(data));
  if (!plan) {
    const auto& errors = plan.error();
    if (errors.empty())
      return err(ctx, at, "OPAPolicy " + p.meta.full_name() + ": the Rego modules do not compile");
    const auto& e = errors.front();
    // Map the module's row:col to the file's line:column.
    std::string where = ctx.source + ":" + std::to_string(line_of(at));
    for (size_t i = 0; i < sources.size(); ++i) {
      if (e.file != sources[i].file || e.row <= 0) continue;
      const auto origin = scalar_origin(ctx, module_nodes[i]);
      where = ctx.source + ":" + std::to_string(origin.line + e.row - 1) + ":" +
              std::to_string(origin.column + e.col);
    }
    std::string more = errors.size() > 1 ? " (and " + std::to_string(errors.size() - 1) + " more)" : "";
    return fail("policy.bad_rego", where + ": OPAPolicy " + p.meta.full_name() + ": " +
                                       (e.file.empty() ? std::string("spec") : e.file) + ": " + e.code +
                                       ": " + e.message + more);
  }
  p.plan = std::move(*plan);
  return {};
}

}  // namespace mg::policy::detail
