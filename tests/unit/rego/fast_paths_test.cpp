// The evaluator's shortcuts give the answers the general paths give: references resolved once per
// plan (and ignored under `with data`), the rule cache past its inline entries, OPA's early exit
// for constant rules (never across different values), small- and large-object lookups, glob
// patterns matched without the automaton.
#include <gtest/gtest.h>

#include "rego/engine.h"
#include "rego/glob.h"

namespace mg::rego {
namespace {

std::shared_ptr<const Plan> must_compile(const std::string& text, Value data = Value::empty_object()) {
  auto p = compile({{"policy.rego", text}}, std::move(data));
  EXPECT_TRUE(p) << (p ? "" : p.error()[0].to_string());
  return p ? *p : nullptr;
}

// The query's first expression value, or its error text.
std::string eval_text(const std::shared_ptr<const Plan>& plan, const std::string& query, const Value* input = nullptr) {
  auto q = prepare_query(plan, query);
  if (!q) return "compile: " + q.error()[0].to_string();
  EvalOptions o;
  o.input = input;
  auto r = evaluate(**q, o);
  if (!r) return "error: " + r.error()[0].code;
  if (r->empty()) return "undefined";
  for (const auto& [name, v] : r->front().bindings)
    if (name == "x") return v.to_json_text();  // `x := ... with ...`: the value, not the expression's true
  return r->front().expressions[0].to_json_text();
}

TEST(RegoFastPaths, ResolvedDataReferencesReadBaseDataRulesAndWithOverrides) {
  auto plan = must_compile(R"(package a.b
limit := data.config.limit
nested := data.a.b.c.d
p := q.r
q := {"r": 1}
deep := data.x.y.z if true
)",
                           *Value::parse_json(R"({"config":{"limit":7},"a":{"b":{"c":{"d":"base"}}},
                                                  "x":{"y":{"z":[1,2]}}})"));
  EXPECT_EQ(eval_text(plan, "data.a.b.limit"), "7");
  EXPECT_EQ(eval_text(plan, "data.a.b.nested"), "\"base\"");  // base data beside the package's rules
  EXPECT_EQ(eval_text(plan, "data.a.b.p"), "1");
  EXPECT_EQ(eval_text(plan, "data.a.b.deep"), "[1,2]");
  // `with data` replaces documents the resolved references point into: they must follow.
  EXPECT_EQ(eval_text(plan, "x := data.a.b.limit with data.config.limit as 9"), "9");
  EXPECT_EQ(eval_text(plan, "x := data.a.b.limit with data.config as {\"limit\": 3}"), "3");
  EXPECT_EQ(eval_text(plan, "x := data.a.b.p with data.a.b.q as {\"r\": 2}"), "2");
  EXPECT_EQ(eval_text(plan, "x := data.a.b.nested with data.a.b.c.d as \"over\""), "\"over\"");
  EXPECT_EQ(eval_text(plan, "x := data.a.b.deep with data.x.y as {\"z\": 5}"), "5");
  // And the query's own references are resolved too.
  EXPECT_EQ(eval_text(plan, "data.x.y.z[1]"), "2");
}

TEST(RegoFastPaths, InputReferencesWithConstantAndComputedKeys) {
  auto plan = must_compile(R"(package p
m := input.attributes.request.http.method
h := input.attributes.request.http.headers[k] if k := input.want
n := input.list[1].name
)");
  Value in = *Value::parse_json(R"({"attributes":{"request":{"http":{"method":"GET","headers":{"a":"1","b":"2"}}}},
                                   "want":"b","list":[{"name":"x"},{"name":"y"}]})");
  EXPECT_EQ(eval_text(plan, "data.p.m", &in), "\"GET\"");
  EXPECT_EQ(eval_text(plan, "data.p.h", &in), "\"2\"");
  EXPECT_EQ(eval_text(plan, "data.p.n", &in), "\"y\"");
  EXPECT_EQ(eval_text(plan, "x := data.p.m with input.attributes.request.http.method as \"PUT\"", &in), "\"PUT\"");
  Value missing = *Value::parse_json(R"({"attributes":{"request":{}}})");
  EXPECT_EQ(eval_text(plan, "data.p.m", &missing), "undefined");
}

TEST(RegoFastPaths, ManyRulesSpillTheRuleCache) {
  std::string text = "package chain\nr0 := 1\n";
  for (int i = 1; i < 30; ++i) text += "r" + std::to_string(i) + " := r" + std::to_string(i - 1) + " + 1\n";
  text += "total := sum([r0, r9, r10, r19, r29])\n";
  auto plan = must_compile(text);
  EXPECT_EQ(eval_text(plan, "data.chain.total"), std::to_string(1 + 10 + 11 + 20 + 30));
  EXPECT_EQ(eval_text(plan, "data.chain.r29"), "30");
}

