// Rego evaluation: the input is "<module>\n----\n<input JSON>"; the module is compiled and
// data.fuzz evaluated with a small step and memory budget. Overruns must be errors
// (eval_cancel_error), never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rego/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string all(reinterpret_cast<const char*>(data), size);
  std::string module = all, input_text = "{}";
  if (auto sep = all.find("\n----\n"); sep != std::string::npos) {
    module = all.substr(0, sep);
    input_text = all.substr(sep + 6);
  }
  auto plan = mg::rego::compile({{"fuzz.rego", "package fuzz\n" + module}}, mg::rego::Value::empty_object());
  if (!plan) return 0;
  auto query = mg::rego::prepare_query(*plan, "x := data.fuzz");
  if (!query) return 0;
  auto input = mg::rego::Value::parse_json(input_text);
  mg::rego::EvalOptions opts;
  opts.input = input ? &*input : nullptr;
  opts.max_steps = 20000;
  opts.max_bytes = 4 << 20;
  opts.now_ns = 1;
  auto r = mg::rego::evaluate(**query, opts);
  if (r) {
    for (const auto& s : *r)
      for (const auto& [name, v] : s.bindings) (void)v.to_json_text();
  }
  return 0;
}
