// rego/compiler.cpp — modules + data -> immutable Plan; query text -> PreparedQuery.
// This file: the entry points, the rule tree (rules indexed by data path), per-rule compilation and
// the recursion check; term resolution, flattening and safety ordering are compiler_<phase>.cpp
// (see compiler_internal.h).
// Per body: names are resolved (local variable, rule of the package, import, input, data),
// nested references and calls are flattened into their own expressions with generated variables,
// every variable gets a frame slot, and expressions are reordered so each one's inputs are bound
// before it runs (OPA's safety rules; what cannot be bound is a rego_unsafe_var_error).
#include <algorithm>
#include <functional>
#include <set>

#include "rego/compiler_internal.h"

namespace mg::rego {

std::string Plan::path_name(const std::vector<std::string>& path) const {
  std::string out = "data";
  for (const auto& p : path) out += "." + p;
  return out;
}

namespace compiler_detail {

namespace {
// Recursion check: a ref that cannot reach rules below its path.
const std::string kNoSubtree("\x00");
}  // namespace

TermP clone(const TermP& t) {
  if (!t) return nullptr;
  auto c = std::make_shared<Term>(*t);
  for (auto& i : c->items) i = clone(i);
  for (auto& [k, v] : c->pairs) {
    k = clone(k);
    v = clone(v);
  }
  c->key = clone(t->key);
  c->val = clone(t->val);
  if (t->body) {
    auto b = std::make_shared<Body>();
    for (const auto& e : t->body->exprs) {
      Expr ce = e;
      for (auto& x : ce.terms) x = clone(x);
      for (auto& w : ce.withs) {
        w.target = clone(w.target);
        w.value = clone(w.value);
      }
      if (e.body) {
        auto tmp = std::make_shared<Term>();
        tmp->body = e.body;
        ce.body = clone(tmp)->body;
      }
      b->exprs.push_back(std::move(ce));
    }
    c->body = b;
  }
  return c;
}

TermP make_var_term(const std::string& name, int slot, Location loc, bool wildcard) {
  auto t = std::make_shared<Term>();
  t->type = TermType::Var;
  t->name = name;
  t->slot = slot;
  t->loc = loc;
  t->wildcard = wildcard;
  return t;
}

TermP make_value_term(Value v, Location loc) {
  auto t = std::make_shared<Term>();
  t->type = TermType::Value;
  t->value = std::move(v);
  t->loc = loc;
  t->ground = true;
  return t;
}

// Dotted name of a call operator / with target: f, a.b.c, data.x.f.
std::optional<std::vector<std::string>> dotted(const TermP& t) {
  if (t->type == TermType::Var) return std::vector<std::string>{t->name};
  if (t->type == TermType::Ref && t->items[0]->type == TermType::Var) {
    std::vector<std::string> out{t->items[0]->name};
    for (size_t i = 1; i < t->items.size(); ++i) {
      const auto& op = t->items[i];
      if (op->type != TermType::Value || !op->value.is_string()) return std::nullopt;
      out.push_back(op->value.as_string());
    }
    return out;
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ".";
    out += parts[i];
  }
  return out;
}

// Variables of a term (slots), including a comprehension's closure (stored in its items).
void collect_vars(const TermP& t, std::vector<int>& out) {
  if (!t) return;
  switch (t->type) {
    case TermType::Var:
      if (t->slot >= 0) out.push_back(t->slot);
      break;
    case TermType::ArrayCompr:
    case TermType::SetCompr:
    case TermType::ObjectCompr:
      for (const auto& c : t->items) collect_vars(c, out);  // closure variables
      break;
    default:
      for (const auto& i : t->items) collect_vars(i, out);
      for (const auto& [k, v] : t->pairs) {
        collect_vars(k, out);
        collect_vars(v, out);
      }
  }
}

std::vector<int> vars_of(const TermP& t) {
  std::vector<int> out;
  collect_vars(t, out);
  return out;
}

bool all_bound(const std::vector<int>& vs, const SlotSet& bound) {
  for (int v : vs)
    if (!bound.count(v)) return false;
  return true;
}

void Compiler::build_tree() {
  plan_.root = std::make_unique<RuleNode>();
  for (const auto& m : plan_.modules) {
    for (const auto& r : m->rules) add_rule_to_tree(*m, r);
  }
}

void Compiler::compile_modules() {
  for (const auto& m : plan_.modules) {
    ModuleCtx ctx = module_ctx(*m);
    for (const auto& r : m->rules)
      for (Rule* x = r.get(); x; x = x->else_rule.get()) compile_rule(ctx, *x);
  }
  check_recursion();
}

Compiler::ModuleCtx Compiler::module_ctx(const Module& m) {
  ModuleCtx ctx;
  ctx.mod = &m;
  for (const auto& other : plan_.modules)
    if (other->package == m.package)
      for (const auto& r : other->rules) ctx.rule_names.insert(r->head_ref[0]->name);
  for (const auto& imp : m.imports) {
    auto path = dotted(imp.path);
    if (!path) fail_compile("rego_parse_error", "invalid import path", imp.loc);
    const std::string& root = (*path)[0];
    if (root == "future" || root == "rego") continue;  // future.keywords.*, rego.v1: syntax only
    if (root != "data" && root != "input")
      fail_compile("rego_compile_error", "invalid import path: must begin with input or data", imp.loc);
    std::string alias = imp.alias.empty() ? path->back() : imp.alias;
    ctx.imports[alias] = imp.path;
  }
  return ctx;
}

// Query compile: a body against the plan, without package.
void Compiler::compile_query(PreparedQuery& q) {
  ModuleCtx ctx;
  Frame frame;
  Scope scope;
  scope.frame = &frame;
  ctx_ = &ctx;
  pkg_.clear();
  // Record each top-level expression's value term before flattening.
  std::vector<Expr> out;
  SlotSet bound;
  prepass_declare(*q.body, scope);
  std::vector<Expr> flat;
  for (size_t index = 0; index < q.body->exprs.size(); ++index) {
    Expr& e = q.body->exprs[index];
    scope.position = index;
    PreparedQuery::ExprOut eo;
    eo.text = q.text.substr(e.src_begin, e.src_end - e.src_begin);
    eo.loc = e.loc;
    if (!e.negated && e.withs.empty() && (e.type == ExprType::Term || e.type == ExprType::Call)) {
      // Value of the expression: bind it to a generated variable.
      int slot = scope.fresh("__expr");
      TermP g = make_var_term(frame.names[slot], slot, e.loc, true);
      Expr u;
      u.loc = e.loc;
      u.type = ExprType::Unify;
      u.terms = {g, e.terms[0]};
      // As `opa eval` (rego's value capture): a false value is a result, not undefined.
      flatten_expr(u, scope, flat);
      eo.slot = slot;
    } else {
      flatten_expr(e, scope, flat);
    }
    q.exprs.push_back(std::move(eo));
  }
  scope.position = SIZE_MAX;
  q.body->exprs = order(std::move(flat), bound, scope);
  q.frame_size = frame.next_slot;
  for (const auto& [name, slot] : scope.vars)
    if (name.rfind("__", 0) != 0 && name != "_") q.output_vars.emplace_back(name, slot);
  std::sort(q.output_vars.begin(), q.output_vars.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
}

void Compiler::add_rule_to_tree(const Module& m, const RuleP& r) {
  std::vector<std::string> path = m.package;
  size_t i = 0;
  for (; i < r->head_ref.size(); ++i) {
    const auto& t = r->head_ref[i];
    if (i == 0) {
      path.push_back(t->name);
      continue;
    }
    if (t->type == TermType::Value && t->value.is_string()) {
      // The last ground string key of a multi-value rule stays the set's path.
      path.push_back(t->value.as_string());
      continue;
    }
    break;
  }
  for (Rule* x = r.get(); x; x = x->else_rule.get()) {
    x->path = path;
    x->suffix.assign(r->head_ref.begin() + static_cast<long>(i), r->head_ref.end());
  }
  RuleNode* node = plan_.root.get();
  for (const auto& key : path) {
    auto it = node->children.find(key);
    if (it == node->children.end()) {
      auto child = std::make_unique<RuleNode>();
      child->key = key;
      child->path = node->path;
      child->path.push_back(key);
      it = node->children.emplace(key, std::move(child)).first;
    }
    node = it->second.get();
  }
  const Rule* rule = r.get();
  switch (r->kind) {
    case RuleKind::Function:
      if (r->is_default) {
        if (node->default_function)
          fail_compile("rego_type_error", "multiple default rules " + plan_.path_name(path) + " found",
                       r->loc);
        node->default_function = rule;
      } else {
        node->functions.push_back(rule);
      }
      break;
    case RuleKind::MultiValue:
      node->multi.push_back(rule);
      break;
    case RuleKind::Complete:
      if (r->is_default) {
        if (node->default_rule)
          fail_compile("rego_type_error", "multiple default rules " + plan_.path_name(path) + " found",
                       r->loc);
        node->default_rule = rule;
      } else if (rule->suffix.empty()) {
        node->complete.push_back(rule);
      } else {
        node->objects.push_back(rule);
      }
      break;
  }
}

const RuleNode* Compiler::find_node(const std::vector<std::string>& path) const {
  const RuleNode* n = plan_.root.get();
  for (const auto& k : path) {
    n = n->child(k);
    if (!n) return nullptr;
  }
  return n;
}

void Compiler::compile_rule(const ModuleCtx& ctx, Rule& r) {
  ctx_ = &ctx;
  pkg_ = ctx.mod->package;
  Frame frame;
  Scope scope;
  scope.frame = &frame;
  // Else branches and extra v0 bodies share head terms with their first rule: own copies.
  for (auto& a : r.args) a = clone(a);
  for (auto& t : r.suffix) t = clone(t);
  r.key = clone(r.key);
  r.value = clone(r.value);

  if (r.is_default) {
    if (r.value) {
      r.value = resolve_term(r.value, scope, /*declare_unknown=*/false);
      if (!fold(r.value))
        fail_compile("rego_compile_error", "default rule value cannot contain variables", r.loc);
    }
    r.frame_size = 0;
    // A default function still needs its argument patterns: wildcards only in practice.
    for (auto& a : r.args) a = resolve_term(a, scope, true);
    r.frame_size = frame.next_slot;
    return;
  }

  // Argument patterns and head terms name variables of the body's scope.
  for (auto& a : r.args) declare_pattern_vars(a, scope);
  prepass_declare(*r.body, scope);
  for (auto& t : r.suffix) declare_free_vars(t, scope);
  if (r.key) declare_free_vars(r.key, scope);
  if (r.value) declare_free_vars(r.value, scope);

  SlotSet bound;
  for (auto& a : r.args) {
    a = resolve_term(a, scope, true);
    for (int s : vars_of(a)) bound.insert(s);
  }
  std::vector<Expr> flat;
  flatten_body(*r.body, scope, flat);
  // Head terms may hold references and calls: they are computed at the end of the body.
  for (auto& t : r.suffix) t = flatten_term(resolve_term(t, scope, true), scope, flat);
  if (r.key) r.key = flatten_term(resolve_term(r.key, scope, true), scope, flat);
  if (r.value) r.value = flatten_term(resolve_term(r.value, scope, true), scope, flat);
  r.body->exprs = order(std::move(flat), bound, scope);
  auto check_head = [&](const TermP& t) {
    if (!t) return;
    for (int s : vars_of(t))
      if (!bound.count(s))
        fail_compile("rego_unsafe_var_error", "var " + frame.names[s] + " is unsafe", t->loc);
  };
  for (const auto& t : r.suffix) check_head(t);
  check_head(r.key);
  check_head(r.value);
  r.constant_value = r.suffix.empty() && ((r.kind == RuleKind::MultiValue) ? r.key && r.key->ground
                                                                           : (!r.value || r.value->ground));
  r.frame_size = frame.next_slot;
}

void Compiler::refs_of_body(const Body& b, std::vector<std::vector<std::string>>& out) {
  for (const auto& e : b.exprs) {
    for (const auto& t : e.terms) refs_of_term(t, out);
    for (const auto& w : e.withs) refs_of_term(w.value, out);
    if (e.body) refs_of_body(*e.body, out);
  }
}

void Compiler::refs_of_term(const TermP& t, std::vector<std::vector<std::string>>& out) {
  if (!t) return;
  if (t->type == TermType::Ref && t->items[0]->slot == kDataSlot) {
    std::vector<std::string> p;
    for (size_t i = 1; i < t->items.size(); ++i) {
      if (t->items[i]->type != TermType::Value || !t->items[i]->value.is_string()) {
        // A constant non-string key cannot name a rule below: depend on the path only.
        if (t->items[i]->type == TermType::Value) p.push_back(kNoSubtree);
        break;
      }
      p.push_back(t->items[i]->value.as_string());
    }
    out.push_back(std::move(p));
  }
  if (t->type == TermType::Call && !t->data_path.empty()) out.push_back(t->data_path);
  for (const auto& i : t->items) refs_of_term(i, out);
  for (const auto& [k, v] : t->pairs) {
    refs_of_term(k, out);
    refs_of_term(v, out);
  }
  refs_of_term(t->key, out);
  refs_of_term(t->val, out);
  if (t->body) refs_of_body(*t->body, out);
}

void Compiler::collect_rule_nodes(const RuleNode* n, std::vector<const RuleNode*>& out) {
  if (n->has_value_rules() || !n->functions.empty()) out.push_back(n);
  for (const auto& [k, c] : n->children) collect_rule_nodes(c.get(), out);
}

// Nodes a data path depends on: the rule nodes along the path and every one below it.
void Compiler::deps_of_path(const std::vector<std::string>& path, std::vector<const RuleNode*>& out) {
  const RuleNode* n = plan_.root.get();
  for (const auto& k : path) {
    if (n->has_value_rules() || !n->functions.empty()) out.push_back(n);
    if (k == kNoSubtree) return;
    const RuleNode* c = n->child(k);
    if (!c) return;
    n = c;
  }
  collect_rule_nodes(n, out);
}

void Compiler::check_recursion() {
  std::vector<const RuleNode*> nodes;
  collect_rule_nodes(plan_.root.get(), nodes);
  std::unordered_map<const RuleNode*, std::vector<const RuleNode*>> edges;
  auto rules_of = [](const RuleNode* n) {
    std::vector<const Rule*> rs = n->complete;
    rs.insert(rs.end(), n->multi.begin(), n->multi.end());
    rs.insert(rs.end(), n->objects.begin(), n->objects.end());
    rs.insert(rs.end(), n->functions.begin(), n->functions.end());
    return rs;
  };
  for (const RuleNode* n : nodes) {
    std::vector<std::vector<std::string>> paths;
    for (const Rule* r : rules_of(n)) {
      for (const Rule* x = r; x; x = x->else_rule.get()) {
        refs_of_body(*x->body, paths);
        for (const auto& t : x->suffix) refs_of_term(t, paths);
        refs_of_term(x->key, paths);
        refs_of_term(x->value, paths);
      }
    }
    auto& out = edges[n];
    for (const auto& p : paths) deps_of_path(p, out);
  }
  std::unordered_map<const RuleNode*, int> state;  // 0 new, 1 on stack, 2 done
  std::vector<const RuleNode*> stack;
  std::function<void(const RuleNode*)> dfs = [&](const RuleNode* n) {
    state[n] = 1;
    stack.push_back(n);
    for (const RuleNode* m : edges[n]) {
      if (state[m] == 1) {
        std::string cycle;
        auto it = std::find(stack.begin(), stack.end(), m);
        for (; it != stack.end(); ++it) cycle += plan_.path_name((*it)->path) + " -> ";
        cycle += plan_.path_name(m->path);
        const Rule* r = !m->complete.empty()  ? m->complete[0]
                        : !m->multi.empty()   ? m->multi[0]
                        : !m->objects.empty() ? m->objects[0]
                                              : m->functions[0];
        fail_compile("rego_recursion_error", "rule " + plan_.path_name(m->path) + " is recursive: " + cycle,
                     r->loc);
      }
      if (state[m] == 0) dfs(m);
    }
    stack.pop_back();
    state[n] = 2;
  };
  for (const RuleNode* n : nodes)
    if (state[n] == 0) dfs(n);
}

}  // namespace compiler_detail

using compiler_detail::CompileFailure;
using compiler_detail::Compiler;

namespace {

// Plan::input_use: every reference to input in the compiled rules (bodies, heads, arguments,
// `with` values, nested bodies). `with input... as` targets are writes, not reads: a replaced
// subtree is read through references, which are counted.
struct InputScan {
  bool whole = false;
  std::vector<std::vector<std::string>> paths;
  compiler_detail::TermWalk<InputScan>* walk = nullptr;  // to descend past a reference's path

