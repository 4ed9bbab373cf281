// rego/compiler_flatten.cpp — flattening: nested references, calls and comprehensions become their
// own expressions binding generated variables, so the evaluator sees only simple terms; constant
// composites are folded into values; `with` targets and values are resolved.
#include <algorithm>
#include <functional>
#include <set>

#include "rego/compiler_internal.h"

namespace mg::rego::compiler_detail {

TermP Compiler::fresh_var(Scope& scope, Location loc) {
  int slot = scope.fresh();
  return make_var_term(scope.frame->names[static_cast<size_t>(slot)], slot, loc, true);
}

// Folds constant composites into values. Returns true when t is ground.
bool Compiler::fold(TermP& t) {
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
TermP Compiler::bind_fresh(ExprType type, TermP term, Location loc, Scope& scope, std::vector<Expr>& out,
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
TermP Compiler::flatten_term(TermP t, Scope& scope, std::vector<Expr>& out) {
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

TermP Compiler::flatten_ref(TermP t, Scope& scope, std::vector<Expr>& out) {
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

TermP Compiler::flatten_call_args(TermP call, Scope& scope, std::vector<Expr>& out) {
  for (size_t i = 1; i < call->items.size(); ++i) call->items[i] = flatten_term(call->items[i], scope, out);
  return call;
}

void Compiler::flatten_expr(Expr& e, Scope& scope, std::vector<Expr>& out) {
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

void Compiler::flatten_body(Body& body, Scope& scope, std::vector<Expr>& out) {
  for (size_t i = 0; i < body.exprs.size(); ++i) {
    scope.position = i;
    flatten_expr(body.exprs[i], scope, out);
  }
  scope.position = SIZE_MAX;  // head terms see every variable of the body
}

With Compiler::resolve_with(With w, Scope& scope, std::vector<Expr>& out) {
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

void Compiler::flatten_plain(Expr& e, Scope& scope, std::vector<Expr>& out) {
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

void Compiler::emit_ref_or_unify(TermP r, TermP other, Location loc, std::vector<Expr>& out) {
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

void Compiler::flatten_call_expr(TermP call, TermP output, Location loc, Scope& scope,
                                 std::vector<Expr>& out) {
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

}  // namespace mg::rego::compiler_detail
