// Unit tests for the Rego engine beyond OPA's conformance cases: budgets, sharing a compiled
// plan across threads, the I/O built-in refusal.
#include <gtest/gtest.h>

#include <thread>

#include "rego/engine.h"

namespace mg::rego {
namespace {

std::shared_ptr<const Plan> must_compile(const std::string& text, Value data = Value::empty_object()) {
  auto p = compile({{"policy.rego", text}}, std::move(data));
  EXPECT_TRUE(p) << (p ? "" : p.error()[0].to_string());
  return p ? *p : nullptr;
}

std::vector<Solution> must_eval(const std::shared_ptr<const Plan>& plan, const std::string& query,
                                const Value* input = nullptr) {
  auto q = prepare_query(plan, query);
  EXPECT_TRUE(q) << (q ? "" : q.error()[0].to_string());
  EvalOptions o;
  o.input = input;
  auto r = evaluate(**q, o);
  EXPECT_TRUE(r) << (r ? "" : r.error()[0].to_string());
  return r ? *r : std::vector<Solution>{};
}

TEST(RegoEngine, EvaluatesAPolicy) {
  auto plan = must_compile(
      R"(package authz
default allow := false
allow if {
  some role in data.bindings[input.user]
  data.roles[role][_] == input.action
})",
      *Value::parse_json(R"({"bindings":{"alice":["admin"]},"roles":{"admin":["read","write"]}})"));
  Value in = *Value::parse_json(R"({"user":"alice","action":"write"})");
  auto r = must_eval(plan, "data.authz.allow", &in);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].expressions[0], Value::boolean(true));
  Value other = *Value::parse_json(R"({"user":"bob","action":"write"})");
  r = must_eval(plan, "data.authz.allow", &other);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].expressions[0], Value::boolean(false));
}

TEST(RegoEngine, StepBudgetStopsAnExpensiveCrossProduct) {
  Array items;
  for (int i = 0; i < 300; ++i) items.push_back(Value::number(i));
  ObjectItems d{{Value::string("xs"), Value::array(items)}};
  auto plan = must_compile(R"(package cross
pairs := count([[a, b, c] | a := data.xs[_]; b := data.xs[_]; c := data.xs[_]]))",
                           Value::object(std::move(d)));
  auto q = prepare_query(plan, "data.cross.pairs");
  ASSERT_TRUE(q);
  EvalOptions o;
  o.max_steps = 100000;
  auto r = evaluate(**q, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error()[0].code, "eval_cancel_error");
  EXPECT_NE(r.error()[0].message.find("step budget"), std::string::npos);
}

TEST(RegoEngine, DeepBodiesHitTheNestingBudgetNotTheStack) {
  std::string body = "package deep\np if {\n";
  for (int i = 0; i < 20000; ++i) body += "  x" + std::to_string(i) + " := " + std::to_string(i) + "\n";
  body += "}\n";
  auto plan = must_compile(body);
  ASSERT_TRUE(plan);
  auto q = prepare_query(plan, "data.deep.p");
  ASSERT_TRUE(q);
  auto r = evaluate(**q, EvalOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error()[0].code, "eval_cancel_error");
  EXPECT_NE(r.error()[0].message.find("nesting"), std::string::npos);
}

TEST(RegoEngine, MemoryBudgetOverrunIsAnError) {
  Array items;
  for (int i = 0; i < 2000; ++i) items.push_back(Value::number(i));
  ObjectItems d{{Value::string("xs"), Value::array(items)}};
  auto plan = must_compile(R"(package mem
big := [[a, b] | a := data.xs[_]; b := data.xs[_]])",
                           Value::object(std::move(d)));
  auto q = prepare_query(plan, "data.mem.big");
  ASSERT_TRUE(q);
  EvalOptions o;
  o.max_bytes = 1 << 20;
  auto r = evaluate(**q, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error()[0].code, "eval_cancel_error");
  EXPECT_NE(r.error()[0].message.find("memory"), std::string::npos);
}

