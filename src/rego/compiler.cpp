// rego/compiler.cpp — modules + data -> immutable Plan; query text -> PreparedQuery.
// Per body: names are resolved (local variable, rule of the package, import, input, data),
// nested references and calls are flattened into their own expressions with generated variables,
// every variable gets a frame slot, and expressions are reordered so each one's inputs are bound
// before it runs (OPA's safety rules; what cannot be bound is a rego_unsafe_var_error).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "rego/engine.h"

namespace mg::rego {

std::string Plan::path_name(const std::vector<std::string>& path) const {
  std::string out = "data";
  for (const auto& p : path) out += "." + p;
  return out;
}

namespace {

constexpr int kDataSlot = -2;
constexpr int kInputSlot = -3;
const std::string kNoSubtree("\x00");  // recursion check: a ref that cannot reach rules below its path

struct CompileFailure {
  RegoErrors errors;
};

[[noreturn]] void fail_compile(std::string code, std::string message, const Location& loc) {
  throw CompileFailure{RegoErrors{make_error(std::move(code), std::move(message), loc)}};
}

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

using SlotSet = std::unordered_set<int>;

bool all_bound(const std::vector<int>& vs, const SlotSet& bound) {
  for (int v : vs)
    if (!bound.count(v)) return false;
  return true;
}

// ------------------------------------------------------------------ scopes

struct Frame {
  int next_slot = 0;
  std::vector<std::string> names;  // slot -> name
  int gen_counter = 0;
};

struct Scope {
  Scope* parent = nullptr;
  Frame* frame = nullptr;
  std::unordered_map<std::string, int> vars;
  // `x := ...` declares x from its expression on: a nested body (comprehension) written before
  // that expression does not see it (as OPA). position: the expression being compiled.
  std::unordered_map<std::string, size_t> assigned_at;
  size_t position = SIZE_MAX;
  int lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent) {
      auto it = s->vars.find(name);
      if (it == s->vars.end()) continue;
      if (s != this) {
        auto a = s->assigned_at.find(name);
        if (a != s->assigned_at.end() && a->second > s->position) continue;
      }
      return it->second;
    }
    return -1;
  }
  int declare(const std::string& name) {
    int slot = frame->next_slot++;
    frame->names.push_back(name);
    vars[name] = slot;
    return slot;
  }
  int fresh(const std::string& prefix = "__local") {
    int slot = frame->next_slot++;
    std::string name = prefix + std::to_string(frame->gen_counter++) + "__";
    frame->names.push_back(name);
    return slot;
  }
  bool is_outer(int slot) const {
    // A slot declared in a parent scope (closure variable of a nested body).
    for (const Scope* s = parent; s; s = s->parent)
      for (const auto& [n, sl] : s->vars)
        if (sl == slot) return true;
    return false;
  }
};

// ------------------------------------------------------------------ the compiler

class Compiler {
 public:
  Compiler(Plan& plan, const Registry& registry) : plan_(plan), reg_(registry) {}

  // Module-level context for name resolution.
  struct ModuleCtx {
    const Module* mod = nullptr;
    std::set<std::string> rule_names;
    std::unordered_map<std::string, TermP> imports;  // alias -> ref term (head data/input)
  };

  void build_tree() {
    plan_.root = std::make_unique<RuleNode>();
    for (const auto& m : plan_.modules) {
      for (const auto& r : m->rules) add_rule_to_tree(*m, r);
    }
  }

  void compile_modules() {
    for (const auto& m : plan_.modules) {
      ModuleCtx ctx = module_ctx(*m);
      for (const auto& r : m->rules)
        for (Rule* x = r.get(); x; x = x->else_rule.get()) compile_rule(ctx, *x);
    }
    check_recursion();
  }

