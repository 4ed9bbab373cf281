#include "policy/remote_ip.h"

#include "http/message.h"

namespace mg::policy {

std::optional<IpAddress> remote_ip(const std::optional<IpAddress>& peer,
                                   std::span<const std::pair<std::string, std::string>> headers,
                                   uint32_t num_trusted_proxies) {
  if (num_trusted_proxies == 0) return peer;
  uint32_t from_right = 0;
  // Fields from the last one back, and each field's entries from its end: the last field's last
  // entry is the one the nearest proxy appended.
  for (auto field = headers.rbegin(); field != headers.rend(); ++field) {
    if (!iequals(field->first, "x-forwarded-for")) continue;
    std::string_view list = field->second;
    while (true) {
      const size_t comma = list.rfind(',');
      const std::string_view entry = comma == std::string_view::npos ? list : list.substr(comma + 1);
      if (++from_right == num_trusted_proxies) {
        auto ip = parse_ip(http::trim_ows(entry));
        return ip ? ip : peer;
      }
      if (comma == std::string_view::npos) break;
      list = list.substr(0, comma);
    }
  }
  return peer;  // fewer entries than trusted proxies
}

}  // namespace mg::policy
