// MetricsEndpoint::start on bad --metrics values: a clear error, never an exception that ends the
// control plane (std::stoi used to throw on a port that is not a number).
#include <gtest/gtest.h>

#include "control/metrics_endpoint.h"

namespace mg::control {
namespace {

TEST(MetricsEndpoint, BadAddressesAreErrorsNotCrashes) {
  telemetry::Registry metrics;
  for (const char* bad : {"127.0.0.1:abc", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:12x", "127.0.0.1:-1",
                          "127.0.0.1:99999999999999999999", "localhost:80", "127.0.0.1"}) {
    auto endpoint = MetricsEndpoint::start(bad, metrics);
    ASSERT_FALSE(endpoint) << bad;
    EXPECT_EQ(endpoint.error().code, "control.bad_metrics_address") << bad;
  }
}

TEST(MetricsEndpoint, PortZeroGetsAKernelChosenPort) {
  telemetry::Registry metrics;
  auto endpoint = MetricsEndpoint::start("127.0.0.1:0", metrics);
  ASSERT_TRUE(endpoint) << endpoint.error().message;
  EXPECT_NE((*endpoint)->address(), "127.0.0.1:0");
  (*endpoint)->stop();
}

}  // namespace
}  // namespace mg::control
