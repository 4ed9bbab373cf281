#include "proxy/connection_manager.h"

#include "proxy/enforcement_step.h"
#include "proxy/policy_state.h"
#include "proxy/report.h"

namespace mg::proxy {

ConnectionManager::ConnectionManager(const ProxyConfig& config, PolicyState& policy, Report& report)
    : config_(config), policy_(policy), report_(report) {}

ConnectionManager::Registration::Registration(ConnectionManager& manager, ConnectionList& list)
    : manager_(manager), list_(list) {
  list_.entries.push_back(&entry);
  it_ = std::prev(list_.entries.end());
}

ConnectionManager::Registration::~Registration() {
  list_.entries.erase(it_);
  manager_.active_.fetch_sub(1);
}

void ConnectionManager::rejudge_all(std::shared_ptr<const PublishedPolicy> state,
                                    std::shared_ptr<const RequestChain> request_chain,
                                    std::shared_ptr<const ConnectionChain> chain) {
  for (ConnectionList* list : workers_) {
    asio::post(*list->io, [this, list, state, request_chain, chain] {
      // A newer reload posted its own pass: judging by this one could close what it allows.
      if (policy_.current()->version != state->version) return;
      for (ConnEntry* c : list->entries) rejudge(*c, *state, *request_chain, *chain);
    });
  }
}

// One registered connection judged again under `state` and its chains; closed when they no
// longer allow it. On the connection's worker thread.
void ConnectionManager::rejudge(ConnEntry& c, const PublishedPolicy& state, const RequestChain& request_chain,
                                const ConnectionChain& chain) {
  if (!c.stream || (c.upgrade && c.upgrade->closed_by_policy)) return;  // closed already
  if (c.plaintext_http_port && (c.idle || c.upgraded || !c.streams.empty()) &&
      refuses_plaintext(state.inbound_modes[*c.plaintext_http_port].mode)) {
    // The STRICT rule on the connection path, as the listener applies it: waiting between
    // requests on a port that now requires mTLS (nothing is in flight), spliced after a WebSocket
    // upgrade or carrying HTTP/2 streams (no next request would reach the enforcement step):
    // closed now.
    const InboundPort& port = config_.inbound[*c.plaintext_http_port];
    report_.registry().counter("meshguard_connections_closed_total", {{"reason", "policy_reload"}}).inc();
    report_.connection_refused(
        net::remote_address(c.stream->socket()), port.port, Refusal::PlaintextOnStrictPort,
        std::string("mTLS is now required (STRICT): ") +
            (c.upgraded           ? "upgraded (WebSocket)"
             : !c.streams.empty() ? "HTTP/2"
                                  : "idle plaintext keep-alive") +
            " connection closed after policy version " + std::to_string(state.version));
    if (c.upgrade) c.upgrade->closed_by_policy = true;
    c.stream->close();
    if (c.upgrade && c.upgrade->upstream) c.upgrade->upstream->close();
    return;
  }
  for (LiveUpgrade* s : c.streams) {
    if (s->closed_by_policy) continue;
    Verdict verdict = rejudge_request(*s, state.inbound_modes[s->index].mode, request_chain);
    if (verdict.allow) continue;
    s->closed_by_policy = true;
    report_.closed_by_policy(Report::Live::Http2Stream, s->index, s->source, s->peer, state.version, verdict);
    if (s->downstream) s->downstream->close();
    if (s->upstream) s->upstream->close();
  }
  LiveTcp* live = c.upgrade ? c.upgrade : c.tcp;
  if (!live || live->closed_by_policy) return;
  const InboundPort& port = config_.inbound[live->index];
  const MtlsMode mode = state.inbound_modes[live->index].mode;
  Verdict verdict;
  if (c.upgrade) {
    verdict = rejudge_request(*c.upgrade, mode, request_chain);
  } else {
    ConnectionContext ctx{config_.workload, mode, port.port, live->source, live->peer, {}, port.app_port};
    ctx.sni = live->sni;
    verdict = chain.run(ctx);
  }
  if (verdict.allow) return;
  live->closed_by_policy = true;
  report_.closed_by_policy(c.upgrade ? Report::Live::WebSocket : Report::Live::Tcp, live->index, live->source,
                           live->peer, state.version, verdict);
  c.stream->close();
  if (live->upstream) live->upstream->close();
}

Verdict ConnectionManager::rejudge_request(const LiveUpgrade& live, MtlsMode mode, const RequestChain& request_chain) {
  // The request judged again, as if it arrived on this connection now — but with its JWT checked
  // as of its first judgement (a token that expired since does not end it; one whose keys are
  // gone, or not fetched yet, does: fail closed).
  const InboundPort& port = config_.inbound[live.index];
  http::Request request = live.request;  // steps may edit what they judge
  RequestContext ctx{request, config_.workload, mode, live.listen_port, live.source, live.peer, {}, {}, port.app_port};
  ctx.judged_at = live.judged_at;
  ctx.custom_allowed = true;  // a CUSTOM provider allowed it; it is not asked again
  ctx.gateway_listener = port.gateway.has_value();
  return request_chain.run(ctx);
}

void ConnectionManager::rejudge_if_chains_changed(ConnEntry& c, const LiveTcp& live) {
  auto now = policy_.chains().current();
  if (live.judged_by == now->generation) return;
  rejudge(c, *policy_.current(), *now->request, *now->connection);
}

void ConnectionManager::close_idle(ConnectionList& list) {
  for (ConnEntry* c : list.entries) {
    if (c->idle && c->stream) {
      c->stream->close();
    } else if (c->drain) {
      c->drain();
    }
  }
}

void ConnectionManager::close_listener(ConnectionList& list, size_t inbound_index) {
  for (ConnEntry* c : list.entries) {
    if (c->inbound != inbound_index) continue;
    c->listener_closed = true;
    if (c->idle && c->stream) {
      c->stream->close();
    } else if (c->drain) {
      c->drain();
    }
  }
}

LiveRequest::LiveRequest(ConnectionManager& manager, const HttpSide& side, JudgedUpgrade& as_received,
                         net::Stream& down, Exchange& ex)
    : manager_(manager),
      entry_(side.entry),
      ex_(ex),
      live_{{side.inbound_index, side.source, side.peer, nullptr, false, as_received.generation},
            side.listen_port,
            std::move(as_received.request),
            as_received.judged_at,
            &down} {}

LiveRequest::~LiveRequest() {
  if (registered_) entry_->streams.erase(*registered_);
  if (live_.closed_by_policy) ex_.details = ResponseDetail::UpgradeClosedByPolicyReload;
}

void LiveRequest::relay_to(net::Stream* upstream) {
  live_.upstream = upstream;
  if (registered_ || entry_ == nullptr) return;
  registered_ = entry_->streams.insert(entry_->streams.end(), &live_);
  manager_.rejudge_if_chains_changed(*entry_, live_);
}

}  // namespace mg::proxy
