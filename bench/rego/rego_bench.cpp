// rego_bench — what a Rego decision costs in mg_rego (docs/BENCHMARKS.md).
//   BM_RegoRbac            RBAC: 100 roles x 10 grants, 1,000 user bindings in data (the shape of
//                          OPA's policy-performance page, ~45 µs per decision in OPA)
//   BM_RegoEnvoyPrimer     OPA's Envoy primer shape: JWT decoded from the Authorization header,
//                          role looked up in data, glob.match on the path (needs the built-in
//                          topics: skipped with a message when a built-in is missing)
//   BM_IstioRbacBaseline   the same RBAC decision as an Istio AuthorizationPolicy in meshguard's
//                          own engine (policy/engine.h), the same-run baseline
//   BM_RegoCompile*        compile time of each policy + data; counter plan_bytes_excl_data = heap
//                          growth of one compile
// Run: rego_bench --benchmark_repetitions=3 --benchmark_min_time=0.2 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <string>

#include "policy/decide.h"
#include "jwt_test_util.h"
#include "rego/engine.h"

namespace {

using namespace mg::rego;

constexpr int kRoles = 100;
constexpr int kGrantsPerRole = 10;
constexpr int kUsers = 1000;

const char* kRbacPolicy = R"(package rbac

default allow := false

allow if {
	some grant in user_is_granted
	input.action == grant.action
	input.type == grant.type
}

user_is_granted contains grant if {
	some role in data.user_roles[input.user]
	some grant in data.role_grants[role]
}
)";

std::string action_of(int g) { return g % 2 ? "read" : "write"; }
std::string type_of(int role, int g) { return "type-" + std::to_string((role * 7 + g) % 50); }

Value rbac_data() {
  ObjectItems grants;
  for (int r = 0; r < kRoles; ++r) {
    Array list;
    for (int g = 0; g < kGrantsPerRole; ++g)
      list.push_back(Value::object({{Value::string("action"), Value::string(action_of(g))},
                                    {Value::string("type"), Value::string(type_of(r, g))}}));
    grants.emplace_back(Value::string("role-" + std::to_string(r)), Value::array(std::move(list)));
  }
  ObjectItems users;
  for (int u = 0; u < kUsers; ++u)
    users.emplace_back(Value::string("user-" + std::to_string(u)),
                       Value::array({Value::string("role-" + std::to_string(u % kRoles))}));
  return Value::object({{Value::string("role_grants"), Value::object(std::move(grants))},
                        {Value::string("user_roles"), Value::object(std::move(users))}});
}

// user-417 has role-17; grant 9 of role-17 is (read, type-(17*7+9)%50).
Value rbac_input() {
  return *Value::parse_json(R"({"user":"user-417","action":"read","type":"type-)" +
                            std::to_string((17 * 7 + 9) % 50) + R"("})");
}

// Times `query` over `module` + `data` with `input`; the first answer must be true.
void run_decision(benchmark::State& state, const char* file, const char* module, Value data,
                  const char* query, const Value& input) {
  auto plan = compile({{file, module}}, std::move(data));
  if (!plan) return state.SkipWithError(plan.error()[0].to_string().c_str());
  auto q = prepare_query(*plan, query);
  EvalOptions opts;
  opts.input = &input;
  opts.now_ns = 1;
  auto first = evaluate(**q, opts);
  if (!first || first->size() != 1 || first->front().expressions[0] != Value::boolean(true))
    return state.SkipWithError("expected the decision to be true");
  for (auto _ : state) {
    auto r = evaluate(**q, opts);
    benchmark::DoNotOptimize(r);
  }
}

