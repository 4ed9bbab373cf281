#include "proxy/proxy.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <thread>

#include "http/parser.h"
#include "proxy/admin.h"
#include "proxy/connection_manager.h"
#include "proxy/credentials.h"
#include "proxy/enforcement.h"
#include "proxy/forwarder.h"
#include "proxy/gateway_mode.h"
#include "proxy/http_session.h"
#include "proxy/inbound.h"
#include "proxy/listener.h"
#include "proxy/net.h"
#include "proxy/outbound.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"
#include "proxy/turn_end.h"
#include "proxy/worker.h"
#include "telemetry/access_log.h"

namespace mg::proxy {

using namespace std::chrono_literals;
using net::awaitable;
using net::nothrow;
using net::tcp;
using Clock = std::chrono::steady_clock;

struct Proxy::Impl {
  explicit Impl(ProxyConfig c) : config(std::move(c)) {}

  ProxyConfig config;
  // Before every component: the pollers' timers (credentials, policy) are destroyed before it.
  asio::io_context main_io{1};
  std::atomic<uint64_t> config_version{1};
  std::atomic<bool> draining{false};
  std::atomic<bool> started{false};
  Report report{config};
  PolicyState policy{config, report, config_version};
  http::Limits http_limits{config.limits.max_head_bytes, config.limits.max_headers};
  Credentials credentials{config.tls, report.registry(), config_version};
  ConnectionManager connections{config, policy, report};
  Enforcement enforcement{config, policy, report};
  GatewayMode gateway{config};
  Forwarder forwarder{config, http_limits, credentials, connections, policy, report, draining, gateway};
  HttpSession http{config, http_limits, credentials, enforcement, forwarder, report, draining};
  Inbound inbound{config, credentials, policy, enforcement, connections, http, report, gateway};
  Outbound outbound{config, connections, http, policy, report};

  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<size_t> next_worker{0};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // never shrinks (an accept loop holds one)
  std::vector<ListenerInfo> listeners;                    // those open (main thread)
  std::map<size_t, tcp::acceptor*> gateway_acceptors;     // by gateway listener id, while open
  std::function<void(const std::vector<Proxy::Listener>&)> listeners_changed;
  std::optional<asio::signal_set> signals;
  std::optional<asio::steady_timer> drain_timer;

  Clock::time_point drain_deadline;
  std::function<ControlPlaneView()> control_plane_view;  // set before start(), read-only after

  Admin admin{config,
              http_limits,
              report,
              credentials,
              policy,
              connections,
              Admin::Runtime{started, draining, config_version, listeners, control_plane_view, gateway}};

  Worker& pick_worker() {
    return *workers[next_worker.fetch_add(1, std::memory_order_relaxed) % workers.size()];
  }

