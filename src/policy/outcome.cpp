#include "policy/outcome.h"

namespace mg::policy {

std::string_view action_name(ReasonCode code) {
  switch (code) {
    case ReasonCode::AllowedByPolicy:
    case ReasonCode::DeniedNoAllowMatch:
      return "ALLOW";
    case ReasonCode::DeniedByPolicy:
      return "DENY";
    case ReasonCode::DeniedCustomUnavailable:
    case ReasonCode::CustomProviderCheck:
    case ReasonCode::DeniedByOpaPolicy:  // OPAPolicy sits in Istio's CUSTOM slot
    case ReasonCode::DeniedOpaPolicyError:
    case ReasonCode::AllowedByOpaPolicy:
      return "CUSTOM";
    default:
      return "";
  }
}

std::optional<bool> dry_run_outcome(const Decision& decision, std::string* policy) {
  if (decision.dry_run.empty()) return std::nullopt;
  bool any_allow = false;
  const DryRunResult* allowed_by = nullptr;
  for (const auto& r : decision.dry_run) {
    if (r.action == Action::Deny && r.matched) {
      if (policy) *policy = std::string(r.policy);
      return false;
    }
    if (r.action == Action::Allow) {
      any_allow = true;
      if (r.matched && !allowed_by) allowed_by = &r;
    }
  }
  if (!any_allow) return true;  // only dry-run DENY (none matched), AUDIT or CUSTOM
  if (policy) *policy = allowed_by ? std::string(allowed_by->policy) : std::string();
  return allowed_by != nullptr;
}

}  // namespace mg::policy
