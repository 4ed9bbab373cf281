// policy/check.h — the `meshguardctl authz check` pipeline (docs/AUTHZ-CHECK.md) over a
// resource set, in one place for its two users: the CLI (files or the store it fetched) and the
// control plane's console what-if (issue 17, against the live store). A request.json, optionally
// completed from a Workload NS/NAME, decided by policy::decide exactly as a proxy decides it
// (keys given, never fetched); the decision as JSON. Pure: no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "jwt/authenticator.h"
#include "policy/decide.h"
#include "policy/resources.h"
#include "policy/select.h"

namespace mg::policy {

// Said with a decision that stopped at a CUSTOM provider: offline, it is not called.
extern const char* const kOfflineProviderNote;

// One decided request and what it was decided with (the decision points into the snapshot).
struct CheckRun {
  Request request;
  std::shared_ptr<const AuthzSnapshot> snapshot;
  std::unique_ptr<jwt::Authenticator> authenticator;
  DecideIo io;
  Decision decision;
  // A CUSTOM rule handed the decision to its provider: what DENY and ALLOW say if it allows.
  std::optional<Decision> if_allowed;
  int64_t now = 0;
};

// Parses `request_text` (request.json), completes its destination from the Workload `workload`
// ("NS/NAME"; "" for none) of `set` (`from_files` only words the error), compiles the
// destination's snapshot with `mesh` and decides. `keys`: the key sets given for jwksUri rules.
Result<std::unique_ptr<CheckRun>> run_authz_check(const ResourceSet& set, const MeshConfig& mesh,
                                                  const std::string& request_text,
                                                  const std::string& workload, bool from_files,
                                                  std::shared_ptr<jwt::JwksProvider> keys);

// `authz check`'s JSON output for a decision (docs/AUTHZ-CHECK.md).
nlohmann::ordered_json decision_json(const Decision& d, const Decision* if_allowed = nullptr);
// Its "explain" array: every policy of `set` considered for the request and why it matched or not.
nlohmann::ordered_json explain_json(const ResourceSet& set, const CheckRun& run, const MeshConfig& mesh);

}  // namespace mg::policy