  bool operator()(const TermP& t) {
    if (whole) return false;
    const bool input_head = !t->items.empty() && t->items[0] && t->items[0]->type == TermType::Var &&
                            t->items[0]->slot == compiler_detail::kInputSlot;
    if (t->type == TermType::Ref && input_head) {
      std::vector<std::string> path;
      size_t first = 1;
      for (; first < t->items.size(); ++first) {
        const TermP& op = t->items[first];
        if (op->type != TermType::Value || !op->value.is_string()) break;
        path.push_back(op->value.as_string());
      }
      if (path.empty()) {
        whole = true;
        return false;
      }
      paths.push_back(std::move(path));
      for (size_t i = first; i < t->items.size(); ++i) walk->term(t->items[i]);
      return false;
    }
    if (t->type == TermType::Var && t->slot == compiler_detail::kInputSlot) {
      whole = true;  // input outside a reference (no such term is built today: stay sound anyway)
      return false;
    }
    return true;
  }
  InputUse result() {
    InputUse use;
    use.whole = whole;
    if (!whole) use.paths = std::move(paths);
    return normalized(std::move(use));
  }
  // Sorted, and no path a prefix of another (the longer one is read as part of the shorter).
  static InputUse normalized(InputUse use) {
    if (use.whole) return InputUse{};
    std::sort(use.paths.begin(), use.paths.end());
    std::vector<std::vector<std::string>> kept;
    for (auto& p : use.paths) {  // sorted: a prefix comes right before the paths it covers
      if (!kept.empty() && kept.back().size() <= p.size() &&
          std::equal(kept.back().begin(), kept.back().end(), p.begin()))
        continue;
      kept.push_back(std::move(p));
    }
    use.paths = std::move(kept);
    return use;
  }
};

InputUse input_use_of(const Plan& plan) {
  InputScan scan;
  compiler_detail::TermWalk walk{scan, compiler_detail::WithTargets::Skip};
  scan.walk = &walk;
  for (const auto& m : plan.modules)
    for (const auto& r : m->rules) walk.rule(*r);
  return scan.result();
}

}  // namespace

InputUse merge_input_use(const InputUse& a, const InputUse& b) {
  if (a.whole || b.whole) return InputUse{};
  InputUse both;
  both.whole = false;
  both.paths = a.paths;
  both.paths.insert(both.paths.end(), b.paths.begin(), b.paths.end());
  return InputScan::normalized(std::move(both));
}

Result<std::shared_ptr<const Plan>, RegoErrors> compile(const std::vector<ModuleSource>& modules, Value data,
                                                        const CompileOptions& options) {
  auto plan = std::make_shared<Plan>();
  plan->registry = options.registry ? options.registry : &Registry::standard();
  plan->data = std::move(data);
  RegoErrors errors;
  for (const auto& src : modules) {
    auto m = parse_module(src.text, src.file, src.version);
    if (!m) {
      for (auto& e : m.error()) errors.push_back(e);
      continue;
    }
    plan->modules.push_back(*m);
  }
  if (!errors.empty()) return fail(std::move(errors));
  try {
    Compiler c(*plan, *plan->registry);
    c.build_tree();
    c.compile_modules();
    compiler_detail::resolve_constant_refs(*plan);
  } catch (const CompileFailure& f) {
    return fail(f.errors);
  }
  plan->input_use = input_use_of(*plan);
  return std::shared_ptr<const Plan>(std::move(plan));
}

Result<std::shared_ptr<const PreparedQuery>, RegoErrors> prepare_query(std::shared_ptr<const Plan> plan,
                                                                       std::string_view text) {
  auto body = parse_query(text);
  if (!body) return fail(body.error());
  auto q = std::make_shared<PreparedQuery>();
  q->plan = plan;
  q->text = std::string(text);
  q->body = *body;
  try {
    // The compiler only reads the plan's tree while compiling a query.
    Compiler c(const_cast<Plan&>(*plan), *plan->registry);
    c.compile_query(*q);
    compiler_detail::resolve_constant_refs(*plan, *q->body);
  } catch (const CompileFailure& f) {
    return fail(f.errors);
  }
  return std::shared_ptr<const PreparedQuery>(std::move(q));
}

}  // namespace mg::rego
