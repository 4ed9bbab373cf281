// Rego module text: the first byte picks v0 or v1 syntax; the rest is parsed and compiled. Any
// input must give a plan or errors with OPA codes, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rego/engine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto version = (data[0] & 1) ? mg::rego::RegoVersion::V0 : mg::rego::RegoVersion::V1;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto plan = mg::rego::compile({{"fuzz.rego", text, version}}, mg::rego::Value::empty_object());
  if (!plan) {
    for (const auto& e : plan.error())
      if (e.code.empty() || e.message.empty()) __builtin_trap();
  }
  (void)mg::rego::parse_value(text);
  (void)mg::rego::parse_query(text);
  return 0;
}
