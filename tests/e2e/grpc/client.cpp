// mg-grpc-test-client --target HOST:PORT --method unary|chat|forbidden [--token JWT] [--text T]
// [--count N] [--interval-ms MS] [--deadline-ms MS]: one call over plaintext HTTP/2 (h2c) to the
// meshtest.Echo service; prints the replies ("reply=..."), the trailer x-echo-trailer when present, and
// "status=<code> <name> message=<text>". Exit 0 whenever the call ran (the test reads the status).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "meshtest.grpc.pb.h"

namespace {

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return "OTHER";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string target, method = "unary", token, text = "hello";
  int count = 3, deadline_ms = 10'000, interval_ms = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--target")
      target = value;
    else if (flag == "--method")
      method = value;
    else if (flag == "--token")
      token = value;
    else if (flag == "--text")
      text = value;
    else if (flag == "--count")
      count = std::stoi(value);
    else if (flag == "--deadline-ms")
      deadline_ms = std::stoi(value);
    else if (flag == "--interval-ms")
      interval_ms = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (target.empty()) {
    std::fprintf(stderr, "--target is required\n");
    return 2;
  }
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = meshtest::Echo::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  grpc::Status status;
  if (method == "unary" || method == "forbidden") {
    meshtest::Msg in, out;
    in.set_text(text);
    status = method == "unary" ? stub->Unary(&ctx, in, &out) : stub->Forbidden(&ctx, in, &out);
    if (status.ok()) std::printf("reply=%s\n", out.text().c_str());
  } else if (method == "chat") {
    auto stream = stub->Chat(&ctx);
    // Ping-pong: each reply is read before the next message goes, so the two directions must
    // flow at once through the proxies.
    for (int i = 0; i < count; ++i) {
      meshtest::Msg in, out;
      in.set_text(text + std::to_string(i));
      if (!stream->Write(in)) break;
      if (!stream->Read(&out)) break;
      std::printf("reply=%s\n", out.text().c_str());
      std::fflush(stdout);  // a test waits for the first reply of a long-lived stream
      if (interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
    stream->WritesDone();
    status = stream->Finish();
  } else {
    std::fprintf(stderr, "unknown method %s\n", method.c_str());
    return 2;
  }
  for (const auto& [key, value] : ctx.GetServerTrailingMetadata()) {
    if (key == "x-echo-trailer") std::printf("trailer=%s\n", std::string(value.data(), value.size()).c_str());
  }
  std::printf("status=%d %s message=%s\n", static_cast<int>(status.error_code()),
              code_name(status.error_code()), status.error_message().c_str());
  return 0;
}
