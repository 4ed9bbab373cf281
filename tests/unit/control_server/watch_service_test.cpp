// tests/unit/control_server/watch_service_test — ConfigService.Watch: who may open a stream, and malformed
// requests ending it.
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

TEST_F(ControlServer, WatchWithoutClientCertificateIsUnauthenticated) {
  WatchClient w(channel(std::nullopt));
  w.hello("cart", {{"app", "cart"}});
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ControlServer, MalformedWatchRequestsEndTheStream) {
  const auto svid = issue("shop", "cart-sa");
  {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.ack("0123456789abcdef"));  // an ACK before Hello
    EXPECT_FALSE(w.next());
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.stream->Write(pb::WatchRequest()));  // neither Hello nor Ack
    EXPECT_FALSE(w.next());
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  for (const std::string& name :
       std::vector<std::string>{"", "Cart", "../cart", "cart/x", std::string(300, 'a')}) {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.hello(name));
    EXPECT_FALSE(w.next()) << name;
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED) << name;
  }
  {
    WatchClient w(channel(svid));
    ASSERT_TRUE(w.hello("cart"));
    auto s = w.next();
    ASSERT_TRUE(s);
    ASSERT_TRUE(w.hello("cart"));  // Hello twice
    EXPECT_FALSE(w.next());
    EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_F(ControlServer, SystemNamespaceSvidCannotWatch) {
  WatchClient w(channel(admin_));
  ASSERT_TRUE(w.hello("admin"));
  EXPECT_FALSE(w.next());
  EXPECT_EQ(w.finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace mg::control::server_test
