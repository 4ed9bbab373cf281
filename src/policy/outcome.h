// policy/outcome.h — what a Decision says beyond allow/deny, named for those who report it: the
// action that decided it (the access log's "action") and what the dry-run policies would have
// decided (Envoy's shadow engine). Pure. outcome.cpp also defines engine.h's `to_string(ReasonCode)`
// and `describe` / `describe_into` (the reason sentence the access log and `authz check` print).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/decide.h"

namespace mg::policy {

// The action that decided a request, as the access log's "action" and the decisions metric name
// it: ALLOW (allowed by an ALLOW policy, or denied because none matched), DENY, CUSTOM (an
// OPAPolicy, a provider asked or unavailable); None when no policy decided (no policies, or
// refused before authorization).
enum class DecidingAction { None, Allow, Deny, Custom };
DecidingAction deciding_action(ReasonCode code);
// "ALLOW" | "DENY" | "CUSTOM" | "" (None).
std::string_view to_string(DecidingAction action);
// Against the text form (the access log's, a test's expectation).
inline bool operator==(DecidingAction action, std::string_view name) { return to_string(action) == name; }

// What the dry-run policies would have decided (Envoy's shadow engine): denied if a dry-run DENY
// rule matched, or dry-run ALLOW policies apply and none matched; nullopt when none applies.
// `policy` receives the dry-run policy that decides the shadow outcome ("" for no ALLOW match).
std::optional<bool> dry_run_outcome(const Decision& decision, std::string* policy = nullptr);

}  // namespace mg::policy
