// proxy/worker.h — one worker: an io_context run by its own thread, and the per-worker state of
// each component, touched only on that thread (so none of it is locked): the read buffers lent
// per burst (buffer_pool.h), the metric series cache (report.h), the registered connections
// (connection_manager.h), the upstream pool (upstream_pool.h) and the ext_authz providers' pool
// (ext_authz.h).
#pragma once

#include <asio.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "proxy/buffer_pool.h"
#include "proxy/connection_manager.h"
#include "proxy/ext_authz.h"
#include "proxy/report.h"
#include "proxy/upstream_pool.h"

namespace mg::proxy {

struct Worker {
  Worker(const ProxyConfig& config, const Credentials& credentials, Report& report,
         const std::atomic<bool>& draining)
      : upstreams(*io, config, credentials, report, draining) {
    connections.io = io.get();
  }

  // Pooled sockets first, then the loop: destroying it destroys suspended connection coroutines,
  // whose guards still need `connections` (the thread must have been joined before).
  ~Worker() {
    upstreams.clear();
    ext_authz.clear();
    io.reset();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  BufferPool buffers;  // first member: outlives the connection coroutines destroyed with `io`
  SeriesCache series;  // the report's metric series this worker counts into
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  ConnectionList connections;
  UpstreamPool upstreams;
  ExtAuthzPool ext_authz;  // idle connections to HTTP ext_authz providers
};

}  // namespace mg::proxy
