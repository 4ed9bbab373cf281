// extauthz/grpc_mapping.h — the gRPC protocol's messages (api/envoy/service/auth/v3/
// external_auth.proto) to and from meshguard's vocabulary: CheckAttributes → CheckRequest as
// Envoy fills it (what the OPA-Envoy plugin's input is made of), CheckResponse → CheckResult as
// Envoy honours it (status OK → allow with ok_response's header mutations; anything else →
// deny with denied_response's status (403 when absent), headers and body). Part of the gRPC
// module (it needs the generated messages). No I/O.
#pragma once

#include "envoy/service/auth/v3/external_auth.pb.h"
#include "extauthz/grpc_client.h"

namespace mg::extauthz {

void to_check_request(const CheckAttributes& attributes, envoy::service::auth::v3::CheckRequest& out);

// A header a provider asks for that HTTP cannot carry (a name that is not a token, a value with
// CR, LF or NUL) makes the whole answer an Error: never forwarded, never half applied.
CheckResult from_check_response(const envoy::service::auth::v3::CheckResponse& response);

}  // namespace mg::extauthz
