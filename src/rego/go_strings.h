// rego/go_strings.h — Go's strings-package semantics that OPA's built-ins inherit and policies
// observe: strings.NewReplacer's matching rule, Trim's cutsets, TrimSpace's notion of space,
// Unicode case mapping, Split on an empty separator, strconv.Quote. Pure functions of their input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mg::rego::go {

// strings.NewReplacer(old1, new1, ...).Replace(s): scanning left to right, at each position the
// earliest pair whose old string matches is applied and scanning resumes after it (replacements are
// never re-scanned); an empty old string matches between every two characters and at both ends.
// nullopt when the result would exceed max_bytes.
std::optional<std::string> replace(std::string_view s,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   size_t max_bytes = SIZE_MAX);

std::string trim(std::string_view s, std::string_view cutset);  // both ends
std::string trim_left(std::string_view s, std::string_view cutset);
std::string trim_right(std::string_view s, std::string_view cutset);
std::string trim_space(std::string_view s);  // unicode.IsSpace
bool is_space(char32_t r);

std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);

// strings.Split: an empty separator splits after each UTF-8 sequence.
std::vector<std::string> split(std::string_view s, std::string_view sep);

// strconv.Quote: Go escapes, non-printable runes as \x / \u / \U.
std::string quote(std::string_view s);

}  // namespace mg::rego::go
