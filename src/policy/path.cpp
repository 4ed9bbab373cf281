#include "policy/path.h"

namespace mg::policy {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

char upper_hex(char c) { return (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c; }

PathVerdict malformed(const char** why, const char* text) {
  if (why) *why = text;
  return PathVerdict::Malformed;
}

// RFC 3986 section 5.2.4 for an absolute path: each step consumes one segment of `in`.
void remove_dot_segments(std::string_view in, std::string& out) {
  out.clear();
  size_t i = 0;
  while (i < in.size()) {
    size_t j = in.find('/', i + 1);
    if (j == std::string_view::npos) j = in.size();
    const std::string_view segment = in.substr(i + 1, j - i - 1);
    const bool last = j == in.size();
    if (segment == ".") {
      if (last) out.push_back('/');
    } else if (segment == "..") {
      const size_t cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
      if (last) out.push_back('/');
    } else {
      out.push_back('/');
      out.append(segment);
    }
    i = j;
  }
  if (out.empty()) out.push_back('/');
}

}  // namespace

std::optional<PathNormalization> parse_path_normalization(std::string_view name) {
  if (name == "NONE") return PathNormalization::None;
  if (name == "BASE") return PathNormalization::Base;
  if (name == "MERGE_SLASHES") return PathNormalization::MergeSlashes;
  if (name == "DECODE_AND_MERGE_SLASHES") return PathNormalization::DecodeAndMergeSlashes;
  return std::nullopt;
}

const char* to_string(PathNormalization mode) {
  switch (mode) {
    case PathNormalization::None: return "NONE";
    case PathNormalization::Base: return "BASE";
    case PathNormalization::MergeSlashes: return "MERGE_SLASHES";
    case PathNormalization::DecodeAndMergeSlashes: return "DECODE_AND_MERGE_SLASHES";
  }
  return "?";
}

PathVerdict normalize_path(std::string_view raw, PathNormalization mode, std::string& out, const char** why) {
  const size_t end = raw.find_first_of("?#");
  const std::string_view path = raw.substr(0, end);
  if (path.empty() || path.front() != '/') return malformed(why, "path must start with '/'");
  const bool merge = mode == PathNormalization::MergeSlashes || mode == PathNormalization::DecodeAndMergeSlashes;
  // Whether a pass below could change the path: a %-escape, a backslash, a segment starting with
  // '.' (a dot segment, or harmlessly ".x"), `//` when merging. Most paths have none of them.
  bool changes = false;
  for (size_t i = 0; i < path.size(); ++i) {
    const auto c = static_cast<unsigned char>(path[i]);
    if (c <= 0x20 || c >= 0x7f) return malformed(why, "control, space or non-ASCII byte in path");
    if (i > 0 && path[i - 1] == '/' && (c == '.' || (c == '/' && merge))) changes = true;
    if (c == '\\') changes = true;
    if (c == '%') {
      changes = true;
      if (i + 2 >= path.size()) return malformed(why, "truncated %-escape in path");
      const int hi = hex_value(path[i + 1]), lo = hex_value(path[i + 2]);
      if (hi < 0 || lo < 0) return malformed(why, "bad %-escape in path");
      if (hi == 0 && lo == 0) return malformed(why, "%00 in path");
      i += 2;
    }
  }
  if (mode == PathNormalization::None || !changes) {
    out.assign(path);
    return PathVerdict::Ok;
  }
  // Decode pass (escapes were validated above).
  thread_local std::string decoded;  // scratch reused across requests: no allocation once warm
  decoded.clear();
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%') {
      const auto byte = static_cast<unsigned char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      const bool slash = byte == '/' || byte == '\\';
      if (unreserved(byte) || (slash && mode == PathNormalization::DecodeAndMergeSlashes)) {
        decoded.push_back(byte == '\\' ? '/' : static_cast<char>(byte));
      } else {
        decoded.push_back('%');
        decoded.push_back(upper_hex(path[i + 1]));
        decoded.push_back(upper_hex(path[i + 2]));
      }
      i += 2;
    } else {
      decoded.push_back(c == '\\' ? '/' : c);
    }
  }
  remove_dot_segments(decoded, out);
  if (mode == PathNormalization::MergeSlashes || mode == PathNormalization::DecodeAndMergeSlashes) {
    size_t w = 0;
    for (size_t r = 0; r < out.size(); ++r) {
      if (out[r] == '/' && w > 0 && out[w - 1] == '/') continue;
      out[w++] = out[r];
    }
    out.resize(w);
  }
  return PathVerdict::Ok;
}

}  // namespace mg::policy