  void spawn(asio::io_context& io, awaitable<void> task) {
    asio::co_spawn(io, std::move(task), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log_line(std::string("connection task failed: ") + ex.what());
      }
    });
  }

  // --- accept loops --------------------------------------------------------------------------

  awaitable<void> accept_loop(tcp::acceptor& acceptor, ListenerInfo info) {
    while (acceptor.is_open()) {
      std::error_code ec;
      if (info.kind == ListenerKind::Admin) {
        tcp::socket socket = co_await acceptor.async_accept(nothrow(ec));
        if (ec) {
          if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
          continue;
        }
        spawn(main_io, admin.serve(std::move(socket)));
        continue;
      }
      Worker& worker = pick_worker();
      tcp::socket socket = co_await acceptor.async_accept(*worker.io, nothrow(ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        // EMFILE and friends: back off briefly instead of spinning.
        asio::steady_timer pause(main_io, 50ms);
        co_await pause.async_wait(nothrow(ec));
        continue;
      }
      if (draining) {
        std::error_code ignored;
        socket.close(ignored);
        continue;
      }
      if (connections.at_capacity()) {
        report.count_refused(info.kind, Refusal::MaxConnections);
        std::error_code ignored;
        socket.close(ignored);
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      connections.admitted();
      if (info.kind == ListenerKind::Inbound || info.kind == ListenerKind::Gateway) {
        spawn(*worker.io, inbound.serve(std::move(socket), worker,
                                        info.kind == ListenerKind::Gateway ? info.inbound : info.index));
      } else {
        spawn(*worker.io, outbound.serve(std::move(socket), worker, info.index));
      }
    }
  }

  // --- listeners -----------------------------------------------------------------------------

  // A bound, listening acceptor on the main loop, or why not.
  Result<std::unique_ptr<tcp::acceptor>> open_acceptor(const std::string& address, uint16_t port,
                                                       std::string_view kind) {
    std::error_code ec;
    auto addr = asio::ip::make_address(address, ec);
    if (ec) return fail("proxy.bad_address", std::string(kind) + ": bad address '" + address + "'");
    auto acceptor = std::make_unique<tcp::acceptor>(main_io);
    tcp::endpoint ep(addr, port);
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return fail("proxy.listen", std::string(kind) + " " + net::endpoint_string(ep) + ": " + ec.message());
    return acceptor;
  }

  std::vector<Proxy::Listener> listener_list() const {
    std::vector<Proxy::Listener> out;
    for (const auto& l : listeners) out.push_back({l.name(), l.address});
    return out;
  }

  // The gateway listeners the plan in force asks for, on the main thread: those given up are
  // closed (no new connection; theirs drain), new ones bound and served. At start-up a bind
  // failure fails start-up; later it is logged and counted, the others and the publish stand, and
  // the next publish tries again.
  Status reconcile_gateway_listeners(bool at_start) {
    if (!gateway.enabled() || draining) return {};
    auto& bind_failures =
        report.registry().counter("meshguard_listener_bind_failures_total", {{"listener", "gateway"}});
    bool changed = false;
    for (size_t id : gateway.to_close()) {
      auto it = gateway_acceptors.find(id);
      if (it != gateway_acceptors.end()) {
        std::error_code ignored;
        it->second->close(ignored);
        gateway_acceptors.erase(it);
      }
      const std::string name = "gateway[" + std::to_string(id) + "]";
      std::erase_if(listeners, [&](const ListenerInfo& l) {
        if (l.kind != ListenerKind::Gateway || l.index != id) return false;
        log_line("closed " + name + " " + l.address + ": no Gateway asks for it; its connections drain");
        return true;
      });
      if (auto index = gateway.inbound_index(id)) {
        for (auto& w : workers) {
          asio::post(*w->io, [worker = w.get(), index = *index] {
            ConnectionManager::close_listener(worker->connections, index);
          });
        }
      }
      gateway.closed(id);
      changed = true;
    }
    for (size_t id : gateway.to_bind()) {
      InboundPort port = gateway.inbound_port(id);
      const std::string name = "gateway[" + std::to_string(id) + "]";
      if (config.inbound.size() == config.inbound.capacity()) {  // never: ids are capped (create)
        log_line(name + " not bound: no room left for another inbound port");
        continue;
      }
      auto acceptor = open_acceptor(port.address, port.port, name);
      if (!acceptor) {
        if (at_start) return fail(acceptor.error());
        bind_failures.inc();
        log_line("gateway listener not bound (tried again at the next publish): " +
                 acceptor.error().to_string());
        continue;
      }
      std::error_code ec;
      const auto local = (*acceptor)->local_endpoint(ec);
      // Port 0 in the Gateway: from now on the port is the one the kernel chose.
      port.port = port.app_port = local.port();
      size_t index = 0;
      policy.add_inbound([&] {
        index = config.inbound.size();
        config.inbound.push_back(port);
      });
      gateway.bound(id, index);
      ListenerInfo info{ListenerKind::Gateway, id, index, net::endpoint_string(local)};
      listeners.push_back(info);
      std::printf("listening %s %s\n", info.name().c_str(), info.address.c_str());
      std::fflush(stdout);
      gateway_acceptors[id] = acceptor->get();
      acceptors.push_back(std::move(*acceptor));
      if (!at_start) spawn(main_io, accept_loop(*acceptors.back(), info));
      changed = true;
    }
    if (changed && !at_start && listeners_changed) listeners_changed(listener_list());
    return {};
  }

  // --- drain ---------------------------------------------------------------------------------

  void begin_drain() {
    if (draining.exchange(true)) return;
    log_line("draining: no new connections; finishing in-flight requests");
    for (auto& a : acceptors) {
      std::error_code ignored;
      a->close(ignored);
    }
    credentials.stop_polling();
    policy.stop_polling();
    gateway.certificates().stop_polling();
    for (auto& w : workers) {
      asio::post(*w->io, [worker = w.get()] {
        ConnectionManager::close_idle(worker->connections);
        worker->upstreams.close_idle();
      });
    }
    drain_deadline = Clock::now() + std::chrono::milliseconds(config.limits.drain_timeout_ms);
    drain_timer.emplace(main_io);
    poll_drain();
  }

  void poll_drain() {
    drain_timer->expires_after(20ms);
    drain_timer->async_wait([this](std::error_code ec) {
      if (ec) return;
      if (connections.active() == 0 || Clock::now() >= drain_deadline) {
        if (connections.active() != 0) {
          log_line("drain timeout: closing " + std::to_string(connections.active()) + " connection(s)");
        } else {
          log_line("drained");
        }
        for (auto& w : workers) w->io->stop();
        main_io.stop();
        return;
      }
      poll_drain();
    });
  }
};

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Proxy::~Proxy() {
  if (!impl_) return;
  impl_->enforcement.shutdown();  // gRPC ext_authz completions post to the workers' loops
  for (auto& w : impl_->workers) {
    w->guard.reset();
    w->io->stop();
    if (w->thread.joinable()) w->thread.join();
  }
  // Connection coroutines that outlived a drain timeout are destroyed here, while the rest of
  // the runtime (counters, config) still exists.
  impl_->workers.clear();
}

ChainSet& Proxy::chains() { return impl_->policy.chains(); }

Status Proxy::reload_policies() {
  if (!impl_->config.policy_dir) return fail("proxy.no_policy_dir", "no policyDir is configured");
  return impl_->policy.reload(true);
}

Status Proxy::apply_policies(std::shared_ptr<const policy::ResourceSet> resources,
                             const std::string& file_name, std::string_view text) {
  return impl_->policy.apply(std::move(resources), {digest_policy_text(file_name, text)});
}

void Proxy::reload_credentials() { impl_->credentials.reload(true); }

std::vector<Proxy::Listener> Proxy::listeners() const { return impl_->listener_list(); }
telemetry::Registry& Proxy::metrics() { return impl_->report.registry(); }

telemetry::InsightBatch Proxy::take_insights() { return impl_->report.insights().take(); }

void Proxy::on_listeners_changed(std::function<void(const std::vector<Listener>&)> hook) {
  impl_->listeners_changed = std::move(hook);
}

void Proxy::set_control_plane_view(std::function<ControlPlaneView()> view) {
  impl_->control_plane_view = std::move(view);
}

Result<std::unique_ptr<Proxy>> Proxy::create(ProxyConfig config) {
  auto impl = std::make_unique<Impl>(std::move(config));
  if (auto st = impl->policy.load_initial(); !st) return fail(st.error());
  impl->policy.on_publish([d = impl.get()](const std::shared_ptr<const PublishedPolicy>& state,
                                           const std::shared_ptr<const RequestChain>& request_chain,
                                           const std::shared_ptr<const ConnectionChain>& connection_chain,
                                           bool chains_changed) {
    // The gateway's listeners, routes and certificates (also before start(): the agent's first
    // push); listeners to open or close are the main loop's to bind.
    if (d->gateway.publish(state->resource_set) && d->started)
      asio::post(d->main_io, [d] { (void)d->reconcile_gateway_listeners(false); });
    // No connections before start(); the workers' lists are complete once `started` is set.
    if (!d->started) return;
    // Endpoints only: the same chains would decide the same for every live connection.
    if (chains_changed) d->connections.rejudge_all(state, request_chain, connection_chain);
    // Endpoints that left the registry: their idle connections and TLS sessions go (Envoy drains
    // a removed host's pool); requests still on them finish.
    for (auto& w : d->workers) {
      asio::post(*w->io, [worker = w.get(), state, entries = d->gateway.routes()] {
        worker->upstreams.retain_endpoints(*state->registry, &entries->entries);
      });
    }
  });
  if (impl->config.gateway) {
    // The gateway's listeners, bound by start() and again after each publish: each one bound
    // becomes an inbound port of the config, which must never reallocate (connections hold
    // references into it; ids are capped, so is the growth).
    impl->config.inbound.reserve(impl->config.inbound.size() + GatewayMode::kMaxListeners);
    if (auto st = impl->gateway.plan(impl->config.workload, impl->policy.current()->resource_set); !st)
      return fail(st.error());
  }
  if (auto st = impl->report.open_access_log(impl->config.access_log); !st) return fail(st.error());
  impl->credentials.load_initial();
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

Status Proxy::start() {
  Impl& d = *impl_;
  unsigned count = d.config.workers ? d.config.workers : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < count; ++i) {
    auto w = std::make_unique<Worker>(d.config, d.credentials, d.report, d.draining);
    w->guard.emplace(w->io->get_executor());
    d.connections.add_worker(w->connections);
    d.workers.push_back(std::move(w));
  }
  auto bind = [&](const std::string& address, uint16_t port, ListenerKind kind, size_t index) -> Status {
    auto acceptor = d.open_acceptor(address, port, to_string(kind));
    if (!acceptor) return fail(acceptor.error());
    std::error_code ec;
    const auto local = (*acceptor)->local_endpoint(ec);
    // Port 0 in the config: from now on the port is the one the kernel chose.
    if (kind == ListenerKind::Inbound) d.config.inbound[index].port = local.port();
    if (kind == ListenerKind::Outbound) d.config.outbound[index].listen_port = local.port();
    ListenerInfo info{kind, index, 0, net::endpoint_string(local)};
    d.listeners.push_back(info);
    std::printf("listening %s %s\n", info.name().c_str(), info.address.c_str());
    d.acceptors.push_back(std::move(*acceptor));
    return {};
  };
  for (size_t i = 0; i < d.config.inbound.size(); ++i) {
    if (auto st = bind(d.config.inbound[i].address, d.config.inbound[i].port, ListenerKind::Inbound, i); !st)
      return st;
  }
  // The gateway's listeners (gateway mode), as planned from the policy in force.
  if (auto st = d.reconcile_gateway_listeners(true); !st) return st;
  for (size_t i = 0; i < d.config.outbound.size(); ++i) {
    if (auto st = bind(d.config.outbound[i].listen_address, d.config.outbound[i].listen_port,
                       ListenerKind::Outbound, i);
        !st)
      return st;
  }
  if (d.config.admin_port) {
    if (auto st = bind(d.config.admin_address, *d.config.admin_port, ListenerKind::Admin, 0); !st) return st;
  }
  std::fflush(stdout);
  for (size_t i = 0; i < d.acceptors.size(); ++i) {
    d.spawn(d.main_io, d.accept_loop(*d.acceptors[i], d.listeners[i]));
  }
  d.signals.emplace(d.main_io, SIGTERM, SIGINT);
  d.signals->async_wait([&d](std::error_code ec, int) {
    if (!ec) d.begin_drain();
  });
  d.credentials.start_polling(d.main_io);
  d.policy.start_polling(d.main_io);
  if (d.gateway.enabled()) d.gateway.certificates().start_polling(d.main_io);
  for (auto& w : d.workers) {
    w->thread = std::thread([worker = w.get(), &registry = d.report.registry()] {
      // Metric series this worker used before are found without the registry's lock.
      auto series_cache = registry.bind_thread_cache();
      // Work deferred to the end of a loop turn (HTTP/2 writes, new streams) shares one post per
      // turn with the access log's lines, which go out in one write.
      TurnEnd turn_end(*worker->io);
      telemetry::AccessLog::TurnBatch log_batch([ex = worker->io->get_executor()] {
        TurnEnd::defer(ex, [] { telemetry::AccessLog::TurnBatch::flush(); });
      });
      worker->io->run();
    });
  }
  d.started = true;
  // A publish between create() and now (the agent's first push) may have planned other listeners;
  // from now on each publish posts its own pass.
  asio::post(d.main_io, [&d] { (void)d.reconcile_gateway_listeners(false); });
  return {};
}

void Proxy::request_drain() {
  asio::post(impl_->main_io, [d = impl_.get()] { d->begin_drain(); });
}

int Proxy::run() {
  impl_->main_io.run();
  for (auto& w : impl_->workers) {
    w->guard.reset();
    w->io->stop();
    if (w->thread.joinable()) w->thread.join();
  }
  return 0;
}

}  // namespace mg::proxy
