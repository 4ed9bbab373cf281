#include "http2/preface.h"

namespace mg::http2 {

Preface detect_preface(std::string_view first_bytes) {
  size_t n = first_bytes.size() < kClientPreface.size() ? first_bytes.size() : kClientPreface.size();
  if (first_bytes.substr(0, n) != kClientPreface.substr(0, n)) return Preface::Http1;
  return n == kClientPreface.size() ? Preface::Http2 : Preface::NeedMore;
}

}  // namespace mg::http2
