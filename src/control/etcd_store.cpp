// control/etcd_store.cpp — the Store on etcd (etcd_store.h). One watch thread keeps `cache_` (the
// resources under the prefix, each parsed once) at the newest revision it has seen; readers take
// the mutex only to copy out. The same listing and watch keep `live_` (the replicas' live
// registrations, raw: etcd_live.cpp reads them) and tell who follows them what changed. Writes go
// straight to etcd as transactions and then wait (bounded) for the watch to bring their revision
// in, so this replica reads its own writes.
#include "control/etcd_store.h"

#include <ctime>
#include <map>
#include <thread>

#include "common/thread_annotations.h"
#include "control/etcd_client.h"
#include "control/support.h"
#include "policy/parse.h"

namespace mg::control {

namespace pb = ::etcdserverpb;

namespace {

constexpr int kMaxCasAttempts = 5;                         // an apply racing other writers, then conflict
constexpr auto kReadOwnWriteWait = std::chrono::seconds(5);  // a write waits this long for its watch event
constexpr size_t kMaxOpsPerTxn = kEtcdMaxOpsPerTxn;

struct Entry {
  StoredResource stored;
  policy::ResourceSet parsed;  // exactly one resource, Meta.document filled
};

// The stored document parsed alone, its key as its source (errors name the resource).
Result<Entry> parse_entry(const ResourceKey& key, const pb::KeyValue& kv) {
  auto stored = decode_etcd_resource(key, kv.value(), kv.mod_revision());
  if (!stored) return fail(stored.error());
  auto set = policy::parse_resources(stored->yaml, key.str());
  if (!set) return fail(StoreError::BadStored, "stored " + set.error().message);
  if (set->size() != 1) return fail(StoreError::BadStored, "stored " + key.str() + " is not exactly one resource");
  return Entry{std::move(*stored), std::move(*set)};
}

void range_op(pb::RequestOp* op, const std::string& key) { op->mutable_request_range()->set_key(key); }

// Every key under `head`, at the current revision.
pb::RangeRequest prefix_range(const std::string& head) {
  pb::RangeRequest req;
  req.set_key(head);
  req.set_range_end(etcd_prefix_end(head));
  return req;
}

class EtcdStoreImpl final : public EtcdStore {
 public:
  EtcdStoreImpl(EtcdOptions options, std::unique_ptr<EtcdClient> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  ~EtcdStoreImpl() override {
    {
      MutexLock lock(mu_);
      stopping_ = true;
      if (watch_ctx_) watch_ctx_->TryCancel();
      cv_.notify_all();
    }
    if (watcher_.joinable()) watcher_.join();
  }

  Status start() {
    if (auto st = relist(); !st) return st;
    watcher_ = std::thread([this] { watch_loop(); });
    return {};
  }

  Result<ApplyResult> apply_parsed(std::vector<ParsedFile> files, int64_t if_revision = 0) override {
    auto merged = merge_parsed_files(std::move(files));
    if (!merged) return fail(merged.error());
    const policy::ResourceSet& all = *merged;
    auto docs = keyed_documents(all);
    if (!docs) return fail(docs.error());
    if (docs->size() > kMaxOpsPerTxn)
      return fail(StoreError::TooLarge, std::to_string(docs->size()) + " resources in one apply; the etcd store takes " +
                                            std::to_string(kMaxOpsPerTxn) + " at most (split the apply)");
    for (const auto& d : *docs) {
      if (auto st = check_etcd_key_parts(d.key); !st) return fail(st.error());
    }
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
      // Every key read in one transaction: one consistent revision to compare against.
      pb::TxnRequest read;
      for (const auto& d : *docs) range_op(read.add_success(), etcd_resource_key(options_.prefix, d.key));
      auto current = client_->txn(read);
      if (!current) return fail(current.error());
      ApplyResult result;
      pb::TxnRequest write;
      for (size_t i = 0; i < docs->size(); ++i) {
        const auto& d = (*docs)[i];
        const std::string key = etcd_resource_key(options_.prefix, d.key);
        const auto& kvs = current->responses(static_cast<int>(i)).response_range().kvs();
        const pb::KeyValue* kv = kvs.empty() ? nullptr : &kvs[0];
        if (if_revision > 0 && kv && kv->mod_revision() > if_revision)
          return conflict(d.key, kv->mod_revision(), if_revision);
        if (kv) {
          auto stored = decode_etcd_resource(d.key, kv->value(), kv->mod_revision());
          if (stored && stored->yaml == d.meta->document) {
            result.unchanged.push_back(d.key);
            continue;
          }
        }
        auto* cmp = write.add_compare();
        cmp->set_key(key);
        cmp->set_target(pb::Compare::MOD);
        cmp->set_result(pb::Compare::EQUAL);
        cmp->set_mod_revision(kv ? kv->mod_revision() : 0);  // 0: still absent
        auto* put = write.add_success()->mutable_request_put();
        put->set_key(key);
        put->set_value(encode_etcd_resource(d.meta->document, now));
        (kv ? result.configured : result.created).push_back(d.key);
      }
      if (write.success_size() == 0) {
        result.revision = revision();
        return result;
      }
      auto written = client_->txn(write);
      if (!written) return fail(written.error());
      if (!written->succeeded()) continue;  // another writer came between: read again
      result.revision = written->header().revision();
      wait_for(result.revision);
      return result;
    }
    return fail(StoreError::Conflict, "the resources of this apply kept changing under it (" +
                                          std::to_string(kMaxCasAttempts) + " attempts): try again");
  }

