// Fuzzes meshguardctl's query parsers: the first line is a JSONPath template rendered against a
// kubectl-style List, the second a label selector matched against fixed labels, the third a
// resource-type argument. Never crash or hang; an accepted selector matches deterministically.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "jsonpath.h"
#include "kinds.h"
#include "selector.h"

namespace {
const nlohmann::json& list() {
  static const auto* j = new nlohmann::json(nlohmann::json::parse(R"({"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"app": "x", "k.io/n": "y"}}, "spec": {"rules": [{}, {"to": [1, 2]}]}},
    {"metadata": {"name": "b"}, "spec": {}}]})"));
  return *j;
}

std::string_view next_line(std::string_view& in) {
  auto nl = in.find('\n');
  auto line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  return line;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto tmpl = next_line(in);
  const auto selector = next_line(in);
  const auto type = next_line(in);
  (void)mg::ctl::render_jsonpath(tmpl, list());
  if (auto sel = mg::ctl::LabelSelector::parse(selector)) {
    const std::map<std::string, std::string> labels{{"app", "x"}, {"k.io/n", "y"}};
    if (sel->matches(labels) != sel->matches(labels)) std::abort();
  }
  (void)mg::ctl::parse_targets({std::string(type), "name"});
  return 0;
}
