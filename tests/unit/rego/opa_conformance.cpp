// OPA conformance runner: evaluates every case of OPA's own test cases (YAML, read from
// ../shared/conformance/opa or $MG_OPA_CONFORMANCE_DIR — never copied into this repository) with
// mg_rego and compares with the expected results. A failing case must be listed, with its reason,
// in opa_expected_failures.txt; an unlisted failure fails the test, a listed case that passes is
// reported so the list shrinks. Prints the pass count per topic (docs/CONFORMANCE.md).
//   opa_conformance [--list FILE] [--dir DIR] [--verbose] [--only SUBSTRING]
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "rego/engine.h"
#include "rego/yaml_value.h"

namespace fs = std::filesystem;
using namespace mg::rego;

namespace {

// Engine value -> the JSON form the cases are written in (sets as sorted arrays, non-string
// keys as their JSON text).
Value json_form(const Value& v) { return *Value::parse_json(v.to_json_text()); }

Value sorted_array(const Value& v) {
  if (!v.is_array()) return v;
  Array items = v.as_array();
  std::sort(items.begin(), items.end());
  return Value::array(std::move(items));
}

// OPA changed the wording of conflict errors; cases copied from older commits carry the old one.
bool conflict_wording_matches(const std::string& want, const RegoError& got) {
  if (got.code != "eval_conflict_error") return false;
  if (want == "complete rules must not produce multiple outputs")
    return got.message.find("produced conflicting values") != std::string::npos &&
           got.message.rfind("rule ", 0) == 0;
  if (want == "functions must not produce multiple outputs for same inputs")
    return got.message.find("produced conflicting values for the same inputs") != std::string::npos;
  return false;
}

struct Outcome {
  bool pass = false;
  std::string detail;
};

Outcome run_case(const YAML::Node& c) {
  std::vector<ModuleSource> modules;
  if (c["modules"]) {
    int i = 0;
    for (const auto& m : c["modules"])
      modules.push_back({"test-" + std::to_string(i++) + ".rego", m.as<std::string>()});
  }
  Value data = c["data"] ? yaml_node_to_value(c["data"]) : Value::empty_object();
  std::optional<Value> input;
  if (c["input_term"]) {
    auto v = parse_value(c["input_term"].as<std::string>());
    if (!v) return {false, "input_term: " + v.error()[0].to_string()};
    input = *v;
  } else if (c["input"]) {
    input = yaml_node_to_value(c["input"]);
  }
  bool strict = c["strict_error"] && c["strict_error"].as<bool>();
  bool want_error = c["want_error"] || c["want_error_code"];
  std::string want_code = c["want_error_code"] ? c["want_error_code"].as<std::string>() : "";
  std::string want_msg = c["want_error"] ? c["want_error"].as<std::string>() : "";

  RegoErrors errors;
  std::vector<Solution> solutions;
  auto plan = compile(modules, data);
  if (!plan) {
    errors = plan.error();
  } else {
    auto q = prepare_query(*plan, c["query"].as<std::string>());
    if (!q) {
      errors = q.error();
    } else {
      EvalOptions opts;
      opts.input = input ? &*input : nullptr;
      opts.strict_builtin_errors = strict;
      auto r = evaluate(**q, opts);
      if (!r)
        errors = r.error();
      else
        solutions = std::move(*r);
    }
  }

  if (want_error) {
    if (errors.empty())
      return {false, "expected an error, got " + std::to_string(solutions.size()) + " result(s)"};
    const RegoError& e = errors[0];
    std::string text = e.to_string();
    bool code_ok = want_code.empty() || e.code == want_code;
    bool msg_ok =
        want_msg.empty() || text.find(want_msg) != std::string::npos || conflict_wording_matches(want_msg, e);
    if (code_ok && msg_ok) return {true, ""};
    return {false, "error mismatch: got " + text};
  }
  if (!errors.empty()) return {false, "unexpected error: " + errors[0].to_string()};

  bool sort_bindings = c["sort_bindings"] && c["sort_bindings"].as<bool>();
  std::vector<Value> got;
  for (const auto& s : solutions) {
    ObjectItems items;
    for (const auto& [name, v] : s.bindings) {
      Value j = json_form(v);
      items.emplace_back(Value::string(name), sort_bindings ? sorted_array(j) : j);
    }
    got.push_back(Value::object(std::move(items)));
  }
  std::vector<Value> want;
  for (const auto& w : c["want_result"]) {
    Value v = yaml_node_to_value(w);
    if (sort_bindings && v.is_object()) {
      ObjectItems items;
      for (const auto& [k, x] : v.as_object()) items.emplace_back(k, sorted_array(x));
      v = Value::object(std::move(items));
    }
    want.push_back(v);
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  if (got == want) return {true, ""};
  std::string g, w;
  for (const auto& x : got) g += x.to_json_text() + " ";
  for (const auto& x : want) w += x.to_json_text() + " ";
  if (g.size() > 600) g = g.substr(0, 600) + "...";
  if (w.size() > 600) w = w.substr(0, 600) + "...";
  return {false, "result mismatch: got [" + g + "] want [" + w + "]"};
}

std::map<std::string, std::string> load_expected(const fs::path& p) {
  std::map<std::string, std::string> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto tab = line.find('\t');
    std::string id = line.substr(0, tab);
    std::string reason = tab == std::string::npos ? "" : line.substr(tab + 1);
    while (!id.empty() && id.back() == ' ') id.pop_back();
    out[id] = reason;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  std::string list;
  std::string only;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--list" && i + 1 < argc)
      list = argv[++i];
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (a == "--verbose")
      verbose = true;
  }
  if (const char* env = std::getenv("MG_OPA_CONFORMANCE_DIR"); env && dir.empty()) dir = env;
  if (dir.empty() || !fs::is_directory(dir)) {
    std::cout << "SKIPPED: OPA conformance cases not found (" << (dir.empty() ? "no directory" : dir)
              << "); set MG_OPA_CONFORMANCE_DIR or provide ../shared/conformance/opa\n";
    return 77;  // CTest SKIP_RETURN_CODE
  }
  auto expected = list.empty() ? std::map<std::string, std::string>{} : load_expected(list);

  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    auto ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());

