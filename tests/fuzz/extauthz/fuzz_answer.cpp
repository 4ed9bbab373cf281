// An extension provider's answer is untrusted bytes. First byte even: a gRPC CheckResponse
// (protobuf's parser, then from_check_response); odd: an HTTP response (the project's parser,
// then interpret_http_check). Neither may crash, and an allowing answer never yields a header
// HTTP cannot carry (the forwarded request is serialized from it).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "extauthz/check.h"
#include "extauthz/grpc_mapping.h"
#include "http/parser.h"

namespace {

bool carriable(const std::vector<mg::http::Header>& headers) {
  for (const auto& h : headers) {
    if (h.name.empty() || h.value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) return false;
    for (unsigned char c : h.name)
      if (!mg::http::is_token_char(c)) return false;
  }
  return true;
}

void check(const mg::extauthz::CheckResult& r) {
  if (!carriable(r.upstream_set) || !carriable(r.upstream_append) || !carriable(r.upstream_add_if_absent) ||
      !carriable(r.upstream_set_if_present) || !carriable(r.downstream_headers))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  mg::policy::ExtensionProvider p;
  p.headers_to_upstream_on_allow = {"x-*"};
  if (data[0] % 2 == 0) {
    envoy::service::auth::v3::CheckResponse response;
    if (response.ParseFromArray(in.data(), static_cast<int>(in.size())))
      check(mg::extauthz::from_check_response(response));
    return 0;
  }
  mg::http::HeadScanner scanner;
  auto scan = scanner.scan(in, 64 * 1024);
  if (scan.state != mg::http::HeadScan::State::Complete) return 0;
  auto response = mg::http::parse_response_head(in.substr(0, scan.length), mg::http::Limits{}, "GET");
  if (!response) return 0;
  check(mg::extauthz::interpret_http_check(p, *response, std::string(in.substr(scan.length))));
  return 0;
}
