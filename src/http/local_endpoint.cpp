#include "http/local_endpoint.h"

namespace mg::http {

std::string answer_local_request(std::string_view head, const Limits& limits,
                                 const std::function<LocalReply(std::string_view path)>& route) {
  auto req = parse_request_head(head, limits);
  if (!req) return make_response(req.error().status, "text/plain", req.error().reason + "\n", false);
  if (req->method != "GET" && req->method != "HEAD")
    return make_response(405, "text/plain", "method not allowed\n", false);
  const LocalReply reply = route(req->path);
  return make_response(reply.status, reply.content_type, reply.body, false);
}

}  // namespace mg::http