  struct Tally {
    int total = 0, pass = 0;
  };
  std::map<std::string, Tally> topics;
  std::vector<std::string> unexpected, now_passing;
  std::set<std::string> seen;
  for (const auto& file : files) {
    std::string rel = fs::relative(file, dir).generic_string();
    std::string topic = rel.substr(0, rel.find('/'));
    YAML::Node doc;
    try {
      doc = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
      std::cout << "cannot read " << rel << ": " << e.what() << "\n";
      unexpected.push_back(rel);
      continue;
    }
    int index = 0;
    for (const auto& c : doc["cases"]) {
      std::string id = rel + "#" + std::to_string(index++);
      if (!only.empty() && id.find(only) == std::string::npos) continue;
      seen.insert(id);
      Outcome o;
      try {
        o = run_case(c);
      } catch (const std::exception& e) {
        o = {false, std::string("runner exception: ") + e.what()};
      }
      auto& t = topics[topic];
      ++t.total;
      if (o.pass) ++t.pass;
      bool listed = expected.count(id) > 0;
      std::string note = c["note"] ? c["note"].as<std::string>() : "";
      if (!o.pass && !listed) {
        unexpected.push_back(id);
        std::cout << "FAIL " << id << " (" << note << "): " << o.detail << "\n";
      } else if (!o.pass && verbose) {
        std::cout << "known " << id << " (" << note << "): " << o.detail << "\n";
      } else if (o.pass && listed) {
        now_passing.push_back(id);
      }
    }
  }

  int total = 0, pass = 0;
  std::cout << "\n| topic | passed | cases |\n|---|---|---|\n";
  for (const auto& [topic, t] : topics) {
    std::cout << "| " << topic << " | " << t.pass << " | " << t.total << " |\n";
    total += t.total;
    pass += t.pass;
  }
  std::cout << "| **all** | **" << pass << "** | **" << total << "** |\n\n";
  for (const auto& id : now_passing)
    std::cout << "NOW PASSING (remove from the expected-failures list): " << id << "\n";
  for (const auto& [id, reason] : expected)
    if (!seen.count(id) && only.empty())
      std::cout << "listed but not found (remove from the list): " << id << "\n";
  if (!unexpected.empty()) {
    std::cout << unexpected.size() << " unexpected failure(s)\n";
    return 1;
  }
  std::cout << "conformance: " << pass << "/" << total
            << " passed; every failure is listed with its reason\n";
  return 0;
}
