// jwt/forward.h — what an allowed request carries on to the app of its request authentication, as
// Envoy's jwt_authn forwards it: every header a rule outputs to (outputPayloadToHeader,
// outputClaimToHeaders) removed first, so a client can never supply one itself; then the verified
// tokens removed from headers, query parameters and cookies (unless forwardOriginalToken) and the
// output headers set. Pure: edits the request model.
#pragma once

#include <vector>

#include "http/message.h"
#include "jwt/authenticator.h"
#include "jwt/rule.h"

namespace mg::jwt {

// `mutations` is Authenticator::header_mutations of the request's verified tokens; `rules` the
// rules in force (whose output headers are dropped whether a token was found or not).
void apply_to_forwarded(http::Request& request, const HeaderMutations& mutations,
                        const std::vector<JwtRule>& rules);

}  // namespace mg::jwt
