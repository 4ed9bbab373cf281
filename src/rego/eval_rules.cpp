// rego/eval_rules.cpp — references: walking values, base data and the rule tree together (rules
// override base documents at their path, `with` overrides both); rule values: complete rules
// (conflicts are eval_conflict_error), partial sets/objects, ref heads, defaults, `else` chains,
// cached per `with` scope.
#include <map>

#include "rego/eval_internal.h"

namespace mg::rego::eval_detail {

bool Evaluator::eval_ref(const TermP& ref, Frame& f, VK vk) {
  const TermP& head = ref->items[0];
  if (head->slot == kInputSlot) {
    if (!state_->has_input) return false;
    // The constant keys (input.attributes.request.http.method) are looked up directly.
    const Value* v = &*state_->input;
    const size_t end = 1 + size_t{ref->const_ops};
    size_t i = 1;
    for (; i < end; ++i) {
      v = v->get(ref->items[i]->value);
      if (!v) return false;
    }
    return walk_value(*v, ref, i, f, vk);
  }
  if (head->slot == kDataSlot) {
    // Without `with data` in effect, start at the node the constant keys lead to (resolved once
    // per plan: compiler_refs.cpp).
    if (ref->ref_node && state_->overrides.empty() && !state_->patched_data)
      return walk_data(ref->ref_node, ref->ref_base, ref, ref->ref_at, f, vk);
    const Value& base = state_->patched_data ? *state_->patched_data : plan_.data;
    return walk_data(plan_.root.get(), &base, ref, 1, f, vk);
  }
  Value v = eval_term(head, f);
  return walk_value(v, ref, 1, f, vk);
}

// `store`: v is (part of) the base document, whose object keys are strings: a number key
// addresses the string key with its text (data.a[2] reads "2"), as OPA's storage paths do.
bool Evaluator::walk_value(const Value& v, const TermP& ref, size_t i, Frame& f, VK vk, bool store) {
  if (i == ref->items.size()) return vk(v);
  const TermP& op = ref->items[i];
  if (is_ground(op, f)) {
    Value scratch;
    const Value& key = term_value(op, f, scratch);
    const Value* child = v.get(key);
    if (!child && store && key.is_number() && v.is_object())
      child = v.get(std::string_view(key.number_text()));
    if (!child) return false;
    return walk_value(*child, ref, i + 1, f, vk, store);
  }
  switch (v.kind()) {
    case Kind::Array: {
      const auto& items = v.as_array();
      for (size_t j = 0; j < items.size(); ++j) {
        step(op->loc);
        if (unify_value(op, Value::number(static_cast<int64_t>(j)), f,
                        [&]() { return walk_value(items[j], ref, i + 1, f, vk, store); }))
          return true;
      }
      return false;
    }
    case Kind::Object:
      for (const auto& kv : v.as_object()) {
        step(op->loc);
        if (unify_value(op, kv.first, f, [&]() { return walk_value(kv.second, ref, i + 1, f, vk, store); }))
          return true;
      }
      return false;
    case Kind::Set:
      for (const auto& x : v.as_set()) {
        step(op->loc);
        if (unify_value(op, x, f, [&]() { return walk_value(x, ref, i + 1, f, vk, store); })) return true;
      }
      return false;
    default:
      return false;
  }
}

const Override* Evaluator::override_at(const std::vector<std::string>& path) const {
  for (const auto& o : state_->overrides) {
    if (o.path.size() != path.size()) continue;
    bool eq = true;
    for (size_t i = 0; i < path.size() && eq; ++i)
      eq = o.path[i].is_string() && o.path[i].as_string() == path[i];
    if (eq) return &o;
  }
  return nullptr;
}

bool Evaluator::walk_data(const RuleNode* node, const Value* base, const TermP& ref, size_t i, Frame& f,
                          VK vk) {
  if (!state_->overrides.empty()) {
    if (const Override* o = override_at(node->path)) return walk_value(o->value, ref, i, f, vk);
  }
  if (node->has_value_rules()) {
    if (i < ref->items.size() && node->complete.empty() && !node->default_rule && node->children.empty() &&
        state_->overrides.empty() && is_ground(ref->items[i], f)) {
      Value key = eval_term(ref->items[i], f);
      auto v = partial_lookup(node, key);
      if (!v) return false;
      return walk_value(*v, ref, i + 1, f, vk);
    }
    auto v = node_value(node, base);
    if (!v) return false;
    return walk_value(*v, ref, i, f, vk);
  }
  if (i == ref->items.size()) {
    auto v = node_value(node, base);
    if (!v) return false;
    return vk(*v);
  }
  const TermP& op = ref->items[i];
  auto descend = [&](const Value& key) -> bool {
    const RuleNode* child = key.is_string() ? node->child(key.as_string()) : nullptr;
    const Value* child_base = base ? base->get(key) : nullptr;
    if (!child_base && base && key.is_number()) child_base = base->get(std::string_view(key.number_text()));
    if (child) return walk_data(child, child_base, ref, i + 1, f, vk);
    if (child_base) return walk_value(*child_base, ref, i + 1, f, vk, true);
    return false;
  };
  if (is_ground(op, f)) return descend(eval_term(op, f));
  // Enumerate keys of both the rule tree and the base document.
  std::vector<Value> keys;
  for (const auto& [k, c] : node->children) keys.push_back(Value::string(k));
  if (base && base->is_object())
    for (const auto& [k, v] : base->as_object())
      if (!k.is_string() || !node->child(k.as_string())) keys.push_back(k);
  for (const auto& key : keys) {
    step(op->loc);
    if (unify_value(op, key, f, [&]() { return descend(key); })) return true;
  }
  return false;
}

std::optional<Value> Evaluator::node_value(const RuleNode* node, const Value* base) {
  if (const auto* cached = cache_->find(node)) return *cached;
  std::optional<Value> v = compute_node(node, base);
  if (v && !state_->overrides.empty()) {
    // Overrides strictly below this node replace parts of its value.
    for (const auto& o : state_->overrides) {
      if (o.path.size() <= node->path.size()) continue;
      bool under = true;
      for (size_t i = 0; i < node->path.size() && under; ++i)
        under = o.path[i].is_string() && o.path[i].as_string() == node->path[i];
      if (!under) continue;
      std::vector<Value> rest(o.path.begin() + static_cast<long>(node->path.size()), o.path.end());
      v = patch(*v, rest, 0, o.value);
    }
  }
  cache_->set(node, v);
  return v;
}

std::optional<Value> Evaluator::compute_node(const RuleNode* node, const Value* base) {
  if (!node->complete.empty() || node->default_rule) return eval_complete(node);
  bool only_set = !node->multi.empty() && node->objects.empty() && node->children.empty();
  if (only_set)
    for (const Rule* r : node->multi)
      if (!r->suffix.empty()) only_set = false;
  if (only_set) {
    std::vector<Value> elems;
    for (const Rule* r : node->multi) {
      eval_rule_body(*r, [&](Frame& f) {
        charge(64, r->loc);
        elems.push_back(eval_term(r->key, f));
        return r->constant_value;
      });
    }
    return Value::set(std::move(elems));
  }
  bool is_function = !node->functions.empty() || node->default_function;
  if (!node->has_value_rules() && is_function && node->children.empty()) return std::nullopt;
  if (!node->has_value_rules() && !is_function && node->children.empty() && base) return *base;
  DocTree tree;
  if (base && base->is_object())
    for (const auto& [k, v] : base->as_object())
      if (!k.is_string() || !node->child(k.as_string())) tree.children[k].leaf = v;
  for (const auto& [k, child] : node->children) {
    const Value* child_base = base ? base->get(std::string_view(k)) : nullptr;
    auto cv = node_value(child.get(), child_base);
    if (cv) tree.children[Value::string(k)].leaf = *cv;
  }
  for (const Rule* r : node->objects) {
    eval_rule_body(*r, [&](Frame& f) {
      charge(96, r->loc);
      DocTree* at = &tree;
      for (size_t i = 0; i < r->suffix.size(); ++i) {
        Value key = eval_term(r->suffix[i], f);
        if (at->leaf && i > 0) fail("eval_conflict_error", "object keys must be unique", r->loc);
        at = &at->children[key];
      }
      Value v = r->value ? eval_term(r->value, f) : Value::boolean(true);
      if (at->leaf && *at->leaf != v) fail("eval_conflict_error", "object keys must be unique", r->loc);
      if (!at->children.empty()) fail("eval_conflict_error", "object keys must be unique", r->loc);
      at->leaf = v;
      return false;
    });
  }
  for (const Rule* r : node->multi) {
    eval_rule_body(*r, [&](Frame& f) {
      charge(64, r->loc);
      DocTree* at = &tree;
      for (const auto& s : r->suffix) at = &at->children[eval_term(s, f)];
      at->is_set = true;
      at->set_elems.push_back(eval_term(r->key, f));
      return false;
    });
  }
  if (!node->multi.empty() && node->objects.empty() && tree.children.empty()) return Value::empty_set();
  return tree.to_value();
}

// data.p[key] for a partial set/object: evaluate the rules with the key bound.
std::optional<Value> Evaluator::partial_lookup(const RuleNode* node, const Value& key) {
  if (const auto* cached = cache_->find(node)) {
    if (!*cached) return std::nullopt;
    const Value* v = (*cached)->get(key);
    return v ? std::optional<Value>(*v) : std::nullopt;
  }
  std::optional<Value> result;
  for (const Rule* r : node->multi) {
    if (!r->suffix.empty()) return full_lookup(node, key);
    Frame f(r->frame_size);
    unify_value(r->key, key, f, [&]() {
      return eval_body(*r->body, 0, f, [&]() {
        result = key;
        return true;
      });
    });
    if (result) return result;
  }
  for (const Rule* r : node->objects) {
    if (r->suffix.size() != 1) return full_lookup(node, key);
    Frame f(r->frame_size);
    unify_value(r->suffix[0], key, f, [&]() {
      return eval_body(*r->body, 0, f, [&]() {
        Value v = r->value ? eval_term(r->value, f) : Value::boolean(true);
        if (result && *result != v) fail("eval_conflict_error", "object keys must be unique", r->loc);
        result = v;
        return false;
      });
    });
  }
  return result;
}

std::optional<Value> Evaluator::full_lookup(const RuleNode* node, const Value& key) {
  auto v = node_value(node, nullptr);
  if (!v) return std::nullopt;
  const Value* c = v->get(key);
  return c ? std::optional<Value>(*c) : std::nullopt;
}

template <class OnSolution>
void Evaluator::eval_rule_body(const Rule& r, OnSolution&& on) {
  if (++depth_ > kMaxCallDepth) fail("eval_internal_error", "rule evaluation too deep", r.loc);
  Frame f(r.frame_size);
  eval_body(*r.body, 0, f, [&]() { return on(f); });
  --depth_;
}

// Every rule from `from` on (else chains included) has the constant value `v`: evaluating them
// could neither change a result of `v` nor conflict with it. OPA exits early in this case too
// (`allow if {...}` written many times: the first body that holds decides).
static bool rest_constant(const std::vector<const Rule*>& rules, size_t from, const Value& v) {
  for (size_t i = from; i < rules.size(); ++i)
    for (const Rule* x = rules[i]; x; x = x->else_rule.get()) {
      if (!x->constant_value) return false;
      if (!x->value) {
        if (!v.is_bool() || !v.as_bool()) return false;
      } else if (x->value->type != TermType::Value || x->value->value != v) {
        return false;
      }
    }
  return true;
}

std::optional<Value> Evaluator::eval_complete(const RuleNode* node) {
  std::optional<Value> result;
  for (size_t i = 0; i < node->complete.size(); ++i) {
    if (result && rest_constant(node->complete, i, *result)) break;
    const Rule* rule = node->complete[i];
    for (const Rule* x = rule; x; x = x->else_rule.get()) {
      bool found = false;
      eval_rule_body(*x, [&](Frame& f) {
        Value v = x->value ? eval_term(x->value, f) : Value::boolean(true);
        if (result && *result != v)
          fail("eval_conflict_error", "rule " + plan_.path_name(node->path) + " produced conflicting values",
               x->loc);
        result = std::move(v);
        found = true;
        return x->constant_value;
      });
      if (found) break;
    }
  }
  if (!result && node->default_rule)
    result = node->default_rule->value ? node->default_rule->value->value : Value::boolean(true);
  return result;
}

}  // namespace mg::rego::eval_detail