void BM_RegoRbac(benchmark::State& state) {
  run_decision(state, "rbac.rego", kRbacPolicy, rbac_data(), "data.rbac.allow", rbac_input());
  state.counters["decisions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// Compile time of `module` over `data`; counter plan_bytes_excl_data = heap growth of one compile
// (the data's values are shared with the caller's copy, so this is the compiled policy itself).
void compile_cost(benchmark::State& state, const char* file, const char* module, const Value& data) {
  size_t bytes = 0;
  for (auto _ : state) {
    struct mallinfo2 before = mallinfo2();
    auto plan = compile({{file, module}}, data);
    struct mallinfo2 after = mallinfo2();
    bytes = after.uordblks > before.uordblks ? after.uordblks - before.uordblks : 0;
    if (!plan) return state.SkipWithError(plan.error()[0].to_string().c_str());
    benchmark::DoNotOptimize(plan);
  }
  state.counters["plan_bytes_excl_data"] = static_cast<double>(bytes);
}

void BM_RegoCompileRbac(benchmark::State& state) {
  compile_cost(state, "rbac.rego", kRbacPolicy, rbac_data());
}

// A JWT (HS256, not verified here: the primer's decode path) whose payload is
// {"sub":"user-417","role":"guest","exp":4102444800}.
const char* kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ1c2VyLTQxNyIsInJvbGUiOiJndWVzdCIsImV4cCI6NDEwMjQ0NDgwMH0."
    "c2lnbmF0dXJl";

const char* kEnvoyPolicy = R"(package envoy.authz

default allow := false

allow if {
	action_allowed
}

claims := payload if {
	[_, encoded] := split(input.attributes.request.http.headers.authorization, " ")
	[_, payload, _] := io.jwt.decode(encoded)
}

action_allowed if {
	input.attributes.request.http.method == "GET"
	some perm in data.role_paths[claims.role]
	glob.match(perm, ["/"], input.attributes.request.http.path)
}
)";

Value envoy_data() {
  return *Value::parse_json(R"({"role_paths":{"guest":["/people*","/public/*"],"admin":["/**"]}})");
}

void BM_RegoEnvoyPrimer(benchmark::State& state) {
  Value data = envoy_data();
  Value input = *Value::parse_json(
      std::string(R"({"attributes":{"request":{"http":{"method":"GET","path":"/people",)") +
      R"("headers":{"authorization":"Bearer )" + kJwt + R"("}}}}})");
  run_decision(state, "envoy.rego", kEnvoyPolicy, std::move(data), "data.envoy.authz.allow", input);
}

// An RS256 token verified against a JWKS kept in data (the way OPA policies verify tokens from an
// identity provider): io.jwt.decode_verify with the `cert` constraint, the same token and key set
// request after request.
const char* kJwksPolicy = R"(package tokens.authz

default allow := false

allow if {
	[valid, _, claims] := io.jwt.decode_verify(input.token, {"cert": data.idp.jwks})
	valid
	claims.role == "admin"
}
)";

void BM_RegoDecodeVerifyRs256Jwks(benchmark::State& state) {
  namespace jt = mg::jwt::testing;
  const jt::TestKey other = jt::make_key(mg::jwt::Alg::RS256, "other");
  const jt::TestKey key = jt::make_key(mg::jwt::Alg::RS256, "signer");
  const std::string token = jt::sign_token(key, {{"typ", "JWT"}}, {{"sub", "u1"}, {"role", "admin"}});
  Value data = Value::object(
      {{Value::string("idp"), Value::object({{Value::string("jwks"), Value::string(jt::jwks_of({&other, &key}))}})}});
  Value input = Value::object({{Value::string("token"), Value::string(token)}});
  run_decision(state, "jwks.rego", kJwksPolicy, std::move(data), "data.tokens.authz.allow", input);
}

void BM_RegoCompileEnvoyPrimer(benchmark::State& state) {
  compile_cost(state, "envoy.rego", kEnvoyPolicy, envoy_data());
}

// The RBAC decision as Istio policy: one ALLOW rule per role (its users' header values, its
// grants' methods/paths encoded as action=method, type=path).
void BM_IstioRbacBaseline(benchmark::State& state) {
  using namespace mg::policy;
  ResourceSet set;
  AuthorizationPolicy p;
  p.meta = {"rbac", "default"};
  for (int r = 0; r < kRoles; ++r) {
    for (int g = 0; g < kGrantsPerRole; ++g) {
      mg::policy::Rule rule;
      Condition users;
      users.key = "request.headers[x-user]";
      for (int u = r; u < kUsers; u += kRoles) users.values.push_back("user-" + std::to_string(u));
      rule.when.push_back(users);
      Operation op;
      op.methods = {action_of(g) == "read" ? "GET" : "POST"};
      op.paths = {"/" + type_of(r, g)};
      rule.to.push_back(op);
      p.rules.push_back(rule);
    }
  }
  set.authorization_policies.push_back(p);
  Request req;
  req.destination_namespace = "default";
  req.destination_labels = {{"app", "svc"}};
  req.destination_port = 9080;
  req.source_principal = "cluster.local/ns/default/sa/client";
  req.http =
      HttpRequest{"GET", "/type-" + std::to_string((17 * 7 + 9) % 50), "svc", {{"x-user", "user-417"}}};
  auto snap = compile_snapshot(set, destination_workload(req), MeshConfig{});
  if (!snap) return state.SkipWithError("compile failed");
  std::string path = req.http->path;
  const mg::jwt::RequestAuth none;
  const auto attrs = make_attributes(req, path, &none, true, /*num_trusted_proxies=*/0);
  if (!authorize(**snap, attrs).allow) return state.SkipWithError("expected ALLOW");
  for (auto _ : state) {
    auto d = authorize(**snap, attrs);
    benchmark::DoNotOptimize(d);
  }
}

BENCHMARK(BM_RegoRbac);
BENCHMARK(BM_RegoEnvoyPrimer);
BENCHMARK(BM_RegoDecodeVerifyRs256Jwks);
BENCHMARK(BM_IstioRbacBaseline);
BENCHMARK(BM_RegoCompileRbac)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RegoCompileEnvoyPrimer)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