  Result<RemoveResult> remove_all(const std::vector<ResourceKey>& asked, bool ignore_missing) override {
    const std::vector<ResourceKey> keys = unique_keys(asked);
    if (keys.size() > kMaxOpsPerTxn)
      return fail(StoreError::TooLarge, std::to_string(keys.size()) +
                                            " resources in one delete; the etcd store takes " +
                                            std::to_string(kMaxOpsPerTxn) + " at most (split the delete)");
    for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
      // Which keys are there, at one revision; then one transaction deletes exactly those, on
      // condition that none changed since (else another writer came between: read again).
      RemoveResult result;
      pb::TxnRequest read, write;
      for (const auto& key : keys) {
        // A key the etcd layout cannot hold cannot be stored either: absent.
        if (check_etcd_key_parts(key)) range_op(read.add_success(), etcd_resource_key(options_.prefix, key));
      }
      std::optional<pb::TxnResponse> current;
      if (read.success_size() > 0) {
        auto got = client_->txn(read);
        if (!got) return fail(got.error());
        current = std::move(*got);
      }
      int index = 0;
      for (const auto& key : keys) {
        if (!check_etcd_key_parts(key)) {
          result.missing.push_back(key);
          continue;
        }
        const auto& kvs = current->responses(index++).response_range().kvs();
        if (kvs.empty()) {
          result.missing.push_back(key);
          continue;
        }
        const std::string etcd_key = etcd_resource_key(options_.prefix, key);
        auto* cmp = write.add_compare();
        cmp->set_key(etcd_key);
        cmp->set_target(pb::Compare::MOD);
        cmp->set_result(pb::Compare::EQUAL);
        cmp->set_mod_revision(kvs[0].mod_revision());
        write.add_success()->mutable_request_delete_range()->set_key(etcd_key);
        result.removed.push_back(key);
      }
      if (!result.missing.empty() && !ignore_missing) return not_found(result.missing);
      if (result.removed.empty()) {
        result.revision = revision();
        return result;
      }
      auto done = client_->txn(write);
      if (!done) return fail(done.error());
      if (!done->succeeded()) continue;
      result.revision = done->header().revision();
      wait_for(result.revision);
      return result;
    }
    return fail(StoreError::Conflict, "the resources of this delete kept changing under it (" +
                                          std::to_string(kMaxCasAttempts) + " attempts): try again");
  }

  Result<std::vector<StoredResource>> list(const std::optional<std::string>& kind,
                                           const std::optional<std::string>& ns) const override {
    MutexLock lock(mu_);
    std::vector<StoredResource> out;
    for (const auto& [key, e] : cache_) {
      if ((kind && key.kind != *kind) || (ns && key.ns != *ns)) continue;
      out.push_back(e.stored);
    }
    return out;
  }

  Result<std::optional<StoredResource>> get(const ResourceKey& key) const override {
    MutexLock lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::optional<StoredResource>();
    return std::optional<StoredResource>(it->second.stored);
  }

  int64_t revision() const override {
    MutexLock lock(mu_);
    return revision_;
  }

  Result<policy::ResourceSet> resources() const override {
    MutexLock lock(mu_);
    if (!bad_.empty()) return fail(bad_.begin()->second);
    policy::ResourceSet out;
    for (const auto& [key, e] : cache_) {
      policy::ResourceSet copy = e.parsed;
      out.append(std::move(copy));
    }
    return out;
  }

