// jwt/token_cache.h — cache of verified tokens so a repeated token costs a hash and a lookup,
// not a signature verification. Keyed by SHA-256 of the token (the token itself is never
// stored); bounded (LRU per shard); an entry dies at the token's exp (or after kNoExpTtl for a
// token without exp) and when the remote key sets it was verified against change.
// Thread-safety: 16 shards, each behind its own mutex; a lookup locks one shard briefly, so
// worker threads rarely contend. The cached value is immutable and shared.
#pragma once

#include <array>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "jwt/jws.h"
#include "jwt/request_auth.h"

namespace mg::jwt {

// What verification established about one token; shared by every request that carries it.
struct VerifiedToken {
  size_t rule_index = 0;  // the JwtRule whose issuer and keys accepted it
  std::optional<int64_t> exp;
  std::optional<int64_t> nbf;
  std::string payload_b64;  // the token's payload segment (outputPayloadToHeader)
  nlohmann::json payload;   // as sent; kept only when the rule has outputClaimToHeaders
  RequestAuth auth;         // Authenticated, principal/claims filled, claims normalized
};

class VerifiedTokenCache {
 public:
  using Key = std::array<unsigned char, 32>;
  static constexpr int64_t kNoExpTtl = 300;
  static constexpr size_t kShards = 16;

  explicit VerifiedTokenCache(size_t capacity = 4096);
  VerifiedTokenCache(const VerifiedTokenCache&) = delete;
  VerifiedTokenCache& operator=(const VerifiedTokenCache&) = delete;

  static Key key_for(std::string_view token);

  // The entry if present, not expired at `now` and verified under `generation`.
  std::shared_ptr<const VerifiedToken> find(const Key& key, int64_t now, uint64_t generation);
  void insert(const Key& key, std::shared_ptr<const VerifiedToken> value, int64_t now, uint64_t generation);
  size_t size() const;

 private:
  struct Entry {
    Key key;
    std::shared_ptr<const VerifiedToken> value;
    int64_t expires_at;
    uint64_t generation;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // front = most recently used
    std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index;
  };
  Shard& shard_for(const Key& key) { return shards_[key[31] % kShards]; }

  size_t per_shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mg::jwt
