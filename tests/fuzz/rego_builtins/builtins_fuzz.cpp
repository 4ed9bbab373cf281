// Input: one byte choosing the built-in (by its index in the sorted registry), then the operands
// separated by NUL bytes; an operand that parses as JSON is that value, otherwise it is a string.
// Built-ins must return a value, undefined, or an error — never crash, hang or over-allocate.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rego/builtins.h"

namespace {

const std::vector<const mg::rego::BuiltinDecl*>& callable() {
  static const auto list = [] {
    std::vector<const mg::rego::BuiltinDecl*> out;
    const auto& reg = mg::rego::Registry::standard();
    for (const auto& name : reg.names()) {
      const auto* d = reg.find(name);
      if (d->fn && !d->io && d->name != "print") out.push_back(d);
    }
    return out;
  }();
  return list;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& fns = callable();
  const mg::rego::BuiltinDecl& fn = *fns[data[0] % fns.size()];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<mg::rego::Value> args;
  const size_t want = fn.arity < 0 ? 2 : static_cast<size_t>(fn.arity);
  for (size_t i = 0; i < want; ++i) {
    const size_t nul = rest.find('\0');
    const std::string_view part = rest.substr(0, nul);
    auto json = mg::rego::Value::parse_json(part);
    args.push_back(json ? *json : mg::rego::Value::string(part));
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  mg::rego::Budget budget;
  budget.steps_left = 1'000'000;
  budget.bytes_left = 64u << 20;
  mg::rego::BuiltinContext ctx;
  ctx.now_ns = 1700000000000000000;
  ctx.budget = &budget;
  (void)fn.fn(args, ctx);
  return 0;
}
