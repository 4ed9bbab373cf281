#include "builtins_test_util.h"

#include <stdexcept>
#include <vector>

namespace mg::rego::test {

Value json(const std::string& text) {
  std::string err;
  auto v = Value::parse_json(text, &err);
  if (!v) throw std::runtime_error("bad JSON in test: " + text + ": " + err);
  return *v;
}

Value set_of(std::initializer_list<Value> items) { return Value::set(std::vector<Value>(items)); }

BuiltinResult call(const std::string& name, std::initializer_list<Value> args, BuiltinContext* ctx) {
  const BuiltinDecl* decl = Registry::standard().find(name);
  if (!decl || !decl->fn) throw std::runtime_error("no built-in " + name);
  const std::vector<Value> argv(args);
  if (decl->arity >= 0 && static_cast<size_t>(decl->arity) != argv.size())
    throw std::runtime_error("arity " + name);
  BuiltinContext local;
  local.now_ns = 1700000000123456789;
  return decl->fn(argv, ctx ? *ctx : local);
}

std::string show(const BuiltinResult& r) {
  if (r.is_undefined()) return "undefined";
  if (r.is_error())
    return std::string("error(") + (r.error().kind == BuiltinError::Kind::Type ? "type" : "builtin") +
           "): " + r.error().message;
  return r.value().to_json_text();
}

std::string eval(const std::string& name, std::initializer_list<std::string> json_args) {
  std::vector<Value> vs;
  for (const auto& a : json_args) vs.push_back(json(a));
  const BuiltinDecl* decl = Registry::standard().find(name);
  if (!decl || !decl->fn) throw std::runtime_error("no built-in " + name);
  BuiltinContext ctx;
  ctx.now_ns = 1700000000123456789;
  return show(decl->fn(vs, ctx));
}

}  // namespace mg::rego::test
