// mg-grpc-test-server --listen 127.0.0.1:0: the meshtest.Echo service over plaintext HTTP/2
// (h2c), printing "listening on ADDR:PORT". Unary answers "echo:<text>" with the trailer
// x-echo-trailer; Chat answers each message as it arrives; Forbidden answers like Unary (the
// proxy's policy is what keeps callers out).
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "meshtest.grpc.pb.h"

namespace {

class EchoService final : public meshtest::Echo::Service {
  grpc::Status Unary(grpc::ServerContext* ctx, const meshtest::Msg* in, meshtest::Msg* out) override {
    out->set_text("echo:" + in->text());
    ctx->AddTrailingMetadata("x-echo-trailer", "unary-done");
    return grpc::Status::OK;
  }
  grpc::Status Chat(grpc::ServerContext*,
                    grpc::ServerReaderWriter<meshtest::Msg, meshtest::Msg>* stream) override {
    meshtest::Msg in;
    while (stream->Read(&in)) {
      meshtest::Msg out;
      out.set_text("echo:" + in.text());
      if (!stream->Write(out)) break;
    }
    return grpc::Status::OK;
  }
  grpc::Status Forbidden(grpc::ServerContext*, const meshtest::Msg* in, meshtest::Msg* out) override {
    out->set_text("forbidden-reached:" + in->text());
    return grpc::Status::OK;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--listen") == 0) listen = argv[++i];
  }
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "mg-grpc-test-server: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::printf("listening on %s:%d\n", listen.substr(0, listen.rfind(':')).c_str(), port);
  std::fflush(stdout);
  server->Wait();
  return 0;
}
