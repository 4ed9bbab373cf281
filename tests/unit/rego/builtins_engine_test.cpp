// Built-ins through the engine: I/O built-ins refused at compile time by name, one evaluation sees
// one time, print reaches the evaluation's sink, and built-in errors follow strict mode.
#include <gtest/gtest.h>

#include "rego/engine.h"

namespace mg::rego::test {
namespace {

Result<std::vector<Solution>, RegoErrors> run(const std::string& module, const std::string& query,
                                              EvalOptions opts = {}) {
  auto plan = compile({ModuleSource{"p.rego", module, RegoVersion::V1}}, Value::empty_object());
  if (!plan) return fail(plan.error());
  auto q = prepare_query(*plan, query);
  if (!q) return fail(q.error());
  return evaluate(**q, opts);
}

TEST(RegoBuiltinsEngine, IoBuiltinsAreRefusedAtCompileTime) {
  for (const char* call : {"http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1/\"})",
                           "net.lookup_ip_addr(\"localhost\")", "opa.runtime()"}) {
    auto r = run(std::string("package p\nx := ") + call + "\n", "data.p.x");
    ASSERT_FALSE(r.has_value()) << call;
    ASSERT_FALSE(r.error().empty());
    EXPECT_EQ(r.error()[0].code, "rego_type_error") << call;
    const std::string name = std::string(call).substr(0, std::string(call).find('('));
    EXPECT_NE(r.error()[0].message.find(name), std::string::npos) << r.error()[0].message;
  }
}

TEST(RegoBuiltinsEngine, OneEvaluationSeesOneTime) {
  EvalOptions opts;
  opts.now_ns = 1517814000000000000;
  auto r = run("package p\nsame if time.now_ns() == time.now_ns()\nday := time.date(time.now_ns())\n",
               "data.p.same; d := data.p.day", opts);
  ASSERT_TRUE(r.has_value()) << r.error()[0].to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].bindings[0].second.to_json_text(), "[2018,2,5]");
}

TEST(RegoBuiltinsEngine, PrintGoesToTheSink) {
  struct Sink : PrintSink {
    std::vector<std::string> lines;
    void print(std::string_view l) override { lines.emplace_back(l); }
  } sink;
  EvalOptions opts;
  opts.print = &sink;
  auto r = run("package p\nallow if {\n  print(\"user\", input.user)\n  input.user == \"bob\"\n}\n",
               "data.p.allow", [&] {
                 static const Value input = *Value::parse_json(R"j({"user": "bob"})j");
                 opts.input = &input;
                 return opts;
               }());
  ASSERT_TRUE(r.has_value()) << r.error()[0].to_string();
  EXPECT_EQ(r->size(), 1u);
  ASSERT_EQ(sink.lines.size(), 1u);
  EXPECT_EQ(sink.lines[0], "user bob");
}

TEST(RegoBuiltinsEngine, BuiltinErrorsAreUndefinedUnlessStrict) {
  const std::string module = "package p\nn := to_number(\"broken\")\n";
  auto lax = run(module, "x := data.p.n");
  ASSERT_TRUE(lax.has_value());
  EXPECT_TRUE(lax->empty());
  EvalOptions strict;
  strict.strict_builtin_errors = true;
  auto r = run(module, "x := data.p.n", strict);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].code, "eval_builtin_error");
  EXPECT_NE(r.error()[0].message.find("to_number: strconv.ParseFloat: parsing \"broken\": invalid syntax"),
            std::string::npos)
      << r.error()[0].message;
}

}  // namespace
}  // namespace mg::rego::test
