// policy/path.h — request path normalization before authorization, as Istio's mesh setting
// `pathNormalization` (see istio.io "Authorization Policy Normalization"):
//   NONE                      only the query and fragment are removed;
//   BASE (default)            + decode %-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~),
//                               upper-case the hex of the others, `\` → `/`, RFC 3986 dot segments;
//   MERGE_SLASHES             + `//` → `/` after BASE;
//   DECODE_AND_MERGE_SLASHES  + %2F / %5C decoded to `/` / `\` first, then BASE and merge.
// `%00`, a malformed %-escape, a control / space / non-ASCII byte, or a path that does not start
// with `/` make the request malformed (HTTP 400) in every mode. Linear time, never loops.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mg::policy {

enum class PathNormalization { None, Base, MergeSlashes, DecodeAndMergeSlashes };

std::optional<PathNormalization> parse_path_normalization(std::string_view name);
const char* to_string(PathNormalization mode);

enum class PathVerdict { Ok, Malformed };

// Writes the path used for matching into `out` (its capacity is reused: no allocation once
// warm). On Malformed, `out` is unspecified and `why` (when given) names the problem.
PathVerdict normalize_path(std::string_view raw, PathNormalization mode, std::string& out,
                           const char** why = nullptr);

}  // namespace mg::policy
