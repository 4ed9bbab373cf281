// The etcd store's parsers on arbitrary input: the --store URL, keys and values read back from
// etcd (another writer under the prefix may have put anything there), among them the replicas'
// live endpoints (live_endpoints.h). The first byte picks the parser. Invariants: nothing crashes;
// what parses encodes again into what parses to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control/etcd_keys.h"
#include "control/live_endpoints.h"

using namespace mg::control;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0]) {
    case 'u': {
      auto endpoints = parse_etcd_url(in);
      if (endpoints && endpoints->empty()) std::abort();
      break;
    }
    case 'k': {
      auto key = parse_etcd_resource_key("/meshguard/", in);
      if (key && (!check_etcd_key_parts(*key) || etcd_resource_key("/meshguard/", *key) != in)) std::abort();
      break;
    }
    case 'r': {
      const ResourceKey key{"Mesh", "", "default"};
      auto r = decode_etcd_resource(key, in, 7);
      if (r) {
        auto again = decode_etcd_resource(key, encode_etcd_resource(r->yaml, r->updated_unix), 7);
        if (!again || again->yaml != r->yaml || again->updated_unix != r->updated_unix) std::abort();
      }
      break;
    }
    case 'l': {
      auto key = parse_etcd_live_key("/meshguard/", in);
      if (key && etcd_live_key("/meshguard/", key->replica, key->ns, key->name) != in) std::abort();
      break;
    }
    case 'v': {
      const LiveKey key{"cp-a:1#00", "default", "details"};
      auto r = decode_live_entry(key, in);
      if (r) {
        auto again = decode_live_entry(key, encode_live_entry(*r));
        if (!again || !(*again == *r)) std::abort();
      }
      break;
    }
    default: {
      auto g = decode_etcd_registration("default/x", in);
      if (g) {
        auto again = decode_etcd_registration("default/x", encode_etcd_registration(*g));
        if (!again || !(*again == *g)) std::abort();
      }
      break;
    }
  }
  return 0;
}
