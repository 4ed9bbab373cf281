// proxy/listener.h — what a bound listener is: its kind, which config entry it serves and the
// address it is bound to (the kernel's port when the config said 0). Value types only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mg::proxy {

// Gateway: a gateway-mode listener (proxy/gateway_mode.h), served as the inbound port it is.
enum class ListenerKind { Inbound, Outbound, Admin, Gateway };

constexpr std::string_view to_string(ListenerKind kind) {
  switch (kind) {
    case ListenerKind::Inbound:
      return "inbound";
    case ListenerKind::Outbound:
      return "outbound";
    case ListenerKind::Admin:
      return "admin";
    case ListenerKind::Gateway:
      return "gateway";
  }
  return "admin";
}

struct ListenerInfo {
  ListenerKind kind = ListenerKind::Inbound;
  size_t index = 0;     // into config.inbound / config.outbound; Gateway: the gateway listener
  size_t inbound = 0;   // Gateway: its port in config.inbound
  std::string address;  // "127.0.0.1:41234"
  // "inbound[0]", "outbound[1]", "gateway[0]", "admin": the name printed on stdout and used in metrics.
  std::string name() const {
    std::string kind_name(to_string(kind));
    return kind == ListenerKind::Admin ? kind_name : kind_name + "[" + std::to_string(index) + "]";
  }
};

}  // namespace mg::proxy