TEST(RegoFastPaths, EarlyExitOnlyAcrossEqualConstantValues) {
  auto plan = must_compile(R"(package e
allow if input.a
allow if input.b
default level := 0
level := 1 if input.a
level := 2 if input.b
fallback if input.a
else := false if input.c
fallback if input.b
)");
  Value a = *Value::parse_json(R"({"a":true})");
  Value b = *Value::parse_json(R"({"b":true})");
  Value ab = *Value::parse_json(R"({"a":true,"b":true})");
  Value bc = *Value::parse_json(R"({"b":true,"c":true})");
  Value none = Value::empty_object();
  EXPECT_EQ(eval_text(plan, "data.e.allow", &a), "true");
  EXPECT_EQ(eval_text(plan, "data.e.allow", &b), "true");
  EXPECT_EQ(eval_text(plan, "data.e.allow", &ab), "true");
  EXPECT_EQ(eval_text(plan, "data.e.allow", &none), "undefined");
  EXPECT_EQ(eval_text(plan, "data.e.level", &b), "2");
  // Different values: every definition still runs, and two that hold conflict.
  EXPECT_EQ(eval_text(plan, "data.e.level", &ab), "error: eval_conflict_error");
  // An else with another value is not skipped either: false (else) against true conflicts.
  EXPECT_EQ(eval_text(plan, "data.e.fallback", &bc), "error: eval_conflict_error");
  EXPECT_EQ(eval_text(plan, "data.e.fallback", &ab), "true");
}

TEST(RegoFastPaths, ObjectLookupSmallAndLarge) {
  for (int n : {1, 5, 16, 17, 40}) {
    ObjectItems items;
    for (int i = n - 1; i >= 0; --i) items.emplace_back(Value::string("key" + std::to_string(i)), Value::number(i));
    items.emplace_back(Value::number(1), Value::string("one"));
    items.emplace_back(Value::string("key0"), Value::string("last wins"));  // repeated key
    const Value obj = Value::object(std::move(items));
    ASSERT_EQ(obj.size(), static_cast<size_t>(n) + 1) << n;
    for (int i = 1; i < n; ++i) {
      const std::string k = "key" + std::to_string(i);
      const Value* by_value = obj.get(Value::string(k));  // another node with the same text
      ASSERT_NE(by_value, nullptr) << n << " " << k;
      EXPECT_EQ(*by_value, Value::number(i));
      const Value* by_text = obj.get(std::string_view(k));
      ASSERT_NE(by_text, nullptr) << n << " " << k;
      EXPECT_EQ(*by_text, Value::number(i));
    }
    EXPECT_EQ(*obj.get(std::string_view("key0")), Value::string("last wins"));
    EXPECT_EQ(obj.get(Value::string("key")), nullptr);
    EXPECT_EQ(obj.get(Value::string("key" + std::to_string(n))), nullptr);
    EXPECT_EQ(obj.get(std::string_view("1")), nullptr);  // the number key is not the string "1"
    EXPECT_EQ(*obj.get(Value::number(1.0)), Value::string("one"));
    // Sorted in OPA's order: the number key first, then keys bytewise.
    EXPECT_TRUE(obj.as_object().front().first.is_number());
    for (size_t i = 1; i < obj.as_object().size(); ++i)
      EXPECT_LT(obj.as_object()[i - 1].first.compare(obj.as_object()[i].first), 0);
  }
}

// A pattern wrapped in a one-alternative group means the same, but starts with a split: it always
// runs the automaton, an oracle for the byte-level shortcuts of the plain pattern.
TEST(RegoFastPaths, GlobShortcutsAgreeWithTheAutomaton) {
  const std::vector<std::string> patterns = {"/details/*", "/details/**", "/health", "*", "**", "/api/*/users",
                                             "é*",         "a*",          "a?",      "",  "ab[cd]*", "x\\*y*"};
  const std::vector<std::string> texts = {"/details/1", "/details/1/2", "/details/", "/details", "/detail",
                                          "/health",    "/healthz",     "",          "a",        "a\xff",
                                          "aé",         "aé.b",         "éa",        "abc/d",    "x*yz",
                                          "/api/v1/users"};
  const std::vector<std::vector<char32_t>> delimiter_sets = {{'/'}, {'.'}, {}, {U'é'}, {'/', '.'}};
  for (const auto& p : patterns)
    for (const auto& d : delimiter_sets) {
      auto plain = GlobPattern::compile(p, d);
      auto wrapped = GlobPattern::compile("{" + p + "}", d);
      ASSERT_TRUE(plain) << p;
      ASSERT_TRUE(wrapped) << p;
      for (const auto& t : texts) EXPECT_EQ(plain->match(t), wrapped->match(t)) << p << " ~ " << t;
    }
  auto star = GlobPattern::compile("/details/*", {'/'});
  EXPECT_TRUE(star->match("/details/1"));
  EXPECT_FALSE(star->match("/details/1/2"));
  EXPECT_TRUE(star->match("/details/"));
}

}  // namespace
}  // namespace mg::rego
