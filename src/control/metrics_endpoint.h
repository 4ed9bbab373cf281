// control/metrics_endpoint.h — the control plane's scrape endpoint (--metrics-listen): GET
// /metrics (Prometheus text of the registry) and GET /healthz/ready, one request per connection,
// served by one thread on a plain poll() loop — a scrape endpoint, not a web server. Owns its
// socket and thread. The request is parsed and answered by http/local_endpoint.h, as the proxy's
// admin endpoint's is (which reads it on Asio).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"
#include "telemetry/metrics.h"

namespace mg::control {

class MetricsEndpoint {
 public:
  // Listens on `listen` ("IPv4:PORT"; port 0: kernel-chosen) and serves until stop().
  static Result<std::unique_ptr<MetricsEndpoint>> start(const std::string& listen,
                                                        telemetry::Registry& metrics);
  ~MetricsEndpoint();

  std::string address() const;  // "IPv4:PORT" as bound
  void stop();                  // returns once the thread has ended (within ~200 ms)

 private:
  MetricsEndpoint(std::string listen, telemetry::Registry& metrics)
      : listen_(std::move(listen)), metrics_(metrics) {}
  void serve();

  const std::string listen_;
  telemetry::Registry& metrics_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace mg::control