  Status save_registrations(const std::vector<StoredRegistration>& save,
                            const std::vector<std::string>& remove) override {
    const std::string head = etcd_registrations_prefix(options_.prefix);
    std::map<std::string, const StoredRegistration*> saved;
    for (const auto& r : save) saved[r.key] = &r;
    std::vector<pb::RequestOp> ops;
    for (const auto& key : remove) {
      if (saved.count(key)) continue;  // in both: saved
      pb::RequestOp op;
      op.mutable_request_delete_range()->set_key(head + key);
      ops.push_back(std::move(op));
    }
    for (const auto& [key, r] : saved) {
      pb::RequestOp op;
      op.mutable_request_put()->set_key(head + key);
      op.mutable_request_put()->set_value(encode_etcd_registration(*r));
      ops.push_back(std::move(op));
    }
    for (size_t i = 0; i < ops.size(); i += kMaxOpsPerTxn) {
      pb::TxnRequest txn;
      for (size_t j = i; j < std::min(ops.size(), i + kMaxOpsPerTxn); ++j) *txn.add_success() = ops[j];
      if (auto done = client_->txn(txn); !done) return fail(done.error());
    }
    return {};
  }

  Result<std::vector<StoredRegistration>> registrations() const override {
    const std::string head = etcd_registrations_prefix(options_.prefix);
    auto got = client_->range(prefix_range(head));
    if (!got) return fail(got.error());
    std::vector<StoredRegistration> out;
    for (const auto& kv : got->kvs()) {
      auto r = decode_etcd_registration(kv.key().substr(head.size()), kv.value());
      if (!r) return fail(r.error());
      out.push_back(std::move(*r));
    }
    return out;  // etcd answers in key order
  }

  // Replacing the listener waits for a call of the old one in progress: once this returns with
  // nullptr, whatever the old one pointed at may go.
  void on_external_change(std::function<void()> listener) override {
    MutexLock lock(listener_mu_);
    listener_ = std::move(listener);
  }

  Result<std::string> shared_value(std::string_view name, std::string_view create_with) override {
    const std::string key = etcd_shared_key(options_.prefix, name);
    pb::TxnRequest txn;
    auto* cmp = txn.add_compare();
    cmp->set_key(key);
    cmp->set_target(pb::Compare::CREATE);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_create_revision(0);
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(std::string(create_with));
    range_op(txn.add_failure(), key);
    auto done = client_->txn(txn);
    if (!done) return fail(done.error());
    if (done->succeeded()) return std::string(create_with);
    const auto& kvs = done->responses(0).response_range().kvs();
    if (kvs.empty()) return fail(StoreError::Etcd, key + " vanished while it was read");
    return kvs[0].value();
  }

  void on_shared_ca_change(const std::string& name, std::function<void()> listener) override {
    MutexLock lock(listener_mu_);
    if (listener)
      shared_listeners_.insert_or_assign(name, std::move(listener));
    else
      shared_listeners_.erase(name);
  }

  void on_live_change(LiveListener listener) override {
    MutexLock lock(listener_mu_);
    live_listener_ = std::move(listener);
    if (!live_listener_) return;
    std::vector<LiveEvent> all;
    {
      MutexLock state(mu_);
      for (const auto& [key, value] : live_) all.push_back({key, value, false});
    }
    live_listener_(all, /*reset=*/true);
  }

  EtcdClient& client() override { return *client_; }
  const std::string& prefix() const override { return options_.prefix; }

