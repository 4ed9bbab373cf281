// policy/parse_walkers.cpp — the YAML node walkers every parser file of src/policy shares
// (declared in parse_internal.h): line numbers, errors that name "<source>:<line>", the alias
// budget, scalars, maps, lists of strings / patterns / CIDRs / ports, and workload selectors.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <string>
#include <vector>

#include "policy/match.h"
#include "policy/parse_internal.h"

namespace mg::policy::detail {

thread_local const Ctx* current_ctx = nullptr;

int line_of(const YAML::Node& n) {
  const int offset = current_ctx ? current_ctx->line_offset : 0;
  return n.Mark().line >= 0 ? n.Mark().line + 1 + offset : offset + 1;
}

Unexpected<Error> err(const Ctx& ctx, const YAML::Node& at, const std::string& why, const char* code) {
  return fail(code, ctx.source + ":" + std::to_string(line_of(at)) + ": " + why);
}

Status spend(Ctx& ctx, const YAML::Node& at) {
  if (ctx.budget == 0) return err(ctx, at, "document too large (alias expansion?)");
  --ctx.budget;
  return {};
}

Result<std::string> scalar(const Ctx& ctx, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) return err(ctx, n, what + " must be a string");
  return n.Scalar();
}

Status string_map(Ctx& ctx, const YAML::Node& n, const std::string& what,
                  std::map<std::string, std::string>& out) {
  if (n.IsNull()) return {};
  if (!n.IsMap()) return err(ctx, n, what + " must be a mapping of strings");
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (auto s = spend(ctx, it->first); !s) return s;
    if (!it->first.IsScalar() || it->first.Scalar().empty())
      return err(ctx, it->first, what + ": keys must be non-empty strings");
    auto v = scalar(ctx, it->second, what + "." + it->first.Scalar());
    if (!v) return fail(v.error());
    if (!out.emplace(it->first.Scalar(), std::move(*v)).second) {
      return err(ctx, it->first, what + ": duplicate key \"" + it->first.Scalar() + "\"");
    }
  }
  return {};
}

Result<bool> boolean(const Ctx& ctx, const YAML::Node& n, const std::string& what) {
  auto text = scalar(ctx, n, what);
  if (!text) return fail(text.error());
  if (*text != "true" && *text != "false")
    return err(ctx, n, what + " must be true or false", "policy.bad_value");
  return *text == "true";
}

Result<uint32_t> whole_number(const Ctx& ctx, const YAML::Node& n, const std::string& what, uint32_t min,
                              uint32_t max) {
  auto text = scalar(ctx, n, what);
  if (!text) return fail(text.error());
  uint32_t v = 0;
  const auto* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, v);
  if (text->empty() || ec != std::errc() || ptr != end || v < min || v > max) {
    return err(ctx, n,
               what + " must be a whole number from " + std::to_string(min) + " to " + std::to_string(max) +
                   ", not \"" + *text + "\"",
               "policy.bad_value");
  }
  return v;
}

Status string_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (n.IsNull()) return {};
  if (!n.IsSequence()) return err(ctx, n, what + " must be a list of strings");
  for (const auto& item : n) {
    if (auto s = spend(ctx, item); !s) return s;
    auto v = scalar(ctx, item, what + " entries");
    if (!v) return fail(v.error());
    out.push_back(std::move(*v));
  }
  return {};
}

// A list whose values are Istio string patterns (validated, kept as text).
Status pattern_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (v.find("{*") != std::string::npos) {
      return err(ctx, n, what + ": \"" + v + "\": path templates ({*}, {**}) are not supported");
    }
    if (auto m = parse_string_match(v); !m)
      return err(ctx, n, what + ": " + m.error().message, "policy.bad_value");
  }
  return {};
}

Status cidr_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (auto c = parse_cidr(v); !c) return err(ctx, n, what + ": " + c.error().message, "policy.bad_cidr");
  }
  return {};
}

Status port_list(Ctx& ctx, const YAML::Node& n, const std::string& what, std::vector<std::string>& out) {
  if (auto s = string_list(ctx, n, what, out); !s) return s;
  for (const auto& v : out) {
    if (auto p = parse_port(v); !p) return err(ctx, n, what + ": " + p.error().message, "policy.bad_port");
  }
  return {};
}

Status parse_selector(Ctx& ctx, const YAML::Node& n, Selector& out) {
  auto s = for_each_field(ctx, n, "selector", {"matchLabels"}, [&](const std::string&, const YAML::Node& v) {
    return string_map(ctx, v, "selector.matchLabels", out.match_labels);
  });
  out.present = !out.match_labels.empty();
  return s;
}

}  // namespace mg::policy::detail
