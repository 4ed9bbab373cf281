// Calls registered built-ins by name, as the evaluator does, for the builtins_*_test.cpp files.
#pragma once

#include <initializer_list>
#include <string>

#include "rego/builtins.h"

namespace mg::rego::test {

// Parses each argument as JSON (sets: write them with set_of).
Value json(const std::string& text);
Value set_of(std::initializer_list<Value> items);

// Calls `name` with `args`; the context has a fixed time and no budget.
BuiltinResult call(const std::string& name, std::initializer_list<Value> args, BuiltinContext* ctx = nullptr);

// The result as compact JSON, "undefined", or "error(type|builtin): message".
std::string show(const BuiltinResult& r);

// show(call(name, args)) with each arg given as JSON text.
std::string eval(const std::string& name, std::initializer_list<std::string> json_args);

}  // namespace mg::rego::test