  Result<std::optional<std::string>> shared_get(std::string_view name) override {
    pb::RangeRequest req;
    req.set_key(etcd_shared_key(options_.prefix, name));
    auto got = client_->range(req);
    if (!got) return fail(got.error());
    if (got->kvs().empty()) return std::optional<std::string>();
    return std::optional<std::string>(got->kvs(0).value());
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;

  // The whole prefix again, at one revision: the start, and after etcd compacted the history a
  // watch would have resumed from.
  Status relist() MG_EXCLUDES(mu_) {
    // Both prefixes in one transaction: one revision, which the watch resumes from.
    const std::string head = etcd_resources_prefix(options_.prefix);
    const std::string live_head = etcd_live_prefix(options_.prefix);
    pb::TxnRequest read;
    *read.add_success()->mutable_request_range() = prefix_range(head);
    *read.add_success()->mutable_request_range() = prefix_range(live_head);
    auto got = client_->txn(read);
    if (!got) return fail(got.error());
    std::map<ResourceKey, Entry> fresh;
    std::map<ResourceKey, Error> bad;
    std::map<std::string, std::string> live;
    for (const auto& kv : got->responses(1).response_range().kvs()) live.emplace(kv.key(), kv.value());
    for (const auto& kv : got->responses(0).response_range().kvs()) {
      auto key = parse_etcd_resource_key(options_.prefix, kv.key());
      if (!key) continue;  // not ours (another tool's key under the prefix): ignored
      auto entry = parse_entry(*key, kv);
      if (!entry) {
        log_line("etcd store: " + entry.error().to_string());
        bad.emplace(*key, entry.error());
        continue;
      }
      fresh.emplace(*key, std::move(*entry));
    }
    {
      MutexLock lock(mu_);
      cache_ = std::move(fresh);
      bad_ = std::move(bad);
      live_ = live;
      revision_ = std::max(revision_, got->header().revision());
      cv_.notify_all();
    }
    std::vector<LiveEvent> all;
    for (auto& [key, value] : live) all.push_back({key, std::move(value), false});
    notify_live_listener(all, /*reset=*/true);
    return {};
  }

  // One watch event under <prefix>live/ into `live_` (mu_ held), appended to `events`; false when
  // the event is not under it.
  bool apply_live_event(const pb::Event& ev, std::vector<LiveEvent>* events) MG_REQUIRES(mu_) {
    if (!ev.kv().key().starts_with(etcd_live_prefix(options_.prefix))) return false;
    if (ev.type() == pb::Event::DELETE) {
      live_.erase(ev.kv().key());
      events->push_back({ev.kv().key(), "", true});
    } else {
      live_.insert_or_assign(ev.kv().key(), ev.kv().value());
      events->push_back({ev.kv().key(), ev.kv().value(), false});
    }
    return true;
  }

  // One watch event into the cache (mu_ held); false when the event was not a resource key.
  bool apply_event(const pb::Event& ev) MG_REQUIRES(mu_) {
    auto key = parse_etcd_resource_key(options_.prefix, ev.kv().key());
    if (!key) return false;
    bad_.erase(*key);
    if (ev.type() == pb::Event::DELETE) {
      cache_.erase(*key);
    } else if (auto entry = parse_entry(*key, ev.kv()); entry) {
      cache_.insert_or_assign(*key, std::move(*entry));
    } else {
      log_line("etcd store: " + entry.error().to_string());
      cache_.erase(*key);
      bad_.emplace(*key, entry.error());
    }
    revision_ = std::max(revision_, ev.kv().mod_revision());
    return true;
  }

  // One watch stream, from revision_ + 1, until it breaks: false when etcd compacted that history
  // away (the caller lists again).
  bool watch_once() MG_EXCLUDES(mu_) {
    grpc::ClientContext ctx;
    int64_t from = 0;
    {
      MutexLock lock(mu_);
      if (stopping_) return true;
      watch_ctx_ = &ctx;
      from = revision_ + 1;
    }
    struct Clear {
      EtcdStoreImpl* self;
      ~Clear() {
        MutexLock lock(self->mu_);
        self->watch_ctx_ = nullptr;
      }
    } clear{this};
    auto stream = client_->watch(&ctx);
    pb::WatchRequest create;
    const std::string head = etcd_resources_prefix(options_.prefix);
    create.mutable_create_request()->set_key(head);
    create.mutable_create_request()->set_range_end(etcd_prefix_end(head));
    create.mutable_create_request()->set_start_revision(from);
    // <prefix>shared/ (the CAs' rotations, etcd_ca_rotation.h) on the same stream, from the same revision.
    pb::WatchRequest create_shared;
    const std::string shared_head = etcd_shared_key(options_.prefix, "");
    create_shared.mutable_create_request()->set_key(shared_head);
    create_shared.mutable_create_request()->set_range_end(etcd_prefix_end(shared_head));
    create_shared.mutable_create_request()->set_start_revision(from);
    // <prefix>live/ (etcd_live.h) too.
    pb::WatchRequest create_live;
    const std::string live_head = etcd_live_prefix(options_.prefix);
    create_live.mutable_create_request()->set_key(live_head);
    create_live.mutable_create_request()->set_range_end(etcd_prefix_end(live_head));
    create_live.mutable_create_request()->set_start_revision(from);
    bool compacted = false;
    if (stream->Write(create) && stream->Write(create_shared) && stream->Write(create_live)) {
      pb::WatchResponse resp;
      while (stream->Read(&resp)) {
        if (resp.compact_revision() > 0) {
          log_line("etcd store: history compacted at revision " + std::to_string(resp.compact_revision()) +
                   "; listing again");
          compacted = true;
          break;
        }
        if (resp.canceled()) {
          log_line("etcd store: watch canceled: " + resp.cancel_reason());
          break;
        }
        bool changed = false, shared = false;
        std::vector<LiveEvent> live;
        {
          MutexLock lock(mu_);
          for (const auto& ev : resp.events()) {
            if (apply_live_event(ev, &live)) continue;
            const bool resource = apply_event(ev);
            changed |= resource;
            shared |= !resource;
          }
          if (changed) cv_.notify_all();
        }
        if (changed) notify_listener();
        if (shared) notify_shared_listener();
        if (!live.empty()) notify_live_listener(live, /*reset=*/false);
      }
    }
    ctx.TryCancel();
    const auto st = stream->Finish();
    MutexLock lock(mu_);
    if (!stopping_ && !compacted)
      log_line("etcd store: watch on " + client_->endpoint() + " ended (" + st.error_message() + "); moving on");
    return !compacted;
  }

  void watch_loop() MG_EXCLUDES(mu_) {
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
      const auto started = std::chrono::steady_clock::now();
      const bool resumable = watch_once();
      {
        MutexLock lock(mu_);
        if (stopping_) return;
      }
      if (!resumable) {
        if (auto st = relist(); st) {
          notify_listener();
          notify_shared_listener();
          continue;
        } else {
          log_line("etcd store: " + st.error().to_string());
        }
      }
      client_->rotate();
      if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) backoff = std::chrono::milliseconds(100);
      MutexLock lock(mu_);
      const auto until = std::chrono::steady_clock::now() + backoff;
      while (!stopping_ && cv_.wait_until(lock, until)) {
      }
      if (stopping_) return;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }

