// control/live_endpoints.cpp — see live_endpoints.h.
#include "control/live_endpoints.h"

#include <map>
#include <nlohmann/json.hpp>

#include "identity/spiffe_id.h"

namespace mg::control {

std::string encode_live_entry(const Registration& r) {
  auto j = nlohmann::json::parse(registration_record(r));
  j["spiffeId"] = r.spiffe_id;
  j["healthy"] = r.connected;
  return j.dump();
}

Result<Registration> decode_live_entry(const LiveKey& key, std::string_view value) {
  const auto bad = [&](const std::string& why) {
    return fail("registry.bad_live_entry",
                "live entry " + key.replica + "/" + key.ns + "/" + key.name + ": " + why);
  };
  auto r = parse_registration_record(value);
  if (!r) return bad(r.error().message);
  if (r->ns != key.ns || r->name != key.name) return bad("its record names " + r->ns + "/" + r->name);
  const auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  const auto id_it = j.find("spiffeId");
  const auto healthy = j.find("healthy");
  if (id_it == j.end() || !id_it->is_string()) return bad("no spiffeId");
  if (healthy == j.end() || !healthy->is_boolean()) return bad("healthy must be true or false");
  auto id = identity::SpiffeId::parse(id_it->get<std::string>());
  if (!id) return bad("spiffeId: " + id.error().message);
  if (id->istio_namespace() != r->ns || id->istio_service_account() != r->service_account)
    return bad("spiffeId " + id->str() + " is not namespace " + r->ns + ", service account " +
               r->service_account);
  r->spiffe_id = id->str();
  r->connected = healthy->get<bool>();
  return r;
}

std::vector<Registration> merge_registrations(const std::vector<LocalRegistration>& own,
                                              const std::vector<PeerRegistration>& peers) {
  // Higher wins (live_endpoints.h): 4 own connected, 3 peer connected, 2 own in grace, 1 peer in
  // grace, 0 own restored.
  struct Best {
    int rank = -1;
    const std::string* replica = nullptr;  // null: this replica's
    const Registration* registration = nullptr;
  };
  std::map<std::string, Best> best;
  for (const auto& o : own) {
    const int rank = o.restored ? 0 : (o.registration.connected ? 4 : 2);
    Best& b = best[o.registration.ns + "/" + o.registration.name];
    if (rank > b.rank) b = {rank, nullptr, &o.registration};
  }
  for (const auto& p : peers) {
    const int rank = p.registration.connected ? 3 : 1;
    Best& b = best[p.registration.ns + "/" + p.registration.name];
    if (rank > b.rank || (rank == b.rank && b.replica && p.replica < *b.replica))
      b = {rank, &p.replica, &p.registration};
  }
  std::vector<Registration> out;
  out.reserve(best.size());
  for (const auto& [key, b] : best) out.push_back(*b.registration);
  return out;
}

}  // namespace mg::control