  ModuleCtx module_ctx(const Module& m) {
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
  void compile_query(PreparedQuery& q) {
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

 private:
  // ---------------------------------------------------------------- rule tree
  void add_rule_to_tree(const Module& m, const RuleP& r) {
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

  const RuleNode* find_node(const std::vector<std::string>& path) const {
    const RuleNode* n = plan_.root.get();
    for (const auto& k : path) {
      n = n->child(k);
      if (!n) return nullptr;
    }
    return n;
  }

  // ---------------------------------------------------------------- rules
  void compile_rule(const ModuleCtx& ctx, Rule& r) {
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

  // Declares variables written in the body that are local at this level (not rules/imports).
  void prepass_declare(Body& body, Scope& scope) {
    for (size_t index = 0; index < body.exprs.size(); ++index) {
      Expr& e = body.exprs[index];
      if (e.type == ExprType::SomeDecl) {
        for (auto& v : e.terms) scope.declare(v->name);
        continue;
      }
      if (e.type == ExprType::Assign) {
        std::vector<TermP> vs;
        pattern_var_terms(e.terms[0], vs);
        for (auto& v : vs) {
          if (v->wildcard) continue;
          if (scope.assigned_at.count(v->name))
            fail_compile("rego_compile_error", "var " + v->name + " assigned above", v->loc);
          if (!scope.vars.count(v->name)) scope.declare(v->name);
          scope.assigned_at[v->name] = index;
        }
      }
      if (e.type == ExprType::SomeIn) {
        for (int i = 0; i < 2; ++i)
          if (e.terms[static_cast<size_t>(i)]) declare_pattern_vars(e.terms[static_cast<size_t>(i)], scope);
        declare_free_vars(e.terms[2], scope);
        for (auto& w : e.withs) declare_with_value(w, scope);
        continue;
      }
      if (e.type == ExprType::Every) {
        declare_free_vars(e.terms[2], scope);
        continue;
      }
      for (auto& t : e.terms) declare_free_vars(t, scope);
      for (auto& w : e.withs) declare_with_value(w, scope);
    }
  }

  // `with f as g`: a replacement naming a function or built-in is not a variable.
  void declare_with_value(const With& w, Scope& scope) {
    if (auto n = dotted(w.value); n && scope.lookup((*n)[0]) < 0 && lookup_function(*n)) return;
    declare_free_vars(w.value, scope);
  }

  static void pattern_var_terms(const TermP& t, std::vector<TermP>& out) {
    if (!t) return;
    if (t->type == TermType::Var) {
      out.push_back(t);
      return;
    }
    if (t->type == TermType::Array || t->type == TermType::Set)
      for (auto& i : t->items) pattern_var_terms(i, out);
    if (t->type == TermType::Object)
      for (auto& [k, v] : t->pairs) pattern_var_terms(v, out);
  }

  void declare_pattern_vars(const TermP& t, Scope& scope) {
    std::vector<TermP> vs;
    pattern_var_terms(t, vs);
    for (auto& v : vs)
      if (!v->wildcard && scope.vars.find(v->name) == scope.vars.end()) scope.declare(v->name);
  }

  bool is_global_name(const std::string& name) const {
    return name == "data" || name == "input" || ctx_->rule_names.count(name) || ctx_->imports.count(name);
  }

  // Declares, at this scope, variables that appear at this level and are not global names.
  void declare_free_vars(const TermP& t, Scope& scope) {
    if (!t) return;
    switch (t->type) {
      case TermType::Var:
        if (!t->wildcard && scope.lookup(t->name) < 0 && !is_global_name(t->name)) scope.declare(t->name);
        return;
      case TermType::ArrayCompr:
      case TermType::SetCompr:
      case TermType::ObjectCompr:
        return;  // nested scope
      case TermType::Call:
        for (size_t i = 1; i < t->items.size(); ++i) declare_free_vars(t->items[i], scope);
        return;
      case TermType::Ref:
        for (const auto& i : t->items) declare_free_vars(i, scope);
        return;
      default:
        for (const auto& i : t->items) declare_free_vars(i, scope);
        for (const auto& [k, v] : t->pairs) {
          declare_free_vars(k, scope);
          declare_free_vars(v, scope);
        }
    }
  }

  // ---------------------------------------------------------------- name resolution
  TermP global_ref(const std::string& name, Location loc) {
    auto t = std::make_shared<Term>();
    t->type = TermType::Ref;
    t->loc = loc;
    if (name == "input") {
      t->items.push_back(make_var_term("input", kInputSlot, loc, false));
      return t;
    }
    if (name == "data") {
      t->items.push_back(make_var_term("data", kDataSlot, loc, false));
      return t;
    }
    auto imp = ctx_->imports.find(name);
    if (imp != ctx_->imports.end()) {
      auto path = dotted(imp->second);
      t->items.push_back(
          make_var_term((*path)[0], (*path)[0] == "input" ? kInputSlot : kDataSlot, loc, false));
      for (size_t i = 1; i < path->size(); ++i)
        t->items.push_back(make_value_term(Value::string((*path)[i]), loc));
      return t;
    }
    // A rule of this package.
    t->items.push_back(make_var_term("data", kDataSlot, loc, false));
    for (const auto& p : pkg_) t->items.push_back(make_value_term(Value::string(p), loc));
    t->items.push_back(make_value_term(Value::string(name), loc));
    return t;
  }

  // Resolves variable names to slots or global references. Comprehensions get their own scope.
  TermP resolve_term(const TermP& t, Scope& scope, bool declare_unknown) {
    if (!t) return t;
    switch (t->type) {
      case TermType::Value:
        t->ground = true;
        return t;
      case TermType::Var: {
        if (t->slot >= 0 || t->slot == kDataSlot || t->slot == kInputSlot) return t;  // already resolved
        if (t->wildcard) {
          t->slot = scope.fresh("__wild");
          return t;
        }
        int slot = scope.lookup(t->name);
        if (slot >= 0) {
          t->slot = slot;
          return t;
        }
        if (is_global_name(t->name)) return global_ref(t->name, t->loc);
        if (!declare_unknown) fail_compile("rego_unsafe_var_error", "var " + t->name + " is unsafe", t->loc);
        t->slot = scope.declare(t->name);
        return t;
      }
      case TermType::Ref: {
        TermP head = t->items[0];
        std::vector<TermP> ops(t->items.begin() + 1, t->items.end());
        for (auto& op : ops) op = resolve_term(op, scope, declare_unknown);
        TermP rhead;
        if (head->type == TermType::Var && !head->wildcard && scope.lookup(head->name) < 0 &&
            is_global_name(head->name)) {
          rhead = global_ref(head->name, head->loc);
        } else {
          rhead = resolve_term(head, scope, declare_unknown);
        }
        if (rhead->type == TermType::Ref) {
          for (auto& op : ops) rhead->items.push_back(op);
          rhead->loc = t->loc;
          return rhead;
        }
        t->items.clear();
        t->items.push_back(rhead);
        for (auto& op : ops) t->items.push_back(op);
        return t;
      }
      case TermType::Call: {
        for (size_t i = 1; i < t->items.size(); ++i)
          t->items[i] = resolve_term(t->items[i], scope, declare_unknown);
        resolve_call_operator(*t);
        return t;
      }
      case TermType::ArrayCompr:
      case TermType::SetCompr:
      case TermType::ObjectCompr: {
        compile_comprehension(*t, scope);
        return t;
      }
      default:
        for (auto& i : t->items) i = resolve_term(i, scope, declare_unknown);
        for (auto& [k, v] : t->pairs) {
          k = resolve_term(k, scope, declare_unknown);
          v = resolve_term(v, scope, declare_unknown);
        }
        return t;
    }
  }

  // Function name -> built-in or user function path (data.<path>).
  struct FnTarget {
    const BuiltinDecl* builtin = nullptr;
    std::vector<std::string> path;
  };

  std::optional<FnTarget> lookup_function(const std::vector<std::string>& name) {
    FnTarget out;
    auto user_function = [&](std::vector<std::string> p) {
      const RuleNode* n = find_node(p);
      if (!n || (n->functions.empty() && !n->default_function)) return false;
      out.path = std::move(p);
      return true;
    };
    // A function of this package, a data path, an imported path; then a built-in.
    if (!pkg_.empty() && ctx_->rule_names.count(name[0])) {
      std::vector<std::string> p = pkg_;
      p.insert(p.end(), name.begin(), name.end());
      if (user_function(std::move(p))) return out;
    }
    if (name[0] == "data" && user_function(std::vector<std::string>(name.begin() + 1, name.end())))
      return out;
    if (ctx_->imports.count(name[0])) {
      auto path = dotted(ctx_->imports.at(name[0]));
      if ((*path)[0] == "data") {
        std::vector<std::string> p(path->begin() + 1, path->end());
        p.insert(p.end(), name.begin() + 1, name.end());
        if (user_function(std::move(p))) return out;
      }
    }
    if (const BuiltinDecl* b = reg_.find(join(name))) {
      out.builtin = b;
      return out;
    }
    return std::nullopt;
  }

  void resolve_call_operator(Term& call) {
    auto name = dotted(call.items[0]);
    if (!name) fail_compile("rego_type_error", "invalid function call", call.loc);
    auto target = lookup_function(*name);
    std::string shown = join(*name);
    if (!target) fail_compile("rego_type_error", "undefined function " + shown, call.loc);
    size_t nargs = call.items.size() - 1;
    if (target->builtin) {
      const BuiltinDecl* b = target->builtin;
      if (b->io || !b->fn)
        fail_compile("rego_type_error",
                     shown +
                         " is an I/O built-in and is not allowed in meshguard policies (evaluated on the "
                         "request path)",
                     call.loc);
      if (b->arity >= 0 && nargs != static_cast<size_t>(b->arity) &&
          nargs != static_cast<size_t>(b->arity) + 1)
        fail_compile("rego_type_error",
                     shown + ": arity mismatch: expected " + std::to_string(b->arity) + " arguments, got " +
                         std::to_string(nargs),
                     call.loc);
      call.builtin = b;
      call.items[0]->name = b->name;
    } else {
      const RuleNode* n = find_node(target->path);
      size_t arity = n->functions.empty() ? n->default_function->args.size() : n->functions[0]->args.size();
      if (nargs != arity && nargs != arity + 1)
        fail_compile("rego_type_error",
                     "function " + plan_.path_name(target->path) + " has arity " + std::to_string(arity) +
                         ", got " + std::to_string(nargs) + " arguments",
                     call.loc);
      call.data_path = target->path;
    }
  }

  size_t call_arity(const Term& call) const {
    if (call.builtin)
      return call.builtin->arity < 0 ? call.items.size() - 1 : static_cast<size_t>(call.builtin->arity);
    const RuleNode* n = find_node(call.data_path);
    return n->functions.empty() ? n->default_function->args.size() : n->functions[0]->args.size();
  }

  // Comprehension: own scope; closure variables recorded in items (for safety ordering).
  void compile_comprehension(Term& t, Scope& outer) {
    Scope scope;
    scope.parent = &outer;
    scope.frame = outer.frame;
    prepass_declare_nested(*t.body, scope);
    if (t.key) declare_nested_free(t.key, scope);
    if (t.val) declare_nested_free(t.val, scope);
    std::vector<Expr> flat;
    flatten_body(*t.body, scope, flat);
    if (t.key) t.key = flatten_term(resolve_term(t.key, scope, true), scope, flat);
    if (t.val) t.val = flatten_term(resolve_term(t.val, scope, true), scope, flat);
    // Closure: slots from outer scopes used inside.
    std::vector<int> used;
    for (const auto& e : flat) expr_vars(e, used);
    if (t.key) collect_vars(t.key, used);
    if (t.val) collect_vars(t.val, used);
    std::set<int> closure;
    for (int s : used)
      if (scope.is_outer(s)) closure.insert(s);
    SlotSet bound(closure.begin(), closure.end());
    t.body->exprs = order(std::move(flat), bound, scope);
    for (const TermP& h : {t.key, t.val}) {
      if (!h) continue;
      for (int s : vars_of(h))
        if (!bound.count(s))
          fail_compile("rego_unsafe_var_error", "var " + outer.frame->names[s] + " is unsafe", h->loc);
    }
    t.items.clear();
    for (int s : closure) t.items.push_back(make_var_term(outer.frame->names[s], s, t.loc, false));
  }

  // Nested bodies: a name already known in an outer scope refers to it (closure), unless declared
  // here with `some` or `:=`.
  void prepass_declare_nested(Body& body, Scope& scope) { prepass_declare(body, scope); }
  void declare_nested_free(const TermP& t, Scope& scope) { declare_free_vars(t, scope); }

  // ---------------------------------------------------------------- flattening
  TermP fresh_var(Scope& scope, Location loc) {
    int slot = scope.fresh();
    return make_var_term(scope.frame->names[static_cast<size_t>(slot)], slot, loc, true);
  }

  // Folds constant composites into values. Returns true when t is ground.
  static bool fold(TermP& t) {
    switch (t->type) {
      case TermType::Value:
        t->ground = true;
        return true;
      case TermType::Array:
      case TermType::Set: {
        bool g = true;
        for (auto& i : t->items) g = fold(i) && g;
        if (!g) return false;
        std::vector<Value> vals;
        for (auto& i : t->items) vals.push_back(i->value);
        Value v = t->type == TermType::Array ? Value::array(std::move(vals)) : Value::set(std::move(vals));
        t = make_value_term(std::move(v), t->loc);
        return true;
      }
      case TermType::Object: {
        bool g = true;
        for (auto& [k, v] : t->pairs) {
          g = fold(k) && g;
          g = fold(v) && g;
        }
        if (!g) return false;
        ObjectItems items;
        for (auto& [k, v] : t->pairs) items.emplace_back(k->value, v->value);
        t = make_value_term(Value::object(std::move(items)), t->loc);
        return true;
      }
      default:
        return false;
    }
  }

  // Emits `type(term, g)` (or `g = term` when var_first) for a fresh variable g and returns g.
  TermP bind_fresh(ExprType type, TermP term, Location loc, Scope& scope, std::vector<Expr>& out,
                   bool var_first) {
    TermP g = fresh_var(scope, loc);
    Expr e;
    e.type = type;
    e.loc = loc;
    e.terms = var_first ? std::vector<TermP>{g, term} : std::vector<TermP>{term, g};
    out.push_back(std::move(e));
    return g;
  }

  // Returns a simple term (value, variable, or composite of simple terms); refs, calls and
  // comprehensions become expressions in `out` binding generated variables.
  TermP flatten_term(TermP t, Scope& scope, std::vector<Expr>& out) {
    switch (t->type) {
      case TermType::Value:
      case TermType::Var:
        return t;
      case TermType::Ref: {
        TermP r = flatten_ref(t, scope, out);
        if (r->type != TermType::Ref) return r;
        return bind_fresh(ExprType::RefEval, r, t->loc, scope, out, false);
      }
      case TermType::Call:
        return bind_fresh(ExprType::Call, flatten_call_args(t, scope, out), t->loc, scope, out, false);
      case TermType::ArrayCompr:
      case TermType::SetCompr:
      case TermType::ObjectCompr:
        return bind_fresh(ExprType::Unify, t, t->loc, scope, out, true);
      default: {
        for (auto& i : t->items) i = flatten_term(i, scope, out);
        for (auto& [k, v] : t->pairs) {
          k = flatten_term(k, scope, out);
          v = flatten_term(v, scope, out);
        }
        fold(t);
        return t;
      }
    }
  }

  TermP flatten_ref(TermP t, Scope& scope, std::vector<Expr>& out) {
    TermP head = t->items[0];
    if (head->type != TermType::Var) {
      head = flatten_term(head, scope, out);
      t->items[0] = head;
    }
    for (size_t i = 1; i < t->items.size(); ++i) {
      auto& op = t->items[i];
      if (op->type == TermType::Var || op->type == TermType::Value) continue;
      op = flatten_term(op, scope, out);
    }
    if (t->items.size() == 1 && head->type == TermType::Var && head->slot >= 0) return head;
    return t;
  }

  TermP flatten_call_args(TermP call, Scope& scope, std::vector<Expr>& out) {
    for (size_t i = 1; i < call->items.size(); ++i) call->items[i] = flatten_term(call->items[i], scope, out);
    return call;
  }

  void flatten_expr(Expr& e, Scope& scope, std::vector<Expr>& out) {
    if (e.type == ExprType::SomeDecl) return;
    // `with` values are computed before the modified expression runs.
    std::vector<With> withs;
    for (auto& w : e.withs) withs.push_back(resolve_with(w, scope, out));
    if (e.negated || !withs.empty()) {
      Expr inner = e;
      inner.negated = false;
      inner.withs.clear();
      auto body = std::make_shared<Body>();
      flatten_plain(inner, scope, body->exprs);
      Expr g;
      g.type = ExprType::Group;
      g.loc = e.loc;
      g.negated = e.negated;
      g.withs = std::move(withs);
      g.body = body;
      out.push_back(std::move(g));
      return;
    }
    flatten_plain(e, scope, out);
  }

  void flatten_body(Body& body, Scope& scope, std::vector<Expr>& out) {
    for (size_t i = 0; i < body.exprs.size(); ++i) {
      scope.position = i;
      flatten_expr(body.exprs[i], scope, out);
    }
    scope.position = SIZE_MAX;  // head terms see every variable of the body
  }

  With resolve_with(With w, Scope& scope, std::vector<Expr>& out) {
    auto name = dotted(w.target);
    With r;
    r.loc = w.loc;
    bool local_head = name && scope.lookup((*name)[0]) >= 0;
    if (name && !local_head && ((*name)[0] == "input" || (*name)[0] == "data")) {
      // Target path as a Ref of constants.
      TermP t = std::make_shared<Term>();
      t->type = TermType::Ref;
      t->loc = w.target->loc;
      t->items.push_back(
          make_var_term((*name)[0], (*name)[0] == "input" ? kInputSlot : kDataSlot, t->loc, false));
      for (size_t i = 1; i < name->size(); ++i)
        t->items.push_back(make_value_term(Value::string((*name)[i]), t->loc));
      // `with data.a.f as ...` where data.a.f is a function: a function mock.
      if ((*name)[0] == "data") {
        std::vector<std::string> p(name->begin() + 1, name->end());
        const RuleNode* n = find_node(p);
        if (n && (!n->functions.empty() || n->default_function)) {
          t = make_value_term(Value::string("data." + join(p)), t->loc);
          t->type = TermType::Call;  // marks a function target
          t->data_path = p;
        }
      }
      r.target = t;
    } else if (name && !local_head) {
      auto target = lookup_function(*name);
      if (!target) {
        if (ctx_->rule_names.count((*name)[0]) || ctx_->imports.count((*name)[0])) {
          // A rule or imported document: mock its data path.
          TermP ref = resolve_term(clone(w.target), scope, false);
          r.target = ref;
        } else {
          fail_compile("rego_compile_error",
                       "with keyword target must reference existing input, data, or a function", w.loc);
        }
      } else {
        TermP t = std::make_shared<Term>();
        t->type = TermType::Call;
        t->loc = w.target->loc;
        t->builtin = target->builtin;
        t->data_path = target->path;
        t->name = target->builtin ? target->builtin->name : "data." + join(target->path);
        r.target = t;
      }
    } else {
      fail_compile("rego_compile_error",
                   "with keyword target must reference existing input, data, or a function", w.loc);
    }
    // The replacement: a function (built-in or user) name or a value.
    auto vname = dotted(w.value);
    if (r.target->type == TermType::Call && vname && scope.lookup((*vname)[0]) < 0) {
      auto target = lookup_function(*vname);
      if (target) {
        TermP t = std::make_shared<Term>();
        t->type = TermType::Call;
        t->loc = w.value->loc;
        t->builtin = target->builtin;
        t->data_path = target->path;
        r.value = t;
        return r;
      }
    }
    r.value = flatten_term(resolve_term(w.value, scope, false), scope, out);
    return r;
  }

  void flatten_plain(Expr& e, Scope& scope, std::vector<Expr>& out) {
    switch (e.type) {
      case ExprType::Term: {
        TermP t = resolve_term(e.terms[0], scope, true);
        if (t->type == TermType::Call) {
          flatten_call_expr(t, nullptr, e.loc, scope, out);
          return;
        }
        TermP s = flatten_term(t, scope, out);
        Expr x;
        x.type = ExprType::Term;
        x.loc = e.loc;
        x.terms = {s};
        out.push_back(std::move(x));
        return;
      }
      case ExprType::Call: {
        TermP t = resolve_term(e.terms[0], scope, true);
        flatten_call_expr(t, nullptr, e.loc, scope, out);
        return;
      }
      case ExprType::Unify:
      case ExprType::Assign: {
        TermP a = resolve_term(e.terms[0], scope, true);
        TermP b = resolve_term(e.terms[1], scope, true);
        // `x = f(y)` / `x = data.p[i]`: evaluate straight into the other side.
        if (b->type == TermType::Call && a->type != TermType::Call) {
          TermP sa = flatten_term(a, scope, out);
          flatten_call_expr(b, sa, e.loc, scope, out);
          return;
        }
        if (a->type == TermType::Call && b->type != TermType::Call && e.type == ExprType::Unify) {
          TermP sb = flatten_term(b, scope, out);
          flatten_call_expr(a, sb, e.loc, scope, out);
          return;
        }
        if (b->type == TermType::Ref && a->type != TermType::Ref) {
          TermP sa = flatten_term(a, scope, out);
          TermP r = flatten_ref(b, scope, out);
          emit_ref_or_unify(r, sa, e.loc, out);
          return;
        }
        if (a->type == TermType::Ref && b->type != TermType::Ref && e.type == ExprType::Unify) {
          TermP sb = flatten_term(b, scope, out);
          TermP r = flatten_ref(a, scope, out);
          emit_ref_or_unify(r, sb, e.loc, out);
          return;
        }
        TermP sa = flatten_term(a, scope, out);
        TermP sb = flatten_term(b, scope, out);
        Expr x;
        x.type = ExprType::Unify;
        x.loc = e.loc;
        x.terms = {sa, sb};
        out.push_back(std::move(x));
        return;
      }
      case ExprType::SomeIn: {
        TermP coll = flatten_term(resolve_term(e.terms[2], scope, true), scope, out);
        Expr x;
        x.type = ExprType::SomeIn;
        x.loc = e.loc;
        x.terms = {e.terms[0] ? resolve_term(e.terms[0], scope, true) : nullptr,
                   resolve_term(e.terms[1], scope, true), coll};
        out.push_back(std::move(x));
        return;
      }
      case ExprType::Every: {
        TermP domain = flatten_term(resolve_term(e.terms[2], scope, true), scope, out);
        Scope inner;
        inner.parent = &scope;
        inner.frame = scope.frame;
        TermP k = e.terms[0];
        TermP v = e.terms[1];
        if (k) declare_pattern_vars(k, inner);
        declare_pattern_vars(v, inner);
        if (k) k = resolve_term(k, inner, true);
        v = resolve_term(v, inner, true);
        prepass_declare(*e.body, inner);
        std::vector<Expr> flat;
        flatten_body(*e.body, inner, flat);
        std::vector<int> used;
        for (const auto& be : flat) expr_vars(be, used);
        std::set<int> closure;
        for (int s : used)
          if (inner.is_outer(s)) closure.insert(s);
        SlotSet bound(closure.begin(), closure.end());
        for (int s : vars_of(k)) bound.insert(s);
        for (int s : vars_of(v)) bound.insert(s);
        auto body = std::make_shared<Body>();
        body->exprs = order(std::move(flat), bound, inner);
        Expr x;
        x.type = ExprType::Every;
        x.loc = e.loc;
        x.terms = {k, v, domain};
        x.body = body;
        // Slots local to the every body (reset per element) and the closure it needs bound.
        for (const auto& [n, s] : inner.vars) x.local_slots.push_back(s);
        for (int s : used)
          if (!inner.is_outer(s)) x.local_slots.push_back(s);
        std::sort(x.local_slots.begin(), x.local_slots.end());
        x.local_slots.erase(std::unique(x.local_slots.begin(), x.local_slots.end()), x.local_slots.end());
        for (int s : closure) x.terms.push_back(make_var_term(scope.frame->names[s], s, e.loc, false));
        out.push_back(std::move(x));
        return;
      }
      case ExprType::Group:  // `not { ... }` (rego.v2): the body's expressions, flattened
        for (auto& x : e.body->exprs) flatten_expr(x, scope, out);
        return;
      default:
        return;
    }
  }

  void emit_ref_or_unify(TermP r, TermP other, Location loc, std::vector<Expr>& out) {
    Expr x;
    x.loc = loc;
    if (r->type == TermType::Ref) {
      x.type = ExprType::RefEval;
      x.terms = {r, other};
    } else {
      x.type = ExprType::Unify;
      x.terms = {other, r};
    }
    out.push_back(std::move(x));
  }

  void flatten_call_expr(TermP call, TermP output, Location loc, Scope& scope, std::vector<Expr>& out) {
    size_t arity = call_arity(*call);
    size_t nargs = call->items.size() - 1;
    if (!output && nargs == arity + 1) {
      output = call->items.back();
      call->items.pop_back();
    } else if (output && nargs == arity + 1) {
      fail_compile("rego_type_error", "too many arguments", loc);
    }
    call = flatten_call_args(call, scope, out);
    if (output) output = flatten_term(output, scope, out);
    Expr x;
    x.type = ExprType::Call;
    x.loc = loc;
    x.terms = {call};
    if (output) x.terms.push_back(output);
    out.push_back(std::move(x));
  }

  // ---------------------------------------------------------------- ordering (safety)
  static void expr_vars(const Expr& e, std::vector<int>& out) {
    for (const auto& t : e.terms) {
      if (!t) continue;
      if (t->type == TermType::Call)
        for (size_t i = 1; i < t->items.size(); ++i) collect_vars(t->items[i], out);
      else
        collect_vars(t, out);
    }
    for (const auto& w : e.withs) collect_vars(w.value, out);
    if (e.body && e.type == ExprType::Group)
      for (const auto& x : e.body->exprs) expr_vars(x, out);
  }

  // Variables that must be bound before e runs, and those it binds. nullopt: not ready.
  std::optional<std::vector<int>> ready(const Expr& e, const SlotSet& bound, Scope& scope) {
    switch (e.type) {
      case ExprType::Term:
        if (all_bound(vars_of(e.terms[0]), bound)) return std::vector<int>{};
        return std::nullopt;
      case ExprType::Unify:
        return unify_ready(e.terms[0], e.terms[1], bound);
      case ExprType::RefEval: {
        const TermP& ref = e.terms[0];
        std::vector<int> binds;
        const TermP& head = ref->items[0];
        if (!all_bound(vars_of(head), bound)) return std::nullopt;
        // Operands are patterns: their variables are bound by iterating the collection.
        for (size_t i = 1; i < ref->items.size(); ++i)
          for (int s : vars_of(ref->items[i])) binds.push_back(s);
        for (int s : vars_of(e.terms[1])) binds.push_back(s);
        return binds;
      }
      case ExprType::Call: {
        const TermP& call = e.terms[0];
        for (size_t i = 1; i < call->items.size(); ++i)
          if (!all_bound(vars_of(call->items[i]), bound)) return std::nullopt;
        if (e.terms.size() == 2) return vars_of(e.terms[1]);
        return std::vector<int>{};
      }
      case ExprType::SomeIn: {
        if (!all_bound(vars_of(e.terms[2]), bound)) return std::nullopt;
        std::vector<int> binds = vars_of(e.terms[1]);
        if (e.terms[0])
          for (int s : vars_of(e.terms[0])) binds.push_back(s);
        return binds;
      }
      case ExprType::Every: {
        if (!all_bound(vars_of(e.terms[2]), bound)) return std::nullopt;
        for (size_t i = 3; i < e.terms.size(); ++i)
          if (!all_bound(vars_of(e.terms[i]), bound)) return std::nullopt;
        return std::vector<int>{};
      }
      case ExprType::Group: {
        for (const auto& w : e.withs)
          if (!all_bound(vars_of(w.value), bound)) return std::nullopt;
        if (e.negated) {
          // Every non-generated variable inside must come from outside.
          std::vector<int> used;
          for (const auto& x : e.body->exprs) expr_vars(x, used);
          for (int s : used) {
            const std::string& n = scope.frame->names[static_cast<size_t>(s)];
            if (n.rfind("__", 0) == 0) continue;
            if (!bound.count(s)) return std::nullopt;
          }
          return std::vector<int>{};
        }
        SlotSet tmp = bound;
        if (!try_order(e.body->exprs, tmp, scope)) return std::nullopt;
        std::vector<int> binds(tmp.begin(), tmp.end());
        return binds;
      }
      default:
        return std::vector<int>{};
    }
  }

  std::optional<std::vector<int>> unify_ready(const TermP& a, const TermP& b, const SlotSet& bound) {
    auto va = vars_of(a);
    auto vb = vars_of(b);
    if (all_bound(va, bound)) return vb;
    if (all_bound(vb, bound)) return va;
    bool arrays =
        a->type == TermType::Array && b->type == TermType::Array && a->items.size() == b->items.size();
    bool objects =
        a->type == TermType::Object && b->type == TermType::Object && a->pairs.size() == b->pairs.size();
    if (!arrays && !objects) return std::nullopt;
    std::vector<std::pair<TermP, TermP>> pending;
    if (arrays)
      for (size_t i = 0; i < a->items.size(); ++i) pending.emplace_back(a->items[i], b->items[i]);
    if (objects)
      for (size_t i = 0; i < a->pairs.size(); ++i)
        pending.emplace_back(a->pairs[i].second, b->pairs[i].second);
    SlotSet tmp = bound;
    std::vector<int> binds;
    bool progress = true;
    while (!pending.empty() && progress) {
      progress = false;
      for (size_t i = 0; i < pending.size(); ++i) {
        auto r = unify_ready(pending[i].first, pending[i].second, tmp);
        if (!r) continue;
        for (int s : *r) {
          tmp.insert(s);
          binds.push_back(s);
        }
        pending.erase(pending.begin() + static_cast<long>(i));
        progress = true;
        break;
      }
    }
    if (!pending.empty()) return std::nullopt;
    return binds;
  }

  bool try_order(std::vector<Expr>& exprs, SlotSet& bound, Scope& scope) {
    std::vector<Expr> remaining = exprs;
    std::vector<Expr> ordered;
    while (!remaining.empty()) {
      bool placed = false;
      for (size_t i = 0; i < remaining.size(); ++i) {
        auto r = ready(remaining[i], bound, scope);
        if (!r) continue;
        for (int s : *r) bound.insert(s);
        ordered.push_back(std::move(remaining[i]));
        remaining.erase(remaining.begin() + static_cast<long>(i));
        placed = true;
        break;
      }
      if (!placed) return false;
    }
    exprs = std::move(ordered);
    return true;
  }

  std::vector<Expr> order(std::vector<Expr> exprs, SlotSet& bound, Scope& scope) {
    std::vector<Expr> ordered;
    ordered.reserve(exprs.size());
    std::vector<bool> taken(exprs.size(), false);
    size_t first = 0;  // every expression before it is taken
    while (ordered.size() < exprs.size()) {
      bool placed = false;
      while (first < exprs.size() && taken[first]) ++first;
      for (size_t i = first; i < exprs.size(); ++i) {
        if (taken[i]) continue;
        auto r = ready(exprs[i], bound, scope);
        if (!r) continue;
        for (int s : *r) bound.insert(s);
        // Groups order their own body now that the outer bindings are known.
        if (exprs[i].type == ExprType::Group) {
          SlotSet inner = bound;
          if (exprs[i].negated) {
            std::vector<int> used;
            for (const auto& x : exprs[i].body->exprs) expr_vars(x, used);
            for (int s : used) inner.insert(s);
            for (int s : used)
              if (scope.frame->names[static_cast<size_t>(s)].rfind("__", 0) == 0) inner.erase(s);
          }
          exprs[i].body->exprs = order(std::move(exprs[i].body->exprs), inner, scope);
          if (!exprs[i].negated)
            for (int s : inner) bound.insert(s);
        }
        ordered.push_back(std::move(exprs[i]));
        taken[i] = true;
        placed = true;
        break;
      }
      if (!placed) {
        std::vector<Expr> rest;
        for (size_t i = 0; i < exprs.size(); ++i)
          if (!taken[i]) rest.push_back(exprs[i]);
        report_unsafe(rest, bound, scope);
      }
    }
    return ordered;
  }

  [[noreturn]] void report_unsafe(const std::vector<Expr>& exprs, const SlotSet& bound, Scope& scope) {
    RegoErrors errors;
    std::set<int> seen;
    for (const auto& e : exprs) {
      std::vector<int> used;
      expr_vars(e, used);
      if (e.type == ExprType::RefEval) collect_vars(e.terms[0], used);
      for (int s : used) {
        if (bound.count(s) || seen.count(s)) continue;
        const std::string& n = scope.frame->names[static_cast<size_t>(s)];
        if (n.rfind("__", 0) == 0) continue;
        seen.insert(s);
        errors.push_back(make_error("rego_unsafe_var_error", "var " + n + " is unsafe", e.loc));
      }
    }
    if (errors.empty())
      errors.push_back(make_error("rego_unsafe_var_error", "expression is unsafe", exprs.front().loc));
    throw CompileFailure{std::move(errors)};
  }

  // ---------------------------------------------------------------- recursion
  void refs_of_body(const Body& b, std::vector<std::vector<std::string>>& out) {
    for (const auto& e : b.exprs) {
      for (const auto& t : e.terms) refs_of_term(t, out);
      for (const auto& w : e.withs) refs_of_term(w.value, out);
      if (e.body) refs_of_body(*e.body, out);
    }
  }
  void refs_of_term(const TermP& t, std::vector<std::vector<std::string>>& out) {
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

  void collect_rule_nodes(const RuleNode* n, std::vector<const RuleNode*>& out) {
    if (n->has_value_rules() || !n->functions.empty()) out.push_back(n);
    for (const auto& [k, c] : n->children) collect_rule_nodes(c.get(), out);
  }

  // Nodes a data path depends on: the rule nodes along the path and every one below it.
  void deps_of_path(const std::vector<std::string>& path, std::vector<const RuleNode*>& out) {
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

  void check_recursion() {
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

  Plan& plan_;
  const Registry& reg_;
  const ModuleCtx* ctx_ = nullptr;
  std::vector<std::string> pkg_;
};

}  // namespace

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
  } catch (const CompileFailure& f) {
    return fail(f.errors);
  }
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
  } catch (const CompileFailure& f) {
    return fail(f.errors);
  }
  return std::shared_ptr<const PreparedQuery>(std::move(q));
}

}  // namespace mg::rego
