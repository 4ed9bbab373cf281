// tls/client_hello.h — the server name a TLS client asks for, read from its ClientHello without
// taking part in the handshake (TLS passthrough, issue 20: a client proxy routes an app's own TLS
// by SNI, an egress gateway authorizes and routes the TLS it relays by SNI; neither ends it).
// Pure logic: the caller peeks or buffers the bytes received so far and asks; the answer is
// "need more", the ClientHello's server name with the bytes of the records that carried it, or a
// refusal with its reason. Strict and bounded, because the name decides routing and policy:
// handshake records of TLS major version 3 only, the ClientHello reassembled over at most
// kClientHelloMaxBytes, every length checked against its container, at most one server_name
// extension holding at most one host_name, and that name a DNS name (RFC 6066: ASCII, no
// trailing dot) — anything else is refused, never guessed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace mg::tls {

// The most bytes (records with their headers) a ClientHello may take: one full record's payload
// (2^14) and headers to spare. Clients put their ClientHello in one record; a larger one is
// refused, so a caller never buffers more than this.
inline constexpr size_t kClientHelloMaxBytes = 16384 + 5 * 8;

struct ClientHelloParse {
  enum class State { Incomplete, Complete, Invalid };
  State state = State::Incomplete;
  std::string sni;    // Complete: the host_name, lower case; "" when the client sent none
  size_t length = 0;  // Complete: bytes of the records holding the ClientHello (from the front)
  Error error;        // Invalid: code "tls.client_hello.<what>" and a sentence
};

// Reads a ClientHello at the front of `buffer` (the bytes received so far). Incomplete only while
// every byte seen can still begin a valid ClientHello within kClientHelloMaxBytes.
ClientHelloParse parse_client_hello(std::string_view buffer);

}  // namespace mg::tls
