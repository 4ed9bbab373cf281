// http/proxy_protocol.h — the PROXY protocol header (HAProxy's spec, versions 1 and 2) that a load
// balancer in front of a gateway writes before the client's own bytes, so the gateway learns the
// client's address. Pure logic: the caller peeks bytes and asks; the answer is "need more", a
// header with its exact length (the caller consumes just that), or a refusal. Strict, because the
// address decides ipBlocks: bounded sizes, exact v1 grammar, the v2 signature and version, only
// TCP over IPv4/IPv6 (or the spec's UNKNOWN / LOCAL, which keep the connection's own address).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::http {

struct ProxyHeader {
  int version = 0;  // 1 or 2
  // Proxied: the header carries the client's TCP endpoints. Otherwise (v1 UNKNOWN, v2 LOCAL, v2
  // PROXY with an unspecified family) the spec says to keep the connection's own endpoints — a
  // balancer's health check, not a client.
  bool proxied = false;
  bool ipv6 = false;
  std::string source_address;  // textual IP, canonical form
  std::string destination_address;
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
  size_t length = 0;  // bytes of the header at the front of the buffer

  // "ip:port", "[v6]:port" — the form the proxy keeps a peer's address in.
  std::string source_endpoint() const;
};

// The spec's bounds: a v1 line is at most 107 bytes with its CRLF; a v2 header is 16 bytes plus
// its address block and TLVs, which we cap (HAProxy's recommended receive buffer is 536 bytes).
inline constexpr size_t kProxyV1MaxBytes = 107;
inline constexpr size_t kProxyV2MaxBytes = 536;
// Enough bytes to hold any header we accept: what a caller should peek.
inline constexpr size_t kProxyHeaderMaxBytes = kProxyV2MaxBytes;

struct ProxyHeaderParse {
  enum class State { Incomplete, Complete, Invalid };
  State state = State::Incomplete;
  ProxyHeader header;  // when Complete
  Error error;         // when Invalid: code "proxy_protocol.<what>" and a sentence
};

// Looks for a PROXY header at the front of `buffer` (the bytes received so far). Incomplete only
// while every byte seen can still begin a valid header of bounded size.
ProxyHeaderParse parse_proxy_header(std::string_view buffer);

}  // namespace mg::http
