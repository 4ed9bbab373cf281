// bench/control h2 clients — the simulated proxies of `--clients h2`: the same
// ConfigService.Watch stream a SimProxy holds (mTLS with each proxy's own SVID, HTTP/2, gRPC's
// length-prefixed messages of the generated protobuf types, a Hello, then an ACK for every
// snapshot), without gRPC's per-channel machinery: each proxy is one non-blocking socket, one
// OpenSSL SSL and one libnghttp2 client session (http2::ClientSession), and a thread or two drive
// all of them, each from one epoll loop. In a deployment the proxies run on other hosts; here the
// cheaper client leaves the shared cores to the control plane, which sees the same bytes a gRPC
// client sends (SETTINGS and PINGs answered by nghttp2).
// Measured as SimProxy measures: a proxy's ACK counts when its bytes were handed to the socket
// (SSL_write returned), against `Round` (harness.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/grpc_tls.h"
#include "crypto/openssl.h"
#include "harness.h"

namespace control_bench {

class H2Proxies {
 public:
  // `threads` epoll loops (1..8); proxies are spread over them round-robin.
  H2Proxies(Round& round, const std::string& bundle_pem, int threads);
  ~H2Proxies();  // stop()
  H2Proxies(const H2Proxies&) = delete;
  H2Proxies& operator=(const H2Proxies&) = delete;

  // One stream per SVID (`ids`, consumed), proxy i named "proxy-<i>" with the labels SimProxy
  // sends, to h.address_for(i); the handshake backlog kept small as connect_proxies keeps it. Dies
  // unless every one ACKs a first snapshot.
  void connect(const Harness& h, std::vector<mg::api::SvidFiles>& ids);

  // Each proxy's apply → ACK latencies (run_changes); read only after its ACK was counted.
  LatencyViews latencies() const;

  // Cancels every stream (RST_STREAM CANCEL, as gRPC's TryCancel), closes the connections and
  // joins the loops. Idempotent.
  void stop();

  // Why the first stream that failed failed ("" when none did).
  std::string first_error() const;

 private:
  struct Loop;
  Round& round_;
  mg::crypto::SslCtxPtr ctx_;  // every connection's; outlives the loops
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<const std::vector<double>*> latencies_;
};

}  // namespace control_bench
