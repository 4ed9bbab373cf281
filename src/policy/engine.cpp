#include "policy/engine.h"
#include "policy/mesh.h"

#include "rego/engine.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <set>

namespace mg::policy {

using detail::Clause;
using detail::CompiledPolicy;
using detail::CompiledRule;
using detail::Field;
using detail::Predicate;
using detail::RuleIndex;
using detail::RuleRef;

namespace {

constexpr int kActionSlot[] = {2, 1, 3, 0};  // Action::Allow, Deny, Audit, Custom → index_ slot
constexpr int kCustom = 0, kDeny = 1, kAllow = 2, kAudit = 3;

int slot(Action a) { return kActionSlot[static_cast<int>(a)]; }

// ---------------------------------------------------------------- compile

struct Compiler {
  const MeshConfig& mesh;

  std::vector<StringMatch> strings(const std::vector<std::string>& values, bool ignore_case = false) const {
    std::vector<StringMatch> out;
    for (const auto& v : values) {
      auto m = parse_string_match(v, ignore_case);
      if (m) out.push_back(std::move(*m));
    }
    return out;
  }

  // "cluster.local", the trust domain and its aliases in a principal: policy::principals_for_trust_domains.
  std::vector<StringMatch> principals(const std::vector<std::string>& values) const {
    return strings(principals_for_trust_domains(values, mesh.trust_domain, mesh.trust_domain_aliases));
  }

  static std::vector<Cidr> cidrs(const std::vector<std::string>& values) {
    std::vector<Cidr> out;
    for (const auto& v : values) {
      if (auto c = parse_cidr(v)) out.push_back(*c);
    }
    return out;
  }

  static std::vector<uint32_t> ports(const std::vector<std::string>& values) {
    std::vector<uint32_t> out;
    for (const auto& v : values) {
      if (auto p = parse_port(v)) out.push_back(*p);
    }
    return out;
  }

  static void add(Clause& c, Field f, bool negate, bool http_only, std::string origin, Predicate&& p) {
    p.field = f;
    p.negate = negate;
    p.http_only = http_only;
    p.origin = std::move(origin);
    c.predicates.push_back(std::move(p));
  }

  void add_strings(Clause& c, Field f, bool http_only, const std::vector<std::string>& pos,
                   const std::vector<std::string>& neg, const std::string& origin, const char* name,
                   const char* not_name, bool ignore_case = false) const {
    const bool principal = f == Field::PeerPrincipal;
    if (!pos.empty()) {
      Predicate p;
      p.strings = principal ? principals(pos) : strings(pos, ignore_case);
      add(c, f, false, http_only, origin + "." + name, std::move(p));
    }
    if (!neg.empty()) {
      Predicate p;
      p.strings = principal ? principals(neg) : strings(neg, ignore_case);
      add(c, f, true, http_only, origin + "." + not_name, std::move(p));
    }
  }

  void add_cidrs(Clause& c, Field f, const std::vector<std::string>& pos, const std::vector<std::string>& neg,
                 const std::string& origin, const char* name, const char* not_name) const {
    if (!pos.empty()) {
      Predicate p;
      p.cidrs = cidrs(pos);
      add(c, f, false, false, origin + "." + name, std::move(p));
    }
    if (!neg.empty()) {
      Predicate p;
      p.cidrs = cidrs(neg);
      add(c, f, true, false, origin + "." + not_name, std::move(p));
    }
  }

  Clause source(const Source& s, const std::string& origin) const {
    Clause c;
    add_strings(c, Field::PeerPrincipal, false, s.principals, s.not_principals, origin, "principals", "notPrincipals");
    add_strings(c, Field::RequestPrincipal, true, s.request_principals, s.not_request_principals, origin,
                "requestPrincipals", "notRequestPrincipals");
    add_strings(c, Field::PeerNamespace, false, s.namespaces, s.not_namespaces, origin, "namespaces", "notNamespaces");
    add_cidrs(c, Field::SourceIp, s.ip_blocks, s.not_ip_blocks, origin, "ipBlocks", "notIpBlocks");
    add_cidrs(c, Field::RemoteIp, s.remote_ip_blocks, s.not_remote_ip_blocks, origin, "remoteIpBlocks",
              "notRemoteIpBlocks");
    return c;
  }

