// control/etcd_store.h — the Store on etcd v3 (store.h), shared by several meshguard-control
// replicas (docs/ETCD.md). Each replica lists the resources under its prefix at a revision, then
// watches from the next one (listing again when etcd compacted that history away), and answers
// list/get/resources from what it has seen; the etcd revision is the store revision. Writes are
// etcd transactions that compare each written key's mod_revision with the one just read, so two
// replicas applying at once never interleave, and an apply based on an older revision
// (if_revision) fails store.conflict instead of overwriting a newer change. A write returns once
// this replica's view holds it, so a get right after an apply sees it. The same listing and watch
// carry <prefix>live/ (the replicas' live registrations, etcd_live.h) and <prefix>shared/ (the CAs).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/etcd_keys.h"
#include "control/store.h"

namespace mg::control {

class EtcdClient;

class EtcdStore : public Store {
 public:
  // The value stored at <prefix>shared/<name>: `create_with` when the key was absent (this call
  // created it, in one transaction: two replicas starting at once agree on one value).
  virtual Result<std::string> shared_value(std::string_view name, std::string_view create_with) = 0;
  // The value at <prefix>shared/<name>, nullopt when absent.
  virtual Result<std::optional<std::string>> shared_get(std::string_view name) = 0;
  // Called (on the watch thread) when a CA kept under <prefix>shared/ may have changed: a watch
  // event on a key there, or a new listing after etcd compacted the history. The listener reads
  // its key again itself. One listener per `name` (its key's name under shared/: "ca",
  // "meshes/<mesh>/ca"); null removes it. Listeners run under a lock of the store's: they must not
  // call on_shared_ca_change.
  virtual void on_shared_ca_change(const std::string& name, std::function<void()> listener) = 0;
  // One change under <prefix>live/: a key put (with its value) or deleted.
  struct LiveEvent {
    std::string key, value;
    bool deleted = false;
  };
  // Called with the changes under <prefix>live/ (on the watch thread), and at once, from this
  // call, with everything under it (reset). `reset`: the events are the whole prefix (a new
  // listing, after etcd compacted the history) and nothing the listener held before stands. An
  // event may come twice (a watch resumed from the resources' revision): each says the key's state.
  using LiveListener = std::function<void(const std::vector<LiveEvent>& events, bool reset)>;
  virtual void on_live_change(LiveListener listener) = 0;
  virtual EtcdClient& client() = 0;
  virtual const std::string& prefix() const = 0;
};

// Connects, lists the resources and starts watching; store.etcd when no endpoint answers.
Result<std::unique_ptr<EtcdStore>> open_etcd_store(const EtcdOptions& options);

}  // namespace mg::control
