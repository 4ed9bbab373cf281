#include "policy/outcome.h"

#include <charconv>
#include <string>

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

// engine.h's names and sentence for a Decision, beside the other ways a decision is reported.
const char* to_string(ReasonCode code) {
  switch (code) {
    case ReasonCode::AllowedNoAuthorizationPolicy:
      return "AllowedNoAuthorizationPolicy";
    case ReasonCode::AllowedByPolicy:
      return "AllowedByPolicy";
    case ReasonCode::DeniedByPolicy:
      return "DeniedByPolicy";
    case ReasonCode::DeniedNoAllowMatch:
      return "DeniedNoAllowMatch";
    case ReasonCode::DeniedCustomUnavailable:
      return "DeniedCustomUnavailable";
    case ReasonCode::CustomProviderCheck:
      return "CustomProviderCheck";
    case ReasonCode::DeniedPlaintextOnStrict:
      return "DeniedPlaintextOnStrict";
    case ReasonCode::MalformedRequest:
      return "MalformedRequest";
    case ReasonCode::RequestAuthnFailed:
      return "RequestAuthnFailed";
    case ReasonCode::DeniedByOpaPolicy:
      return "DeniedByOpaPolicy";
    case ReasonCode::DeniedOpaPolicyError:
      return "DeniedOpaPolicyError";
    case ReasonCode::AllowedByOpaPolicy:
      return "AllowedByOpaPolicy";
    case ReasonCode::DeniedForeignNotNamed:
      return "DeniedForeignNotNamed";
  }
  return "?";
}

void describe_into(const Decision& d, std::string& out) {
  // Appended piece by piece into room reserved once: this runs for every request whose decision
  // is logged, so it makes one allocation, not one per piece.
  out.reserve(out.size() + 112 + d.policy.size() + d.detail.size());
  auto rule = [&] {
    if (d.rule < 0) return;
    out += " rule ";
    char digits[16];
    out.append(digits, std::to_chars(digits, digits + sizeof digits, d.rule).ptr);
  };
  switch (d.reason) {
    case ReasonCode::AllowedNoAuthorizationPolicy:
      out += "allowed: no ALLOW policy applies to the workload and no DENY policy matched";
      return;
    case ReasonCode::AllowedByPolicy:
      (out += "allowed by ALLOW policy ") += d.policy;
      rule();
      return;
    case ReasonCode::DeniedByPolicy:
      (out += "denied by DENY policy ") += d.policy;
      rule();
      return;
    case ReasonCode::DeniedNoAllowMatch:
      out += "denied: ALLOW policies apply to the workload but none matched";
      return;
    case ReasonCode::DeniedCustomUnavailable:
      (out += "denied: CUSTOM policy ") += d.policy;
      rule();
      out += " matched but ";
      out +=
          d.detail.empty() ? std::string_view("its provider is not available") : std::string_view(d.detail);
      out += " (fail closed)";
      return;
    case ReasonCode::CustomProviderCheck:
      (out += "CUSTOM policy ") += d.policy;
      rule();
      out += " matched: extension provider \"";
      out += d.provider ? std::string_view(d.provider->name) : std::string_view("?");
      out += "\" (";
      if (d.provider) {
        ((((out += to_string(d.provider->kind)) += ' ') += d.provider->service) += ':') +=
            std::to_string(d.provider->port);
      } else {
        out += '?';
      }
      out += ") decides; DENY and ALLOW policies follow only if it allows";
      return;
    case ReasonCode::DeniedPlaintextOnStrict:
      ((out += "connection refused: plaintext to a port where mTLS is STRICT (PeerAuthentication ") +=
       d.policy) += ')';
      if (!d.detail.empty()) (out += ' ') += d.detail;
      return;
    case ReasonCode::MalformedRequest:
      (out += "malformed request: ") += d.detail;
      return;
    case ReasonCode::RequestAuthnFailed:
      (out += "request authentication failed: ") += d.detail;
      return;
    case ReasonCode::DeniedByOpaPolicy:
      (((out += "denied by OPAPolicy ") += d.policy) += ": ") += d.detail;
      return;
    case ReasonCode::DeniedOpaPolicyError:
      (((out += "denied: OPAPolicy ") += d.policy) += " failed to evaluate (onError: Deny): ") += d.detail;
      return;
    case ReasonCode::AllowedByOpaPolicy:
      ((out += "allowed by OPAPolicy ") += d.policy) +=
          " (no ALLOW policy applies to the workload and no DENY policy matched)";
      return;
    case ReasonCode::DeniedForeignNotNamed:
      ((out += "denied: the peer is of federated trust domain ") += d.detail) +=
          " and no ALLOW rule names its principal with that trust domain";
      return;
  }
  out += '?';
}

std::string describe(const Decision& d) {
  std::string out;
  describe_into(d, out);
  return out;
}

}  // namespace mg::policy