  Clause operation(const Operation& o, const std::string& origin) const {
    Clause c;
    add_strings(c, Field::Host, true, o.hosts, o.not_hosts, origin, "hosts", "notHosts", /*ignore_case=*/true);
    if (!o.ports.empty()) {
      Predicate p;
      p.ports = ports(o.ports);
      add(c, Field::DestinationPort, false, false, origin + ".ports", std::move(p));
    }
    if (!o.not_ports.empty()) {
      Predicate p;
      p.ports = ports(o.not_ports);
      add(c, Field::DestinationPort, true, false, origin + ".notPorts", std::move(p));
    }
    add_strings(c, Field::Method, true, o.methods, o.not_methods, origin, "methods", "notMethods");
    add_strings(c, Field::Path, true, o.paths, o.not_paths, origin, "paths", "notPaths");
    return c;
  }

  void condition(Clause& c, const Condition& cond, const std::string& origin) const {
    auto key = parse_condition_key(cond.key);
    if (!key) return;  // unreachable: the parser validated it
    using K = ConditionKey::Kind;
    Field f = Field::Header;
    switch (key->kind) {
      case K::RequestHeader: f = Field::Header; break;
      case K::SourceIp: f = Field::SourceIp; break;
      case K::RemoteIp: f = Field::RemoteIp; break;
      case K::SourceNamespace: f = Field::PeerNamespace; break;
      case K::SourcePrincipal: f = Field::PeerPrincipal; break;
      case K::AuthPrincipal: f = Field::AuthPrincipal; break;
      case K::AuthAudiences: f = Field::AuthAudiences; break;
      case K::AuthPresenter: f = Field::AuthPresenter; break;
      case K::AuthClaim: f = Field::AuthClaim; break;
      case K::DestinationIp: f = Field::DestinationIp; break;
      case K::DestinationPort: f = Field::DestinationPort; break;
      case K::ConnectionSni: f = Field::Sni; break;
    }
    for (int negate = 0; negate < 2; ++negate) {
      const auto& values = negate ? cond.not_values : cond.values;
      if (values.empty()) continue;
      Predicate p;
      if (key->is_ip()) p.cidrs = cidrs(values);
      else if (f == Field::DestinationPort) p.ports = ports(values);
      else if (f == Field::PeerPrincipal) p.strings = principals(values);
      else p.strings = strings(values);
      p.key = key->args;
      add(c, f, negate != 0, key->http_only(), origin + "[" + cond.key + "]." + (negate ? "notValues" : "values"),
          std::move(p));
    }
  }

