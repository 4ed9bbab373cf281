#include "common/plugin.h"
#include "extauthz/grpc_client.h"

namespace mg::extauthz {

Result<std::unique_ptr<GrpcCheckers>> load_grpc_checkers() {
  auto symbol = plugin::load_symbol("MESHGUARD_EXTAUTHZ_GRPC_LIBRARY", kGrpcLibrary, kGrpcFactory,
                                    "extauthz.load", "the gRPC ext_authz client");
  if (!symbol) return fail(symbol.error());
  return std::unique_ptr<GrpcCheckers>(reinterpret_cast<GrpcFactory>(*symbol)());
}

}  // namespace mg::extauthz
