// control/shared_ca.cpp — see shared_ca.h.
#include "control/shared_ca.h"

#include <nlohmann/json.hpp>

namespace mg::control {

namespace {

Result<nlohmann::json> encode_pem(const ca::CaPem& pem, const SealKey* seal, std::string_view label) {
  std::string key = pem.ca_key;
  if (seal) {
    auto sealed = seal_secret(*seal, label, pem.ca_key);
    if (!sealed) return fail(sealed.error());
    key = std::move(*sealed);
  }
  return nlohmann::json{
      {"rootCert", pem.root_cert}, {"caCert", pem.ca_cert}, {"certChain", pem.cert_chain}, {"caKey", key}};
}

Unexpected<Error> bad(std::string_view etcd_key, const std::string& why) {
  return fail("control.shared_ca", std::string(etcd_key) + ": " + why);
}

Result<ca::CaPem> decode_pem(const nlohmann::json& j, const SealKey* seal, std::string_view etcd_key,
                             std::string_view label) {
  if (!j.is_object()) return bad(etcd_key, "a CA is not an object");
  ca::CaPem pem;
  for (auto [name, out] : {std::pair{"rootCert", &pem.root_cert},
                           {"caCert", &pem.ca_cert},
                           {"certChain", &pem.cert_chain},
                           {"caKey", &pem.ca_key}}) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      return bad(etcd_key, std::string("no ") + name);
    *out = it->get<std::string>();
  }
  const std::string to_seal_anew = ", or, for a new sealed CA, delete " + std::string(etcd_key) +
                                   " and the token key beside it and start every replica with --seal-key "
                                   "(docs/ETCD.md)";
  auto key = open_stored_secret({.value = pem.ca_key,
                                 .label = label,
                                 .etcd_key = etcd_key,
                                 .what = "the CA's key",
                                 .sealed_by = "--seal-key FILE",
                                 .clear_remedy = to_seal_anew},
                                seal);
  if (!key) return fail(key.error());
  pem.ca_key = std::move(*key);
  return pem;
}

}  // namespace

std::string shared_ca_name(std::string_view mesh) {
  if (mesh.empty() || mesh == "default") return kSharedCaName;
  return "meshes/" + std::string(mesh) + "/ca";
}

Result<std::string> encode_shared_ca(const SharedCa& shared, const SealKey* seal, std::string_view label) {
  nlohmann::json j;
  j["trustDomain"] = shared.trust_domain;
  auto current = encode_pem(shared.current, seal, label);
  if (!current) return fail(current.error());
  j["current"] = std::move(*current);
  if (shared.pending) {
    auto pending = encode_pem(*shared.pending, seal, label);
    if (!pending) return fail(pending.error());
    j["pending"] = std::move(*pending);
    j["rotation"] = {{"leader", shared.rotation_leader}, {"deadlineUnix", shared.rotation_deadline_unix}};
  }
  return j.dump();
}

Result<SharedCa> decode_shared_ca(std::string_view value, const SealKey* seal, std::string_view etcd_key,
                                  std::string_view label) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad(etcd_key, "not a JSON object");
  SharedCa out;
  auto td = j.find("trustDomain");
  if (td == j.end() || !td->is_string() || td->get_ref<const std::string&>().empty())
    return bad(etcd_key, "no trustDomain");
  out.trust_domain = td->get<std::string>();
  auto current = j.find("current");
  if (current == j.end()) return bad(etcd_key, "no current CA");
  auto pem = decode_pem(*current, seal, etcd_key, label);
  if (!pem) return fail(pem.error());
  out.current = std::move(*pem);
  if (auto pending = j.find("pending"); pending != j.end()) {
    auto next = decode_pem(*pending, seal, etcd_key, label);
    if (!next) return fail(next.error());
    out.pending = std::move(*next);
    auto rotation = j.find("rotation");
    if (rotation == j.end() || !rotation->is_object())
      return bad(etcd_key, "a pending CA without its rotation");
    auto leader = rotation->find("leader");
    auto deadline = rotation->find("deadlineUnix");
    if (leader == rotation->end() || !leader->is_string() || deadline == rotation->end() ||
        !deadline->is_number_integer())
      return bad(etcd_key, "a rotation needs leader and deadlineUnix");
    out.rotation_leader = leader->get<std::string>();
    out.rotation_deadline_unix = deadline->get<int64_t>();
  }
  return out;
}

}  // namespace mg::control