TEST(RegoEngine, SharedPlanEvaluatesOnTwoThreads) {
  auto plan = must_compile(R"(package t
allow if { input.n > 10; count(evens) > 2 }
evens contains x if { some x in input.xs; x % 2 == 0 })");
  auto q = prepare_query(plan, "data.t.allow");
  ASSERT_TRUE(q);
  auto work = [&](int seed, int* trues) {
    for (int i = 0; i < 2000; ++i) {
      Array xs;
      for (int j = 0; j < 8; ++j) xs.push_back(Value::number(seed + i + j));
      Value in = Value::object(
          {{Value::string("n"), Value::number(i % 20)}, {Value::string("xs"), Value::array(xs)}});
      EvalOptions o;
      o.input = &in;
      auto r = evaluate(**q, o);
      if (r && !r->empty()) ++*trues;
    }
  };
  int a = 0, b = 0;
  std::thread t1(work, 0, &a), t2(work, 1, &b);
  t1.join();
  t2.join();
  EXPECT_EQ(a, 900);  // n in 11..19 for 9 of every 20 inputs; 4 evens among 8 consecutive numbers
  EXPECT_EQ(b, 900);
}

TEST(RegoEngine, MockFunctionsReachTheOriginals) {
  auto plan = must_compile(R"(package w
mock_count("one") := 1
mock_count(x) := count(x) if x != "one"
p := s if { s := {count(n) | some n in {"one", "two", "tree"}} with count as mock_count }
f(_) := 1
g(x) := count(x)
q := y if { y = count([1, 2, 3]) with count as f }
r := y if { y = q with count as g }
h(_) := 2
l if { h([1], 1) with h as count })");
  auto r = must_eval(plan, "x := data.w");
  ASSERT_EQ(r.size(), 1u);
  const Value& w = r[0].bindings[0].second;
  EXPECT_EQ(w.get("p")->to_json_text(), "[1,3,4]");  // the mock's own count is the built-in
  EXPECT_EQ(*w.get("r"), Value::number(1));          // the inner mock wins for q
  EXPECT_EQ(*w.get("l"), Value::boolean(true));      // a built-in replaces a function
}

TEST(RegoEngine, AssignmentIsInvisibleToComprehensionsWrittenBeforeIt) {
  // As OPA: `x := 1` declares x from that expression on, so the comprehension above it iterates
  // its own x over every index rather than closing over the later assignment.
  auto plan = must_compile(R"(package order
p := [r, x] if {
  r := [v | v := ["a", "b", "c"][x]]
  x := 1
})");
  auto r = must_eval(plan, "data.order.p");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].expressions[0].to_json_text(), R"([["a","b","c"],1])");
}

TEST(RegoEngine, EvaluatePathReadsRulesAndBaseData) {
  auto plan = must_compile(R"(package app.authz
allow if input.user == "alice"
obj := {"a": {"b": 1}})",
                           *Value::parse_json(R"({"app":{"limits":{"rps":10}}})"));
  Value in = *Value::parse_json(R"({"user":"alice"})");
  EvalOptions o;
  o.input = &in;
  auto allow = evaluate_path(*plan, {"app", "authz", "allow"}, o);
  ASSERT_TRUE(allow);
  ASSERT_TRUE(allow->has_value());
  EXPECT_EQ(**allow, Value::boolean(true));
  auto deep = evaluate_path(*plan, {"app", "authz", "obj", "a", "b"}, o);
  ASSERT_TRUE(deep && deep->has_value());
  EXPECT_EQ(**deep, Value::number(1));
  auto base = evaluate_path(*plan, {"app", "limits", "rps"}, o);
  ASSERT_TRUE(base && base->has_value());
  EXPECT_EQ(**base, Value::number(10));
  auto pkg = evaluate_path(*plan, {"app"}, o);
  ASSERT_TRUE(pkg && pkg->has_value());
  EXPECT_EQ((*pkg)->to_json_text(), R"({"authz":{"allow":true,"obj":{"a":{"b":1}}},"limits":{"rps":10}})");
  EvalOptions none;
  auto undefined = evaluate_path(*plan, {"app", "authz", "allow"}, none);
  ASSERT_TRUE(undefined);
  EXPECT_FALSE(undefined->has_value());
}

TEST(RegoEngine, UnsafeVariableIsACompileErrorWithLocation) {
  auto p = compile({{"x.rego", "package x\np if {\n  y > 1\n}\n"}}, Value::empty_object());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error()[0].code, "rego_unsafe_var_error");
  EXPECT_EQ(p.error()[0].message, "var y is unsafe");
  EXPECT_EQ(p.error()[0].row, 3);
}

TEST(RegoEngine, RecursionIsACompileError) {
  auto p = compile({{"x.rego", "package x\np if q\nq if p\n"}}, Value::empty_object());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error()[0].code, "rego_recursion_error");
}