  void notify_listener() MG_EXCLUDES(mu_, listener_mu_) {
    MutexLock lock(listener_mu_);
    if (listener_) listener_();
  }

  void notify_shared_listener() MG_EXCLUDES(mu_, listener_mu_) {
    MutexLock lock(listener_mu_);
    for (const auto& [name, listener] : shared_listeners_) listener();
  }

  void notify_live_listener(const std::vector<LiveEvent>& events, bool reset) MG_EXCLUDES(mu_, listener_mu_) {
    MutexLock lock(listener_mu_);
    if (live_listener_) live_listener_(events, reset);
  }

  // A write at `revision` is visible here once the watch has brought it in (bounded: a broken
  // watch delays reads of it, never the write's answer for long).
  void wait_for(int64_t revision) MG_EXCLUDES(mu_) {
    const auto until = std::chrono::steady_clock::now() + kReadOwnWriteWait;
    MutexLock lock(mu_);
    while (revision_ < revision && !stopping_) {
      if (!cv_.wait_until(lock, until)) break;
    }
  }

  const EtcdOptions options_;
  const std::unique_ptr<EtcdClient> client_;
  std::thread watcher_;
  std::map<ResourceKey, Entry> cache_ MG_GUARDED_BY(mu_);
  std::map<ResourceKey, Error> bad_ MG_GUARDED_BY(mu_);  // stored values that do not parse
  int64_t revision_ MG_GUARDED_BY(mu_) = 0;
  bool stopping_ MG_GUARDED_BY(mu_) = false;
  grpc::ClientContext* watch_ctx_ MG_GUARDED_BY(mu_) = nullptr;
  Mutex listener_mu_;  // held while a listener runs; mu_ may be taken inside it, never the other way
  std::function<void()> listener_ MG_GUARDED_BY(listener_mu_);
  std::map<std::string, std::function<void()>> shared_listeners_ MG_GUARDED_BY(listener_mu_);  // by name
  LiveListener live_listener_ MG_GUARDED_BY(listener_mu_);
  std::map<std::string, std::string> live_ MG_GUARDED_BY(mu_);  // <prefix>live/ key → value
};

}  // namespace

Result<std::unique_ptr<EtcdStore>> open_etcd_store(const EtcdOptions& options) {
  auto client = EtcdClient::create(options);
  if (!client) return fail(client.error());
  auto store = std::make_unique<EtcdStoreImpl>(options, std::move(*client));
  if (auto st = store->start(); !st) return fail(st.error());
  return std::unique_ptr<EtcdStore>(std::move(store));
}

}  // namespace mg::control
