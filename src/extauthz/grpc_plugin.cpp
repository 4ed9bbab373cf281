// libmeshguard-extauthz-grpc.so's one export (extauthz/grpc_client.h).
#include "extauthz/grpc_client.h"

extern "C" __attribute__((visibility("default"))) mg::extauthz::GrpcCheckers* mg_extauthz_grpc_create() {
  return mg::extauthz::make_grpc_checkers().release();
}
