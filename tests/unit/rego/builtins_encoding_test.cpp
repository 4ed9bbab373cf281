// json.*, yaml.*, base64*, hex.*, urlquery.*: Go's acceptance rules and messages.
#include <gtest/gtest.h>

#include "builtins_test_util.h"

namespace mg::rego::test {
namespace {

TEST(RegoEncoding, JsonMarshalUnmarshal) {
  EXPECT_EQ(
      show(call("json.marshal",
                {Value::array({json(R"j({"foo": 1})j"), set_of({Value::number(2), Value::number(1)})})})),
      R"j("[{\"foo\":1},[1,2]]")j");
  EXPECT_EQ(eval("json.marshal", {R"j({"h": "<a&b>"})j"}), R"j("{\"h\":\"\\u003ca\\u0026b\\u003e\"}")j");
  EXPECT_EQ(eval("json.unmarshal", {R"j("{\"a\": [1, 2.50]}")j"}), R"j({"a":[1,2.50]})j");
  EXPECT_EQ(eval("json.unmarshal", {R"j("{")j"}).rfind("error(builtin): ", 0), 0u);
  EXPECT_EQ(eval("json.is_valid", {R"j("plainstring")j"}), "false");
  EXPECT_EQ(eval("json.is_valid", {R"j("{\"json\": \"ok\"}")j"}), "true");
  EXPECT_EQ(eval("json.is_valid", {"1"}), "false");
}

TEST(RegoEncoding, JsonFilterAndRemove) {
  EXPECT_EQ(show(call("json.filter", {json(R"j({"a": [{"b": 7, "c": 8}, {"d": 9}]})j"),
                                      set_of({Value::string("a/0/b"), Value::string("a/1")})})),
            R"j({"a":[{"b":7},{"d":9}]})j");
  EXPECT_EQ(show(call("json.filter", {json(R"j({"a": {"b": {"c": 7, "d": 8, "x": 0}}, "e": 9})j"),
                                      set_of({Value::string("a/b/d"), json(R"j(["a", "b", "c"])j")})})),
            R"j({"a":{"b":{"c":7,"d":8}}})j");
  EXPECT_EQ(show(call("json.remove", {json(R"j({"a": {"b": {"c": 7, "d": 8}, "e": 9}})j"),
                                      set_of({Value::string("a/b/c"), Value::string("a/e")})})),
            R"j({"a":{"b":{"d":8}}})j");
  EXPECT_EQ(eval("json.remove", {R"j({"a": [1, 2, 3]})j", R"j(["/a/1"])j"}), R"j({"a":[1,3]})j");
  EXPECT_EQ(eval("json.remove", {"22", R"j(["a"])j"}),
            "error(type): operand 1 must be object but got number");
  EXPECT_EQ(eval("json.remove", {"{}", "22"}),
            "error(type): operand 2 must be one of {set, array} but got number");
}

TEST(RegoEncoding, Yaml) {
  EXPECT_EQ(eval("yaml.unmarshal", {R"j("foo:\n  - qux: bar\n  - baz: 2\nok: yes\nn: ~\n")j"}),
            R"j({"foo":[{"qux":"bar"},{"baz":2}],"n":null,"ok":true})j");
  EXPECT_EQ(eval("yaml.is_valid", {R"j("foo:\n  - qux: bar\n  - baz: {")j"}), "false");
  EXPECT_EQ(eval("yaml.is_valid", {R"j("a: 1\n---\n\tb: 2\n")j"}), "false");
  EXPECT_EQ(eval("yaml.is_valid", {R"j("a: 1\n---\nb: 2\n")j"}), "true");
  EXPECT_EQ(eval("yaml.is_valid", {R"j("  test:\ntest1: hello\n")j"}), "false");  // dedent below the root
  EXPECT_EQ(eval("yaml.is_valid", {"1"}), "false");
  // Control characters are refused before the YAML parser sees them (a backspace made yaml-cpp
  // emit documents without end: gigabytes, found by rego_builtins_fuzz).
  EXPECT_EQ(eval("yaml.is_valid", {R"j("1.5e3\b1.5e3KiKi")j"}), "false");
  // A stray "," or "!" at the top made yaml-cpp's LoadAll collect empty documents without end.
  for (const char* text : {R"j(",!")j", R"j(",I,I")j", R"j(",\nF\n")j"})
    EXPECT_EQ(eval("yaml.is_valid", {text}), "false") << text;
  EXPECT_NE(eval("yaml.unmarshal", {R"j("a: \u0001")j"}).find("yaml: control characters are not allowed"),
            std::string::npos);
  EXPECT_EQ(eval("yaml.unmarshal", {R"j("a: 1\r\nb:\t2")j"}), R"j({"a":1,"b":2})j");  // tab, CR, LF stay legal
  const BuiltinResult text = call("yaml.marshal", {json(R"j([{"foo": [1, 2, "true"]}])j")});
  ASSERT_TRUE(text.defined());
  EXPECT_EQ(show(call("yaml.unmarshal", {text.value()})), R"j([{"foo":[1,2,"true"]}])j");
}

TEST(RegoEncoding, Base64AndHex) {
  EXPECT_EQ(eval("base64.encode", {R"j("subjects?_d")j"}), R"j("c3ViamVjdHM/X2Q=")j");
  EXPECT_EQ(eval("base64.decode", {R"j("aGVsbG8=")j"}), R"j("hello")j");
  EXPECT_EQ(eval("base64.decode", {R"j("aGVsbG8")j"}), "error(builtin): illegal base64 data at input byte 4");
  EXPECT_EQ(eval("base64.decode", {R"j("aGV$bG8=")j"}),
            "error(builtin): illegal base64 data at input byte 3");
  EXPECT_EQ(eval("base64.is_valid", {R"j("aGVsbG8=")j"}), "true");
  EXPECT_EQ(eval("base64url.encode", {R"j("subjects?_d")j"}), R"j("c3ViamVjdHM_X2Q=")j");
  EXPECT_EQ(eval("base64url.encode_no_pad", {R"j("hello")j"}), R"j("aGVsbG8")j");
  EXPECT_EQ(eval("base64url.decode", {R"j("aGVsbG8")j"}), R"j("hello")j");
  EXPECT_EQ(eval("base64url.decode", {R"j("aGVsbG8=")j"}), R"j("hello")j");
  EXPECT_EQ(eval("base64url.decode", {R"j("a")j"}), "error(builtin): illegal base64url string: a");
  EXPECT_EQ(eval("hex.encode", {R"j("hi")j"}), R"j("6869")j");
  EXPECT_EQ(eval("hex.decode", {R"j("6869")j"}), R"j("hi")j");
  EXPECT_EQ(eval("hex.decode", {R"j("fghijkl")j"}), "error(builtin): encoding/hex: invalid byte: U+0067 'g'");
  EXPECT_EQ(eval("hex.decode", {R"j("abc")j"}), "error(builtin): encoding/hex: odd length hex string");
}

TEST(RegoEncoding, UrlQuery) {
  EXPECT_EQ(eval("urlquery.encode", {R"j("a=b+1 c")j"}), R"j("a%3Db%2B1+c")j");
  EXPECT_EQ(eval("urlquery.decode", {R"j("a%3Db%2B1+c")j"}), R"j("a=b+1 c")j");
  EXPECT_EQ(eval("urlquery.decode", {R"j("%zz")j"}), R"j(error(builtin): invalid URL escape "%zz")j");
  EXPECT_EQ(call("urlquery.encode_object", {json(R"j({"c": "d", "a": "b"})j")}).value().as_string(),
            "a=b&c=d");
  EXPECT_EQ(show(call("urlquery.encode_object",
                      {Value::object({{Value::string("a"), set_of({Value::string("b+1")})}})})),
            R"j("a=b%2B1")j");
  EXPECT_EQ(eval("urlquery.encode_object", {R"j({"a": 1})j"}),
            "error(type): operand 1 values must be string, array[string], or set[string]");
  EXPECT_EQ(eval("urlquery.decode_object", {R"j("a=value_a1&b=value_b&a=value_a2")j"}),
            R"j({"a":["value_a1","value_a2"],"b":["value_b"]})j");
  EXPECT_EQ(eval("urlquery.decode_object", {R"j("a=value_a1&b")j"}), R"j({"a":["value_a1"],"b":[""]})j");
  EXPECT_EQ(eval("urlquery.decode_object", {R"j("")j"}), "{}");
}

TEST(RegoSemver, StrictSemVer) {
  for (const char* bad :
       {"01.2.3", "1.02.3", "1.2.03", "1.2.3-01", "1.2.3-alpha.01", "1.2.3-", "1.2.3+", "1", "v1.0.0"})
    EXPECT_EQ(show(call("semver.is_valid", {Value::string(bad)})), "false") << bad;
  for (const char* good : {"0.0.0", "1.2.3-0", "1.2.3-0a", "1.2.3+01", "1.0.0-alpha.1+build.5"})
    EXPECT_EQ(show(call("semver.is_valid", {Value::string(good)})), "true") << good;
  EXPECT_EQ(eval("semver.compare", {R"j("1.0.0")j", R"j("2.0.0")j"}), "-1");
  EXPECT_EQ(eval("semver.compare", {R"j("1.0.0-alpha")j", R"j("1.0.0")j"}), "-1");
  EXPECT_EQ(eval("semver.compare", {R"j("1.0.0-alpha.10")j", R"j("1.0.0-alpha.9")j"}), "1");
  EXPECT_EQ(eval("semver.compare", {R"j("1.0.0-alpha.1")j", R"j("1.0.0-alpha.beta")j"}), "-1");
  EXPECT_EQ(eval("semver.compare", {R"j("1.0.0+a")j", R"j("1.0.0+b")j"}), "0");
  EXPECT_EQ(eval("semver.compare", {R"j("1")j", R"j("1.0.0")j"}),
            R"j(error(builtin): operand 1: string "1" is not a valid SemVer)j");
}

}  // namespace
}  // namespace mg::rego::test

namespace mg::rego::test {
namespace {

TEST(RegoEncoding, JsonMarshalWithOptions) {
  EXPECT_EQ(
      call("json.marshal_with_options", {json(R"j({"a": [1, {}], "b": []})j"), json(R"j({"indent": "  "})j")})
          .value()
          .as_string(),
      "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": []\n}");
  EXPECT_EQ(call("json.marshal_with_options", {json("[1]"), json(R"j({"prefix": "> ", "indent": "\t"})j")})
                .value()
                .as_string(),
            "> [\n> \t1\n> ]");
  EXPECT_EQ(call("json.marshal_with_options",
                 {json(R"j({"k": "a:b,c"})j"), json(R"j({"pretty": false, "indent": "x"})j")})
                .value()
                .as_string(),
            R"j({"k":"a:b,c"})j");
  EXPECT_EQ(eval("json.marshal_with_options", {"1", R"j({"bogus": 1})j"}),
            "error(type): operand 2 object contained unknown key bogus");
}

}  // namespace
}  // namespace mg::rego::test

namespace mg::rego::test {
namespace {

TEST(RegoEncoding, HostileYamlIsRefused) {
  // Deep flow nesting: yaml-cpp would recurse once per bracket.
  EXPECT_EQ(show(call("yaml.unmarshal", {Value::string(std::string(20000, '['))})),
            "error(builtin): yaml: exceeded max depth");
  // Aliases doubling at every level: 2^30 nodes once expanded.
  std::string doc = "a0: &a0 [x, x]\n";
  for (int i = 1; i <= 30; ++i)
    doc += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + ", *a" +
           std::to_string(i - 1) + "]\n";
  EXPECT_EQ(show(call("yaml.unmarshal", {Value::string(doc)})), "error(builtin): yaml: document too large");
  EXPECT_EQ(show(call("yaml.is_valid", {Value::string(doc)})), "false");
}

}  // namespace
}  // namespace mg::rego::test