  CompiledRule rule(const Rule& r, int index) const {
    CompiledRule out;
    out.index = index;
    const std::string base = "rules[" + std::to_string(index) + "]";
    for (size_t i = 0; i < r.from.size(); ++i) {
      out.from.push_back(source(r.from[i], base + ".from[" + std::to_string(i) + "].source"));
    }
    for (size_t i = 0; i < r.to.size(); ++i) {
      out.to.push_back(operation(r.to[i], base + ".to[" + std::to_string(i) + "].operation"));
    }
    for (const auto& cond : r.when) condition(out.when, cond, base + ".when");
    return out;
  }
};

bool uses_http_fields(const CompiledRule& r) {
  auto any = [](const Clause& c) {
    return std::any_of(c.predicates.begin(), c.predicates.end(), [](const Predicate& p) { return p.http_only; });
  };
  return std::any_of(r.from.begin(), r.from.end(), any) || std::any_of(r.to.begin(), r.to.end(), any) || any(r.when);
}

// The TCP form of a rule: DENY drops HTTP-only fields (matching more); others match nothing.
CompiledRule tcp_variant(const CompiledRule& r, Action action) {
  if (!uses_http_fields(r)) return r;
  CompiledRule out;
  out.index = r.index;
  if (action != Action::Deny) {
    out.never = true;
    return out;
  }
  auto strip = [](const Clause& c) {
    Clause kept;
    for (const auto& p : c.predicates) {
      if (!p.http_only) kept.predicates.push_back(p);
    }
    return kept;
  };
  for (const auto& c : r.from) out.from.push_back(strip(c));
  for (const auto& c : r.to) out.to.push_back(strip(c));
  out.when = strip(r.when);
  return out;
}

// Path keys of a rule whose every operation names only exact / prefix paths; otherwise the rule
// is not path-indexable (it could match any path) and `indexable` is false.
struct PathKeys {
  bool indexable = false;
  std::vector<std::string> exact, prefixes;
};

PathKeys path_keys(const CompiledRule& r) {
  PathKeys keys;
  if (r.to.empty()) return keys;
  for (const auto& clause : r.to) {
    const Predicate* paths = nullptr;
    for (const auto& p : clause.predicates) {
      if (p.field == Field::Path && !p.negate) paths = &p;
    }
    if (!paths) return {};
    for (const auto& m : paths->strings) {
      if (m.kind == MatchKind::Exact) keys.exact.push_back(m.value);
      else if (m.kind == MatchKind::Prefix) keys.prefixes.push_back(m.value);
      else return {};
    }
  }
  keys.indexable = true;
  return keys;
}

// At most this many distinct prefix lengths are indexed, so a lookup does a bounded number of
// binary searches and merges a bounded number of buckets (without allocating).
constexpr size_t kMaxPrefixLengths = 24;

void build_index(RuleIndex& index, const std::vector<CompiledPolicy>& policies, Action action, bool http) {
  struct Entry {
    uint32_t pos;
    PathKeys keys;
  };
  std::vector<Entry> entries;
  std::map<size_t, size_t> length_use;  // prefix length → rules using it
  for (uint32_t pi = 0; pi < policies.size(); ++pi) {
    const auto& p = policies[pi];
    if (p.dry_run || p.action != action) continue;
    index.any_policy = true;
    for (const auto& r : http ? p.http_rules : p.tcp_rules) {
      if (r.never) continue;
      const auto pos = static_cast<uint32_t>(index.refs.size());
      index.refs.push_back({pi, &r});
      entries.push_back({pos, http ? path_keys(r) : PathKeys{}});
      for (const auto& prefix : entries.back().keys.prefixes) ++length_use[prefix.size()];
    }
  }
  // Keep the most used prefix lengths; rules with other prefix lengths stay unindexed.
  std::vector<std::pair<size_t, size_t>> by_use(length_use.begin(), length_use.end());
  std::sort(by_use.begin(), by_use.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (by_use.size() > kMaxPrefixLengths) by_use.resize(kMaxPrefixLengths);
  std::set<size_t> kept_lengths;
  for (const auto& [len, uses] : by_use) kept_lengths.insert(len);

  std::map<std::string, std::vector<uint32_t>, std::less<>> exact, prefix;
  for (auto& e : entries) {
    bool indexable = e.keys.indexable;
    for (const auto& p : e.keys.prefixes) indexable = indexable && kept_lengths.count(p.size()) > 0;
    if (!indexable) {
      index.unindexed.push_back(e.pos);
      continue;
    }
    for (auto& k : e.keys.exact) exact[k].push_back(e.pos);
    for (auto& k : e.keys.prefixes) prefix[k].push_back(e.pos);
  }
  auto finish = [](std::map<std::string, std::vector<uint32_t>, std::less<>>& from, auto& into) {
    for (auto& [k, v] : from) {
      v.erase(std::unique(v.begin(), v.end()), v.end());  // positions were pushed ascending
      into.emplace_back(k, std::move(v));
    }
  };
  finish(exact, index.by_path);
  finish(prefix, index.by_prefix);
  std::set<uint32_t> lengths;
  for (const auto& [k, v] : index.by_prefix) lengths.insert(static_cast<uint32_t>(k.size()));
  index.prefix_lengths.assign(lengths.begin(), lengths.end());
}

// ---------------------------------------------------------------- evaluate

bool any_string(const Predicate& p, std::string_view v) {
  for (const auto& m : p.strings) {
    if (m.matches(v)) return true;
  }
  return false;
}

// A federated peer's principal matches only patterns written with its trust domain (policy/mesh.h
// names_trust_domain): `*`, `*/ns/x/sa/y` and the like never do.
bool foreign_principal_named(const Predicate& p, const AuthzAttributes& a) {
  for (const auto& m : p.strings) {
    if (m.kind == MatchKind::Presence) continue;
    const bool named = m.kind == MatchKind::Suffix ? names_trust_domain("*" + m.value, a.foreign_trust_domain)
                                                   : names_trust_domain(m.value, a.foreign_trust_domain);
    if (named && m.matches(a.peer_principal)) return true;
  }
  return false;
}

bool any_cidr(const Predicate& p, const std::optional<IpAddress>& ip) {
  if (!ip) return false;
  for (const auto& c : p.cidrs) {
    if (c.contains(*ip)) return true;
  }
  return false;
}

const jwt::RequestAuth* authenticated(const AuthzAttributes& a) {
  return a.auth && a.auth->outcome == jwt::RequestAuth::Outcome::Authenticated ? a.auth : nullptr;
}

// requestPrincipals "iss/sub": exact values split on the last '/' and compare issuer and
// subject; prefix / suffix / presence compare the whole "iss/sub" string.
bool request_principal_matches(const Predicate& p, const jwt::RequestAuth& auth) {
  for (const auto& m : p.strings) {
    if (m.kind == MatchKind::Exact) {
      const auto cut = m.value.rfind('/');
      if (cut == std::string::npos) continue;
      if (std::string_view(m.value).substr(0, cut) == auth.issuer &&
          std::string_view(m.value).substr(cut + 1) == auth.subject) {
        return true;
      }
    } else if (m.matches(auth.principal)) {
      return true;
    }
  }
  return false;
}

bool claim_matches(const Predicate& p, const jwt::RequestAuth& auth) {
  const nlohmann::json* node = &auth.claims;
  for (const auto& segment : p.key) {
    if (!node->is_object()) return false;
    auto it = node->find(segment);
    if (it == node->end()) return false;
    node = &*it;
  }
  if (node->is_string()) return any_string(p, node->get_ref<const std::string&>());
  if (node->is_array()) {
    for (const auto& item : *node) {
      if (item.is_string() && any_string(p, item.get_ref<const std::string&>())) return true;
    }
  }
  return false;
}

// A header's value as conditions see it: every field of that name (case-insensitive), joined
// with "," in order when it is repeated (Istio's normalization, as Envoy joins them) — the first
// alone would let `X-Role: user` + `X-Role: admin` slip past a DENY on the value the app may read.
// `joined` holds the value when it had to be built.
std::string_view header_value(const AuthzAttributes& a, std::string_view name, bool& found,
                              std::string& joined) {
  const std::string* first = nullptr;
  bool repeated = false;
  for (const auto& [k, v] : a.headers) {
    if (!iequals(k, name)) continue;
    if (!first) {
      first = &v;
      continue;
    }
    if (!repeated) joined = *first;
    repeated = true;
    joined += ',';
    joined += v;
  }
  if (first) {
    found = true;
    return repeated ? std::string_view(joined) : std::string_view(*first);
  }
  // HTTP/2 pseudo-headers and Host map to the request line.
  found = true;
  if (iequals(name, ":authority") || iequals(name, "host")) return a.host;
  if (iequals(name, ":method")) return a.method;
  if (iequals(name, ":path")) return a.path;
  found = false;
  return {};
}

bool evaluate(const Predicate& p, const AuthzAttributes& a) {
  bool hit = false;
  switch (p.field) {
    case Field::PeerPrincipal:
      if (!a.foreign_trust_domain.empty()) {
        hit = foreign_principal_named(p, a);
      } else {
        hit = !a.peer_principal.empty() && any_string(p, a.peer_principal);
      }
      break;
    case Field::PeerNamespace:
      // A namespace names one of this mesh's namespaces, never a federated mesh's.
      hit = a.foreign_trust_domain.empty() && !a.peer_namespace.empty() && any_string(p, a.peer_namespace);
      break;
    case Field::RequestPrincipal:
      if (const auto* auth = authenticated(a)) hit = request_principal_matches(p, *auth);
      break;
    case Field::SourceIp: hit = any_cidr(p, a.source_ip); break;
    case Field::RemoteIp: hit = any_cidr(p, a.remote_ip); break;
    case Field::DestinationIp: hit = any_cidr(p, a.destination_ip); break;
    case Field::DestinationPort:
      hit = std::find(p.ports.begin(), p.ports.end(), a.destination_port) != p.ports.end();
      break;
    case Field::Host: hit = a.http && !a.host.empty() && any_string(p, a.host); break;
    case Field::Method: hit = a.http && any_string(p, a.method); break;
    case Field::Path: hit = a.http && any_string(p, a.path); break;
    case Field::Header: {
      bool found = false;
      std::string joined;
      const auto value = a.http ? header_value(a, p.key.front(), found, joined) : std::string_view();
      hit = found && any_string(p, value);
      break;
    }
    case Field::AuthPrincipal:
      if (const auto* auth = authenticated(a)) hit = any_string(p, auth->principal);
      break;
    case Field::AuthAudiences:
      if (const auto* auth = authenticated(a)) {
        for (const auto& aud : auth->audiences) {
          if (any_string(p, aud)) {
            hit = true;
            break;
          }
        }
      }
      break;
    case Field::AuthPresenter:
      if (const auto* auth = authenticated(a)) hit = any_string(p, auth->presenter);
      break;
    case Field::AuthClaim:
      if (const auto* auth = authenticated(a)) hit = claim_matches(p, *auth);
      break;
    case Field::Sni: hit = !a.sni.empty() && any_string(p, a.sni); break;
  }
  return p.negate ? !hit : hit;
}

// Returns the first predicate of `c` that fails, or nullptr when the clause holds.
const Predicate* first_failure(const Clause& c, const AuthzAttributes& a) {
  for (const auto& p : c.predicates) {
    if (!evaluate(p, a)) return &p;
  }
  return nullptr;
}

bool any_clause(const std::vector<Clause>& clauses, const AuthzAttributes& a) {
  if (clauses.empty()) return true;
  for (const auto& c : clauses) {
    if (!first_failure(c, a)) return true;
  }
  return false;
}

bool matches(const CompiledRule& r, const AuthzAttributes& a) {
  return !r.never && any_clause(r.from, a) && any_clause(r.to, a) && !first_failure(r.when, a);
}

bool is_request_authentication(Field f) {
  return f == Field::RequestPrincipal || f == Field::AuthPrincipal || f == Field::AuthAudiences ||
         f == Field::AuthPresenter || f == Field::AuthClaim;
}

// Whether `c` would hold for this request if it carried a token that satisfies every request
// authentication condition (requestPrincipals, request.auth.*); the other conditions as they are.
bool holds_given_a_credential(const Clause& c, const AuthzAttributes& a) {
  for (const auto& p : c.predicates) {
    if (!is_request_authentication(p.field) && !evaluate(p, a)) return false;
  }
  return true;
}

bool any_clause_given_a_credential(const std::vector<Clause>& clauses, const AuthzAttributes& a) {
  if (clauses.empty()) return true;
  for (const auto& c : clauses) {
    if (holds_given_a_credential(c, a)) return true;
  }
  return false;
}

// A request without a verified token that no enforced ALLOW rule matched: would one match with
// a token? Then what it lacks is a credential, not a permission.
bool a_credential_would_allow(const AuthzSnapshot& s, const RuleIndex& allow, const AuthzAttributes& a) {
  for (const auto& ref : allow.refs) {
    const auto& r = *ref.rule;
    if (s.policies()[ref.policy].dry_run || r.never) continue;
    if (any_clause_given_a_credential(r.from, a) && any_clause_given_a_credential(r.to, a) &&
        holds_given_a_credential(r.when, a))
      return true;
  }
  return false;
}

using Bucket = std::vector<std::pair<std::string, std::vector<uint32_t>>>;

const std::vector<uint32_t>* find_bucket(const Bucket& buckets, std::string_view key) {
  auto it = std::lower_bound(buckets.begin(), buckets.end(), key,
                             [](const auto& entry, std::string_view k) { return std::string_view(entry.first) < k; });
  if (it == buckets.end() || it->first != key) return nullptr;
  return &it->second;
}

// The first matching rule in (policy, rule) order. Candidates are the unindexed rules plus the
// buckets of the request path (exact, and each indexed prefix length), merged in order.
const RuleRef* first_match(const RuleIndex& index, const AuthzAttributes& a) {
  struct Cursor {
    const uint32_t* it;
    const uint32_t* end;
  };
  Cursor cursors[kMaxPrefixLengths + 2];
  size_t n = 0;
  auto add = [&](const std::vector<uint32_t>* v) {
    if (v && !v->empty()) cursors[n++] = {v->data(), v->data() + v->size()};
  };
  add(&index.unindexed);
  if (a.http) {
    add(find_bucket(index.by_path, a.path));
    for (uint32_t len : index.prefix_lengths) {
      if (len > a.path.size()) break;
      add(find_bucket(index.by_prefix, a.path.substr(0, len)));
    }
  }
  uint32_t last = UINT32_MAX;
  while (true) {
    size_t best = n;
    for (size_t i = 0; i < n; ++i) {
      if (cursors[i].it != cursors[i].end && (best == n || *cursors[i].it < *cursors[best].it)) best = i;
    }
    if (best == n) return nullptr;
    const uint32_t pos = *cursors[best].it++;
    if (pos == last) continue;  // the same rule reached through two buckets
    last = pos;
    const auto& ref = index.refs[pos];
    if (matches(*ref.rule, a)) return &ref;
  }
}

}  // namespace

Result<std::shared_ptr<const AuthzSnapshot>> compile_snapshot(const ResourceSet& resources, const WorkloadRef& workload,
                                                              const MeshConfig& mesh) {
  auto snap = std::make_shared<AuthzSnapshot>();
  snap->mesh_ = mesh;
  snap->workload_ = workload;
  snap->peer_authn_ = resolve_peer_authentication(resources, workload, mesh);
  for (const auto* ra : applicable_request_authentications(resources, workload, mesh)) {
    snap->request_authn_names_.push_back(ra->meta.full_name());
    for (const auto& rule : ra->jwt_rules) snap->jwt_rules_.push_back(rule);
  }
  Compiler compiler{mesh};
  for (const auto* p : applicable_authorization_policies(resources, workload, mesh)) {
    CompiledPolicy cp;
    cp.name = p->meta.full_name();
    cp.action = p->action;
    cp.dry_run = p->meta.dry_run;
    cp.provider = p->provider;
    if (p->action == Action::Custom && !find_extension_provider(mesh, p->provider)) {
      // Apply refuses this; a Mesh changed later can still leave one behind: it fails closed.
      cp.custom_unavailable = "its provider \"" + p->provider + "\" is not defined in the Mesh's extensionProviders";
    }
    cp.rule_count = p->rules.size();
    for (size_t i = 0; i < p->rules.size(); ++i) {
      cp.http_rules.push_back(compiler.rule(p->rules[i], static_cast<int>(i)));
      cp.tcp_rules.push_back(tcp_variant(cp.http_rules.back(), p->action));
    }
    snap->policies_.push_back(std::move(cp));
  }
  // Rule pointers below point into policies_, which is not modified after this point.
  for (Action action : {Action::Custom, Action::Deny, Action::Allow, Action::Audit}) {
    for (bool http : {true, false}) {
      build_index(snap->index_[slot(action)][http ? 0 : 1], snap->policies_, action, http);
    }
  }
  for (uint32_t i = 0; i < snap->policies_.size(); ++i) {
    if (snap->policies_[i].dry_run) snap->dry_run_policies_.push_back(i);
  }
  // The plans were compiled when the documents were parsed: a snapshot shares them.
  for (const auto* p : applicable_opa_policies(resources, workload, mesh)) {
    if (!p->plan)
      return fail("policy.opa_not_compiled", "OPAPolicy " + p->meta.full_name() + " has no compiled plan");
    snap->opa_.push_back(
        {p->meta.full_name(), p->meta.dry_run, p->allow_on_error, p->decision, p->decision_path, p->plan});
    snap->opa_input_use_ = std::make_shared<const rego::InputUse>(
        snap->opa_input_use_ ? rego::merge_input_use(*snap->opa_input_use_, p->plan->input_use)
                             : p->plan->input_use);
  }
  return std::shared_ptr<const AuthzSnapshot>(std::move(snap));
}

namespace {

// Whether a rule that matched a federated peer names it: one of its `from` entries that holds has
// a (positive) principals field, which for such a peer only holds when it names its trust domain.
bool names_foreign_peer(const CompiledRule& r, const AuthzAttributes& a) {
  for (const auto& c : r.from) {
    if (first_failure(c, a)) continue;
    for (const auto& p : c.predicates) {
      if (p.field == Field::PeerPrincipal && !p.negate) return true;
    }
  }
  return false;
}

}  // namespace

Decision authorize(const AuthzSnapshot& s, const AuthzAttributes& attributes, bool custom_allowed) {
  // A peer of another trust domain than the mesh's (and its aliases) reached us only through
  // federation: it is matched by principals that name its trust domain, and allowed only by them.
  AuthzAttributes foreign;
  const AuthzAttributes* in = &attributes;
  if (!attributes.peer_principal.empty() &&
      is_foreign_principal(attributes.peer_principal, s.mesh_.trust_domain, s.mesh_.trust_domain_aliases)) {
    foreign = attributes;
    foreign.foreign_trust_domain = attributes.peer_principal.substr(0, attributes.peer_principal.find('/'));
    in = &foreign;
  }
  const AuthzAttributes& a = *in;
  const int proto = a.http ? 0 : 1;
  const int deny_status = a.http ? 403 : 0;
  Decision d;
  for (uint32_t pi : s.dry_run_policies_) {
    const auto& p = s.policies_[pi];
    DryRunResult r{p.name, p.action, false, -1};
    for (const auto& rule : a.http ? p.http_rules : p.tcp_rules) {
      if (matches(rule, a)) {
        r.matched = true;
        r.rule = rule.index;
        break;
      }
    }
    d.dry_run.push_back(r);
  }
  if (const auto* m = first_match(s.index_[kAudit][proto], a)) {
    d.audit = true;
    d.audit_policy = s.policies_[m->policy].name;
    d.audit_rule = m->rule->index;
  }
  auto deny = [&](const RuleRef& m, ReasonCode code) {
    d.allow = false;
    d.status = deny_status;
    d.policy = s.policies_[m.policy].name;
    d.rule = m.rule->index;
    d.reason = code;
    return std::move(d);
  };
  if (const auto* m = custom_allowed ? nullptr : first_match(s.index_[kCustom][proto], a)) {
    const auto& p = s.policies_[m->policy];
    if (!p.custom_unavailable.empty()) {
      d.detail = p.custom_unavailable;
      return deny(*m, ReasonCode::DeniedCustomUnavailable);
    }
    if (!a.http) {
      // Istio's CUSTOM on TCP needs Envoy's network ext_authz filter, which meshguard does not have.
      d.detail = "ext_authz is not supported for TCP connections (provider \"" + p.provider + "\")";
      return deny(*m, ReasonCode::DeniedCustomUnavailable);
    }
    d.provider = find_extension_provider(s.mesh_, p.provider);
    return deny(*m, ReasonCode::CustomProviderCheck);
  }
  if (const auto* m = first_match(s.index_[kDeny][proto], a)) return deny(*m, ReasonCode::DeniedByPolicy);
  const auto& allow = s.index_[kAllow][proto];
  if (!a.foreign_trust_domain.empty()) {
    for (const auto& ref : allow.refs) {
      if (!s.policies_[ref.policy].dry_run && matches(*ref.rule, a) && names_foreign_peer(*ref.rule, a)) {
        d.allow = true;
        d.status = 200;
        d.policy = s.policies_[ref.policy].name;
        d.rule = ref.rule->index;
        d.reason = ReasonCode::AllowedByPolicy;
        return d;
      }
    }
    d.allow = false;
    d.status = deny_status;
    d.reason = ReasonCode::DeniedForeignNotNamed;
    d.detail = std::string(a.foreign_trust_domain);
    return d;
  }
  if (!allow.any_policy) {
    d.allow = true;
    d.status = 200;
    d.reason = ReasonCode::AllowedNoAuthorizationPolicy;
    return d;
  }
  if (const auto* m = first_match(allow, a)) {
    d.allow = true;
    d.status = 200;
    d.policy = s.policies_[m->policy].name;
    d.rule = m->rule->index;
    d.reason = ReasonCode::AllowedByPolicy;
    return d;
  }
  d.allow = false;
  d.status = deny_status;
  d.reason = ReasonCode::DeniedNoAllowMatch;
  d.lacks_credential = a.http && !authenticated(a) && a_credential_would_allow(s, allow, a);
  return d;
}

namespace {

std::string clause_list_failure(const std::vector<Clause>& clauses, const AuthzAttributes& a, const char* what) {
  if (clauses.empty()) return {};
  std::string first;
  for (const auto& c : clauses) {
    const auto* f = first_failure(c, a);
    if (!f) return {};
    if (first.empty()) first = f->origin;
  }
  if (clauses.size() == 1) return first + " did not match";
  return std::string("no ") + what + " entry matched (first: " + first + " did not match)";
}

}  // namespace

std::vector<PolicyExplanation> explain(const AuthzSnapshot& s, const AuthzAttributes& a) {
  std::vector<PolicyExplanation> out;
  for (const auto& p : s.policies()) {
    PolicyExplanation e;
    e.policy = p.name;
    e.action = p.action;
    e.dry_run = p.dry_run;
    if (p.rule_count == 0) e.note = "no rules: matches nothing";
    for (const auto& r : a.http ? p.http_rules : p.tcp_rules) {
      RuleExplanation re;
      re.index = r.index;
      if (r.never) {
        re.why = "uses HTTP-only fields: matches nothing on a TCP connection";
      } else if (auto why = clause_list_failure(r.from, a, "from"); !why.empty()) {
        re.why = why;
      } else if (auto why2 = clause_list_failure(r.to, a, "to"); !why2.empty()) {
        re.why = why2;
      } else if (const auto* f = first_failure(r.when, a)) {
        re.why = f->origin + " did not match";
      } else {
        re.matched = true;
        re.why = "matched";
      }
      if (!a.http && r.index < static_cast<int>(p.http_rules.size()) && p.action == Action::Deny &&
          uses_http_fields(p.http_rules[r.index])) {
        re.why += " (TCP: HTTP-only fields of this DENY rule were ignored)";
      }
      e.rules.push_back(std::move(re));
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace mg::policy
