// http/local_endpoint.h — the request half of a small local endpoint that answers one request per
// connection with one Connection: close response: the proxy's admin endpoint (Asio) and the
// control plane's scrape endpoint (a poll() thread) read the head their own way and share this.
// Pure.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "http/parser.h"

namespace mg::http {

struct LocalReply {
  int status = 404;
  std::string content_type = "text/plain";
  std::string body = "not found\n";
};

// `head`: one complete request head (as HeadScanner found it). A head that does not parse gets its
// 4xx; a method other than GET or HEAD gets 405; else `route` answers for the path (the query
// left out) — its default LocalReply is the 404. Returns the whole response.
std::string answer_local_request(std::string_view head, const Limits& limits,
                                 const std::function<LocalReply(std::string_view path)>& route);

}  // namespace mg::http
