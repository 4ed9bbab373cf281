// proxy/enforcement.h — the data plane's enforcement, one call per inbound request or TCP
// connection: the chains in force run the enforcement step (proxy/enforcement_step.h: the STRICT
// rule, then policy::decide), and what it decided is acted on, explained for the access log and
// counted in meshguard_authz_decisions_total. A request the step refuses as plaintext on a port a
// reload made STRICT is logged as a refused connection, never answered nor forwarded; the caller
// closes. A CUSTOM policy's extension provider is asked here (ask_provider, awaited: the worker
// goes on serving other connections), its outcome counted and explained.
// Owns the ext_authz clients (proxy/ext_authz.h); reads the PolicyState.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "http/message.h"
#include "proxy/chain.h"
#include "proxy/config.h"
#include "proxy/exchange.h"
#include "proxy/ext_authz.h"
#include "tls/tls.h"

namespace mg::proxy {

class PolicyState;
class Report;
struct SeriesCache;

struct Worker;

struct Judgement {
  Verdict verdict;          // the chain's answer: allow, or the deny with its status and body
  Verdict decision;         // the explained decision (the enforcement step's, or the deny itself)
  uint64_t generation = 0;  // the ChainSet generation that judged
  // Set when a CUSTOM policy's provider decides next: the caller awaits ask_provider (until
  // then `verdict` denies; the decision is not counted yet).
  std::shared_ptr<PendingCustom> pending;
};

class Enforcement {
 public:
  Enforcement(const ProxyConfig& config, const PolicyState& policy, Report& report);

  // An inbound TCP connection on config.inbound[index], by the connection chain.
  // `sni`: a TLS passthrough connection's server name (connection.sni).
  Judgement judge_connection(size_t index, const std::string& source,
                             const std::optional<tls::PeerIdentity>& peer, std::string_view sni = {});

  // An inbound HTTP request (`side.inbound` set), by the request chain, into `out`; the decision
  // is counted in the worker's `series`. `judged_at`: the Unix time its JWT is checked as of (a
  // WebSocket upgrade, judged again later as of then). False when the step refused the
  // connection (plaintext on a STRICT port): logged, not counted nor forwarded; the caller closes.
  bool judge_request(http::Request& request, const HttpSide& side, std::optional<int64_t> judged_at,
                     SeriesCache& series, Judgement& out);

  // After judge_request left `out.pending`: asks the provider (on the worker's executor, with
  // its pooled connections), applies its answer — deny with its status, body and headers;
  // allow with its header mutations, then DENY and ALLOW; an error per failOpen /
  // statusOnError — and counts and explains the decision in `out`. `own_principal`: this
  // workload's SPIFFE ID (the check's destination principal); `body`: what includeRequestBodyInCheck
  // buffered (not present: none).
  net::awaitable<void> ask_provider(http::Request& request, const HttpSide& side, std::string_view own_principal,
                                    const extauthz::CheckBody& body, Worker& worker, Judgement& out);

  // Before the workers' loops go (their gRPC completions are posted there).
  void shutdown() { ext_authz_.shutdown(); }

 private:
  const ProxyConfig& config_;
  const PolicyState& policy_;
  Report& report_;
  ExtAuthz ext_authz_;
};

}  // namespace mg::proxy
