// policy/outcome.h — what a Decision says beyond allow/deny, named for those who report it: the
// action that decided it (the access log's "action") and what the dry-run policies would have
// decided (Envoy's shadow engine). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/decide.h"

namespace mg::policy {

// "ALLOW" (allowed by an ALLOW policy, or denied because none matched), "DENY", "CUSTOM" (its
// provider unavailable); "" when no policy decided (no policies, or refused before authorization).
std::string_view action_name(ReasonCode code);

// What the dry-run policies would have decided (Envoy's shadow engine): denied if a dry-run DENY
// rule matched, or dry-run ALLOW policies apply and none matched; nullopt when none applies.
// `policy` receives the dry-run policy that decides the shadow outcome ("" for no ALLOW match).
std::optional<bool> dry_run_outcome(const Decision& decision, std::string* policy = nullptr);

}  // namespace mg::policy