TEST(RegoEngine, ParseErrorHasRowAndColumn) {
  auto p = compile({{"x.rego", "package x\np if {\n  1 +\n}\n"}}, Value::empty_object());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error()[0].code, "rego_parse_error");
  EXPECT_EQ(p.error()[0].row, 4);
}

TEST(RegoEngine, V0SyntaxPerModule) {
  auto p = compile(
      {{"a.rego", "package a\nallow { input.x == 1 }\nnames[n] { n := input.names[_] }\n", RegoVersion::V0},
       {"b.rego", "package b\nallow if data.a.allow\n"}},
      Value::empty_object());
  ASSERT_TRUE(p) << p.error()[0].to_string();
  Value in = *Value::parse_json(R"({"x":1,"names":["a","b","a"]})");
  auto r = must_eval(*p, "data.b.allow; n := data.a.names", &in);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].bindings[0].second.to_json_text(), R"(["a","b"])");
  // v1 requires `if`.
  EXPECT_FALSE(compile({{"c.rego", "package c\nallow { true }\n"}}, Value::empty_object()));
}

// Plan::input_use: the subtrees of input the rules can read, for a caller that builds only those.
std::string input_use_text(const InputUse& u) {
  if (u.whole) return "whole";
  std::string out;
  for (const auto& p : u.paths) {
    out += out.empty() ? "" : " ";
    for (size_t i = 0; i < p.size(); ++i) out += (i ? "." : "") + p[i];
  }
  return out.empty() ? "none" : out;
}

std::string input_use_of(const std::string& text) {
  auto plan = must_compile(text);
  return plan ? input_use_text(plan->input_use) : "no plan";
}

TEST(RegoInputUse, ConstantPrefixesOfEveryReference) {
  EXPECT_EQ(input_use_of("package p\nallow if data.x == 1"), "none");
  // Every place a reference can sit: bodies, heads, function bodies and arguments, else,
  // comprehensions, `every`, `with` values, negation; a variable key ends the prefix.
  EXPECT_EQ(input_use_of(R"(package p
import input.attributes.request as req
allow if {
  req.http.path == "/"
  input.a.b == 1
  not input.neg
  count([x | x := input.compr[_]]) > 0
  every v in input.every { v > 0 }
  f(1)
  q with input.z as input.withval
}
value := input.head
obj[input.key] := 1
f(x) := input.fn if x == 1
q if input.zz
e := 1 if input.first else := 2 if input.second
dyn if input.d[input.k].deep
)"),
            "a.b attributes.request.http.path compr d every first fn head k key neg second withval zz");
  // A path read whole covers the paths below it.
  EXPECT_EQ(input_use_of("package p\nallow if { input.a.b == 1; input.a; input[\"a\"].c.d }"), "a");
  // The `with` target is a write: `z` is not read (the body reads `zz` only).
  EXPECT_EQ(input_use_of("package p\nallow if q with input.z as 1\nq if input.zz"), "zz");
}

TEST(RegoInputUse, WholeInput) {
  EXPECT_EQ(input_use_of("package p\nallow if input"), "whole");
  EXPECT_EQ(input_use_of("package p\nallow if { some k; input[k] == 1 }"), "whole");
  EXPECT_EQ(input_use_of("package p\nx := input"), "whole");
  EXPECT_EQ(input_use_of("package p\nallow if count(input) > 0"), "whole");
  EXPECT_EQ(input_use_of("package p\nallow if { object.get(input, [\"a\"], 0) == 1 }"), "whole");
  EXPECT_EQ(input_use_of("package p\nallow if q with data.p.d as input\nq if data.p.d.x\nd := {}"), "whole");
  EXPECT_EQ(input_use_of("package p\nallow if input[1]"), "whole");
}

TEST(RegoInputUse, Merge) {
  InputUse a{false, {{"a", "b"}, {"c"}}};
  InputUse b{false, {{"a"}, {"d", "e"}}};
  EXPECT_EQ(input_use_text(merge_input_use(a, b)), "a c d.e");
  EXPECT_EQ(input_use_text(merge_input_use(a, InputUse{})), "whole");
  EXPECT_EQ(input_use_text(merge_input_use(InputUse{false, {}}, InputUse{false, {}})), "none");
}

}  // namespace
}  // namespace mg::rego
