// rego/compiler_refs.cpp — the last compile step: every reference's constant prefix is resolved
// once per plan instead of once per evaluation. A reference counts its leading constant operands
// (input.attributes.request.http.method: five keys the evaluator looks up directly, without
// evaluating terms); a reference into data also records the rule-tree node and the base-document
// value its constant string keys reach, so evaluation starts there instead of descending from the
// root (walk_data would pass through exactly those nodes: each has a child for the key and no
// rules of its own). `with data...` replaces documents at evaluation time: the evaluator then
// ignores the recorded node and walks from the root.
#include "rego/compiler_internal.h"

namespace mg::rego::compiler_detail {

namespace {

void resolve_ref(const Plan& plan, Term& t) {
  const TermP& head = t.items[0];
  uint32_t n = 0;
  while (1 + n < t.items.size() && t.items[1 + n]->type == TermType::Value) ++n;
  t.const_ops = n;
  if (head->type != TermType::Var || head->slot != kDataSlot) return;
  const RuleNode* node = plan.root.get();
  const Value* base = &plan.data;
  size_t i = 1;
  for (; i <= n && !node->has_value_rules(); ++i) {
    const Value& key = t.items[i]->value;
    if (!key.is_string()) break;
    const RuleNode* child = node->child(key.as_string());
    if (!child) break;  // the rest is base data (or nothing): walk_data's own descent handles it
    node = child;
    base = base ? base->get(key) : nullptr;
  }
  if (i == 1) return;
  t.ref_node = node;
  t.ref_base = base;
  t.ref_at = static_cast<uint32_t>(i);
}

// A walk visitor resolving every reference it meets.
auto ref_resolver(const Plan& plan) {
  return [&plan](const TermP& t) {
    if (t->type == TermType::Ref && !t->items.empty()) resolve_ref(plan, *t);
    return true;
  };
}

}  // namespace

void resolve_constant_refs(const Plan& plan) {
  auto visit = ref_resolver(plan);
  TermWalk walk{visit, WithTargets::Visit};
  for (const auto& m : plan.modules)
    for (const auto& rule : m->rules) walk.rule(*rule);
}

void resolve_constant_refs(const Plan& plan, const Body& query) {
  auto visit = ref_resolver(plan);
  TermWalk{visit, WithTargets::Visit}.body(query);
}

}  // namespace mg::rego::compiler_detail
