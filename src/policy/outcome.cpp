#include "policy/outcome.h"

namespace mg::policy {

DecidingAction deciding_action(ReasonCode code) {
  switch (code) {
    case ReasonCode::AllowedByPolicy:
    case ReasonCode::DeniedNoAllowMatch:
      return DecidingAction::Allow;
    case ReasonCode::DeniedByPolicy:
      return DecidingAction::Deny;
    case ReasonCode::DeniedCustomUnavailable:
    case ReasonCode::CustomProviderCheck:
    case ReasonCode::DeniedByOpaPolicy:  // OPAPolicy sits in Istio's CUSTOM slot
    case ReasonCode::DeniedOpaPolicyError:
    case ReasonCode::AllowedByOpaPolicy:
      return DecidingAction::Custom;
    default:
      return DecidingAction::None;
  }
}

std::string_view to_string(DecidingAction action) {
  switch (action) {
    case DecidingAction::Allow:
      return "ALLOW";
    case DecidingAction::Deny:
      return "DENY";
    case DecidingAction::Custom:
      return "CUSTOM";
    case DecidingAction::None:
      break;
  }
  return "";
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
