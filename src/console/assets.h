// console/assets.h — the console's static files (src/console/web), embedded at build time so the
// control plane serves them with nothing to install or fetch. d3 is not embedded: the control
// plane serves Debian's libjs-d3 from kD3Path at run time.
#pragma once

#include <string_view>

namespace mg::console {

struct Asset {
  std::string_view name;  // "index.html", "console.js", "console.css"
  std::string_view content_type;
  std::string_view body;
};

// The asset named `name`, or null.
const Asset* find_asset(std::string_view name);

inline constexpr const char* kD3Path = "/usr/share/javascript/d3/d3.min.js";

}  // namespace mg::console
