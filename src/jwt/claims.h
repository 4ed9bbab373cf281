// jwt/claims.h — claim access for the authorization engine (`request.auth.claims[a][b]`) and
// for outputClaimToHeaders. Istio/Envoy semantics: nested claims are walked object by object;
// a list claim matches when any element matches; the top-level `scope` and `permission`
// claims, when space-delimited strings, are split into lists (Envoy's
// normalize_payload_in_metadata as Istio configures it).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mg::jwt {

// The payload as the authz engine should see it: top-level `scope`/`permission` strings split
// on spaces into arrays of strings. Everything else unchanged.
nlohmann::json normalize_claims(nlohmann::json payload);

// Walks `path` (["a", "b"] is claims.a.b). nullptr when any step is missing or not an object.
const nlohmann::json* find_claim(const nlohmann::json& claims, std::span<const std::string> path);

// String values of the claim at `path`: a string gives itself, a list gives its string
// elements, a bool/integer gives its JSON text ("true", "42"); objects and missing claims give
// nothing.
std::vector<std::string> claim_strings(const nlohmann::json& claims, std::span<const std::string> path);

// True when any of claim_strings(claims, path) equals `value`.
bool claim_has_value(const nlohmann::json& claims, std::span<const std::string> path, std::string_view value);

// Splits "a.b.c" into {"a","b","c"} (outputClaimToHeaders' nested-claim syntax).
std::vector<std::string> split_claim_path(std::string_view dotted);

// The header value outputClaimToHeaders produces for a claim: strings as is, numbers and
// bools as JSON text, lists of those joined with ','. nullopt for objects, missing claims, and
// any value that would contain a control character (CR/LF/NUL would split or smuggle headers).
std::optional<std::string> claim_header_value(const nlohmann::json& claims, std::string_view dotted_claim);

}  // namespace mg::jwt
