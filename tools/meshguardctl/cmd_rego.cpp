// meshguardctl rego eval: evaluates a Rego query like `opa eval --format json` (rego/engine.h).
//   meshguardctl rego eval [-d FILE|DIR]... [-i INPUT.json] [--v0-compatible] [--strict-builtin-errors]
//                          [-f json] QUERY
// Output is exactly opa eval's JSON: {"result":[...]} / {} when undefined / {"errors":[...]} + exit 1.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "rego/engine.h"
#include "rego/yaml_value.h"

namespace mg::ctl {

namespace {

namespace fs = std::filesystem;

struct RegoEvalOptions {
  std::vector<std::string> data;
  std::string input;
  bool v0 = false;
  bool strict = false;
  std::string format = "json";
  std::string query;
};

// Re-indents compact JSON the way Go's json.MarshalIndent(v, "", "  ") prints it.
std::string indent_json(const std::string& compact) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  auto newline = [&]() {
    out.push_back('\n');
    out.append(static_cast<size_t>(depth) * 2, ' ');
  };
  for (size_t i = 0; i < compact.size(); ++i) {
    char c = compact[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\') {
        out.push_back(compact[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        out.push_back(c);
        break;
      case '{':
      case '[':
        out.push_back(c);
        if (i + 1 < compact.size() && (compact[i + 1] == '}' || compact[i + 1] == ']')) {
          out.push_back(compact[++i]);
          break;
        }
        ++depth;
        newline();
        break;
      case '}':
      case ']':
        --depth;
        newline();
        out.push_back(c);
        break;
      case ',':
        out.push_back(c);
        newline();
        break;
      case ':':
        out += ": ";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string json_string(const std::string& s) { return rego::Value::string(s).to_json_text(); }

int print_errors(const rego::RegoErrors& errors) {
  std::string out = "{\"errors\":[";
  for (size_t i = 0; i < errors.size(); ++i) {
    const auto& e = errors[i];
    if (i) out += ",";
    out += "{\"message\":" + json_string(e.message) + ",\"code\":" + json_string(e.code);
    if (e.row > 0)
      out += ",\"location\":{\"file\":" + json_string(e.file) + ",\"row\":" + std::to_string(e.row) +
             ",\"col\":" + std::to_string(e.col) + "}";
    out += "}";
  }
  out += "]}";
  std::cout << indent_json(out) << "\n";
  return 1;
}

rego::RegoError load_error(const std::string& file, const std::string& message) {
  rego::RegoError e;
  e.code = "rego_parse_error";  // a file that cannot be read or parsed
  e.message = message;
  e.file = file;
  return e;
}

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Deep-merges `add` into `base` (objects merge; anything else must not collide).
std::optional<rego::Value> merge(const rego::Value& base, const rego::Value& add) {
  if (!base.is_object() || !add.is_object()) return std::nullopt;
  rego::ObjectItems items = base.as_object();
  for (const auto& entry : add.as_object()) {
    // Not a structured binding: clang 14 cannot capture one in the lambda.
    const auto& k = entry.first;
    const auto& v = entry.second;
    auto it = std::find_if(items.begin(), items.end(), [&](const auto& kv) { return kv.first == k; });
    if (it == items.end()) {
      items.emplace_back(k, v);
      continue;
    }
    auto m = merge(it->second, v);
    if (!m) return std::nullopt;
    it->second = *m;
  }
  return rego::Value::object(std::move(items));
}

rego::Value nest(const std::vector<std::string>& prefix, rego::Value v) {
  for (auto it = prefix.rbegin(); it != prefix.rend(); ++it)
    v = rego::Value::object({{rego::Value::string(*it), std::move(v)}});
  return v;
}

struct Loaded {
  std::vector<rego::ModuleSource> modules;
  rego::Value data = rego::Value::empty_object();
  rego::RegoErrors errors;
};

void load_file(const fs::path& path, const std::vector<std::string>& prefix, bool v0, Loaded& out) {
  std::string name = path.string();
  auto ext = path.extension().string();
  if (ext != ".rego" && ext != ".json" && ext != ".yaml" && ext != ".yml") return;
  auto text = read_text(path);
  if (!text) {
    out.errors.push_back(load_error(name, "cannot read " + name));
    return;
  }
  if (ext == ".rego") {
    out.modules.push_back({name, *text, v0 ? rego::RegoVersion::V0 : rego::RegoVersion::V1});
    return;
  }
  std::string err;
  std::optional<rego::Value> v =
      ext == ".json" ? rego::Value::parse_json(*text, &err) : rego::yaml_to_value(*text, &err);
  if (!v) {
    out.errors.push_back(load_error(name, name + ": " + err));
    return;
  }
  auto merged = merge(out.data, nest(prefix, *v));
  if (!merged) {
    out.errors.push_back(
        load_error(name, name + ": merge error: data files must be objects that do not collide"));
    return;
  }
  out.data = *merged;
}

Loaded load_paths(const std::vector<std::string>& paths, bool v0) {
  Loaded out;
  for (const auto& p : paths) {
    fs::path root(p);
    std::error_code ec;
    if (fs::is_directory(root, ec)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(root, ec))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        // As opa's loader: a data file below the directory is placed under its relative path.
        std::vector<std::string> prefix;
        for (const auto& part : fs::relative(f.parent_path(), root)) {
          if (part == ".") continue;
          prefix.push_back(part.string());
        }
        load_file(f, prefix, v0, out);
      }
    } else if (fs::exists(root, ec)) {
      load_file(root, {}, v0, out);
    } else {
      out.errors.push_back(load_error(p, "stat " + p + ": no such file or directory"));
    }
  }
  return out;
}

int run_rego_eval(const RegoEvalOptions& opt) {
  if (opt.format != "json") return fail_line("rego eval: unsupported format " + opt.format + " (only json)");
  Loaded loaded = load_paths(opt.data, opt.v0);
  if (!loaded.errors.empty()) return print_errors(loaded.errors);
  std::optional<rego::Value> input;
  if (!opt.input.empty()) {
    auto text = read_text(opt.input);
    if (!text) return print_errors({load_error(opt.input, "cannot read " + opt.input)});
    std::string err;
    fs::path ip(opt.input);
    auto ext = ip.extension().string();
    input = (ext == ".yaml" || ext == ".yml") ? rego::yaml_to_value(*text, &err)
                                              : rego::Value::parse_json(*text, &err);
    if (!input) return print_errors({load_error(opt.input, opt.input + ": " + err)});
  }
  auto plan = rego::compile(loaded.modules, loaded.data);
  if (!plan) return print_errors(plan.error());
  auto query = rego::prepare_query(*plan, opt.query);
  if (!query) return print_errors(query.error());
  rego::EvalOptions eo;
  eo.input = input ? &*input : nullptr;
  eo.strict_builtin_errors = opt.strict;
  auto result = rego::evaluate(**query, eo);
  if (!result) return print_errors(result.error());
  if (result->empty()) {
    std::cout << "{}\n";
    return 0;
  }
  std::string out = "{\"result\":[";
  for (size_t i = 0; i < result->size(); ++i) {
    const auto& s = (*result)[i];
    if (i) out += ",";
    out += "{\"expressions\":[";
    for (size_t j = 0; j < s.expressions.size(); ++j) {
      const auto& e = (*query)->exprs[j];
      if (j) out += ",";
      out += "{\"value\":" + s.expressions[j].to_json_text() + ",\"text\":" + json_string(e.text) +
             ",\"location\":{\"row\":" + std::to_string(e.loc.row) + ",\"col\":" + std::to_string(e.loc.col) +
             "}}";
    }
    out += "]";
    if (!s.bindings.empty()) {
      std::vector<std::pair<std::string, rego::Value>> b = s.bindings;
      std::sort(b.begin(), b.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      out += ",\"bindings\":{";
      for (size_t k = 0; k < b.size(); ++k) {
        if (k) out += ",";
        out += json_string(b[k].first) + ":" + b[k].second.to_json_text();
      }
      out += "}";
    }
    out += "}";
  }
  out += "]}";
  std::cout << indent_json(out) << "\n";
  return 0;
}

}  // namespace

void register_rego_commands(CLI::App& app, Action& action) {
  auto* rego = app.add_subcommand("rego", "Rego policy engine (OPA-compatible)");
  rego->require_subcommand(1);
  auto opt = std::make_shared<RegoEvalOptions>();
  auto* eval = rego->add_subcommand("eval", "Evaluate a Rego query (as opa eval --format json)");
  eval->add_option("-d,--data", opt->data,
                   "Policy (.rego) or data (.json, .yaml) file or directory; repeatable");
  eval->add_option("-i,--input", opt->input, "Input document (JSON)");
  eval->add_flag("--v0-compatible", opt->v0, "Parse modules as Rego v0 (`allow { ... }`)");
  eval->add_flag("--strict-builtin-errors", opt->strict,
                 "A built-in's runtime error is an error, not undefined");
  eval->add_option("-f,--format", opt->format, "Output format (json)")->capture_default_str();
  eval->add_option("query", opt->query, "Rego query, e.g. data.authz.allow")->required();
  eval->callback([&action, opt] { action = [opt] { return run_rego_eval(*opt); }; });
}

}  // namespace mg::ctl
