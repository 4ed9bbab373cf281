#include "jwt/token_cache.h"

#include <cstring>
#include <openssl/evp.h>

#include "crypto/openssl.h"

namespace mg::jwt {

VerifiedTokenCache::VerifiedTokenCache(size_t capacity)
    : per_shard_capacity_(capacity / kShards > 0 ? capacity / kShards : 1) {}

VerifiedTokenCache::Key VerifiedTokenCache::key_for(std::string_view token) {
  // One digest context per thread, reused: this is the whole cost of a cache hit besides the
  // lookup, so avoid per-call allocation and implicit algorithm fetches.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local crypto::MdCtxPtr ctx(EVP_MD_CTX_new());
  Key key{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), token.data(), token.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), key.data(), &len) != 1 ||
      len != key.size()) {
    // Fall back to the one-shot API; a digest failure here means OpenSSL itself is broken.
    EVP_Digest(token.data(), token.size(), key.data(), &len, EVP_sha256(), nullptr);
  }
  return key;
}

size_t VerifiedTokenCache::KeyHash::operator()(const Key& k) const noexcept {
  size_t h;
  std::memcpy(&h, k.data(), sizeof h);
  return h;
}

std::shared_ptr<const VerifiedToken> VerifiedTokenCache::find(const Key& key, int64_t now, uint64_t generation) {
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mu);
  auto it = s.index.find(key);
  if (it == s.index.end()) return nullptr;
  auto entry = it->second;
  if (now >= entry->expires_at || entry->generation != generation) {
    s.lru.erase(entry);
    s.index.erase(it);
    return nullptr;
  }
  s.lru.splice(s.lru.begin(), s.lru, entry);
  return entry->value;
}

void VerifiedTokenCache::insert(const Key& key, std::shared_ptr<const VerifiedToken> value, int64_t now, uint64_t generation) {
  int64_t expires_at = now + kNoExpTtl;
  if (value->exp) expires_at = *value->exp + kClockSkewSeconds + 1;  // past exp + skew it can never pass
  if (expires_at <= now) return;
  Shard& s = shard_for(key);
  std::lock_guard lock(s.mu);
  if (auto it = s.index.find(key); it != s.index.end()) {
    it->second->value = std::move(value);
    it->second->expires_at = expires_at;
    it->second->generation = generation;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return;
  }
  s.lru.push_front(Entry{key, std::move(value), expires_at, generation});
  s.index.emplace(key, s.lru.begin());
  while (s.lru.size() > per_shard_capacity_) {
    s.index.erase(s.lru.back().key);
    s.lru.pop_back();
  }
}

size_t VerifiedTokenCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.lru.size();
  }
  return n;
}

}  // namespace mg::jwt
