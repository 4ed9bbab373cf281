// control/store.h — the control plane's resource store: every applied document kept verbatim
// (Meta::document), keyed by kind/namespace/name, with a revision that bumps once per change.
// Applies are validated with policy::parse_resources first and are all-or-nothing; a caller that
// has parsed the files already (the admin service) hands them over parsed (apply_parsed), so an
// apply parses each document once, and the store keeps what it parsed for resources(). The one
// implementations: SQLite (sqlite_store.cpp; WAL, synchronous=FULL, so an apply that returned
// success survives kill -9), the embedded default, and etcd v3 (etcd_store.cpp), which several
// control-plane replicas share (docs/ETCD.md).
//
// Beside the resources, the store keeps the service registry's registrations (StoredRegistration,
// below) so that a restarted control plane starts from the endpoints it was serving
// (control/registry.h restores them). They are not resources: opaque records, no revision bump,
// never in list()/get()/resources().
//
// Error codes (StoreError, below): store.not_found (remove_all of an absent key), store.duplicate
// (a parsed set naming one resource twice: never from parse_resources, which keeps the later
// document), store.too_large, store.open, store.not_sqlite / store.corrupt / store.not_meshguard
// (open refused; the file is left untouched), store.schema (a schema version this build does not
// know), store.sqlite (any other SQLite failure), store.bad_stored (a stored document no longer
// parses), store.conflict (an apply based on a revision some resource changed after: --if-revision),
// store.etcd (etcd unreachable or failing), store.url (a bad --store etcd://... or --etcd-* flag),
// store.bad_key (a key the etcd layout cannot hold), and the policy.* codes of parse_resources for
// a rejected apply.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "policy/resources.h"

namespace mg::control {

enum class StoreError {
  NotFound,
  Duplicate,
  TooLarge,
  Open,
  NotSqlite,
  Corrupt,
  NotMeshguard,
  Schema,
  Sqlite,
  BadStored,
  Conflict,
  Etcd,
  Url,
  BadKey
};
const char* to_string(StoreError e);  // the Error::code text, e.g. "store.not_found"
using mg::fail;                       // the overload below would hide it inside mg::control
Unexpected<Error> fail(StoreError e, std::string message);
bool is(const Error& error, StoreError e);

// Largest text one apply accepts; bigger inputs are refused before parsing.
inline constexpr size_t kMaxApplyBytes = 8 * 1024 * 1024;

struct ResourceKey {
  std::string kind, ns, name;  // kind as in YAML: "AuthorizationPolicy", "Mesh", ...; Mesh has ns ""
  auto operator<=>(const ResourceKey&) const = default;
  std::string str() const;  // kind/ns/name
};

struct StoredResource {
  ResourceKey key;
  std::string yaml;      // the document exactly as applied
  int64_t revision = 0;  // store revision of its last change
  int64_t updated_unix = 0;
};

// One file of a multi-file apply.
struct ApplyInput {
  std::string_view yaml;
  std::string_view source;  // its name in error messages ("<source>:<line>: ...")
  std::string_view ns = {};  // -n/--namespace for its documents (policy::parse_resources), or empty
  std::string_view mesh = {};  // --mesh for its documents (policy::parse_resources), or empty
};

// One file of an apply, parsed once (parse_apply_file): what apply_parsed() stores.
struct ParsedFile {
  std::string source;
  size_t bytes = 0;               // the text's size, counted against kMaxApplyBytes
  policy::ResourceSet resources;  // Meta::document of each is what is stored
};
// policy::parse_resources(file.yaml, file.source, file.ns).
Result<ParsedFile> parse_apply_file(const ApplyInput& file);

struct ApplyResult {
  int64_t revision = 0;  // the store's revision after the apply (unchanged if nothing changed)
  std::vector<ResourceKey> created, configured, unchanged;  // in document order
};

struct RemoveResult {
  int64_t revision = 0;  // the store's revision after the removal (unchanged if nothing was removed)
  std::vector<ResourceKey> removed, missing;  // in the order asked, each key once
};

// One registered proxy as the store keeps it. `record` is opaque here (control/endpoints.h
// registration_record writes it and parse_registration_record reads it back).
struct StoredRegistration {
  std::string key;            // the proxy's "namespace/name"
  std::string record;         // its Registration
  bool connected = false;     // its stream was up when this was written
  bool healthy = false;       // it was listed healthy
  int64_t last_seen_unix = 0; // not connected: when its stream ended (or the registry last vouched for it)
  bool operator==(const StoredRegistration&) const = default;
};

class Store {  // thread-safe; every method may be called from any thread
 public:
  virtual ~Store() = default;
  // Parses the whole multi-document text with policy::parse_resources (file:line errors use `source`);
  // any bad document → error, nothing changes. Otherwise one transaction upserts every document
  // (identical text → "unchanged", not re-written); revision bumps once if anything changed.
  Result<ApplyResult> apply(std::string_view yaml, std::string_view source);
  // apply() for several files in one transaction: each parsed on its own (errors name its file
  // and line), all or nothing, one revision bump. A resource named twice (in one file or in two)
  // is stored as its later document, as kubectl apply does. The total size counts against
  // kMaxApplyBytes, checked before anything is parsed.
  Result<ApplyResult> apply_all(const std::vector<ApplyInput>& files);
  // apply_all() of files parsed already (parse_apply_file): nothing is parsed again. With
  // `if_revision` > 0 the apply is based on that revision: when any resource it writes changed
  // after it (its revision is greater), nothing is written and the error is store.conflict, so
  // two admins editing the same resource never silently lose one update.
  virtual Result<ApplyResult> apply_parsed(std::vector<ParsedFile> files, int64_t if_revision = 0) = 0;
  // What apply_parsed() would do with `files` now (the same size and duplicate checks, the same
  // created / configured / unchanged comparison), without writing anything: --dry-run=server.
  // `revision` is the store's current one.
  Result<ApplyResult> plan(const std::vector<ParsedFile>& files) const;
  // One transaction deletes every key of `keys` (a key named twice counts once); the revision
  // bumps once if anything was deleted. An absent key: with `ignore_missing` it is listed in
  // `missing` and the others are deleted; without, nothing is deleted and the error is
  // store.not_found naming every absent key (all or nothing: `delete -f` of several documents).
  virtual Result<RemoveResult> remove_all(const std::vector<ResourceKey>& keys,
                                          bool ignore_missing = false) = 0;
  // remove_all() of one key: the new revision; absent → store.not_found.
  Result<int64_t> remove(const ResourceKey& key);
  // Sorted by kind, namespace, name; std::nullopt matches every value.
  virtual Result<std::vector<StoredResource>> list(const std::optional<std::string>& kind,
                                                   const std::optional<std::string>& ns) const = 0;
  virtual Result<std::optional<StoredResource>> get(const ResourceKey& key) const = 0;
  virtual int64_t revision() const = 0;
  // Every stored resource in one ResourceSet (Meta.document filled), in key order. Each document
  // is parsed once: when first read back from the database, or by the apply that stored it (then
  // Meta.source/line name the applied file; read back, the source is the key).
  virtual Result<policy::ResourceSet> resources() const = 0;

  // One transaction: upserts every registration of `save` (by key) and deletes the keys of
  // `remove` (an absent key is no error). A key in both is saved.
  virtual Status save_registrations(const std::vector<StoredRegistration>& save,
                                    const std::vector<std::string>& remove) = 0;
  // Every stored registration, sorted by key.
  virtual Result<std::vector<StoredRegistration>> registrations() const = 0;

  // Called (on a thread of the store's) after resources changed by another writer are visible
  // here: another control-plane replica sharing the store. SQLite has no other writer and never
  // calls it. Set once, before the first change can arrive (ControlPlane::start).
  virtual void on_external_change(std::function<void()> listener) { (void)listener; }
};

// `keys` without repeats, in first-seen order (what remove_all deletes).
std::vector<ResourceKey> unique_keys(const std::vector<ResourceKey>& keys);
// store.not_found naming `missing` ("K not found", or "K1, K2 not found").
Unexpected<Error> not_found(const std::vector<ResourceKey>& missing);

// The keys of a parsed set, each with its document text, in document order (Meta::order): what
// apply() stores. A ResourceSet holds one resource per name; store.duplicate guards that.
struct KeyedDocument {
  ResourceKey key;
  const policy::Meta* meta = nullptr;  // points into the ResourceSet (document, source, line)
};
Result<std::vector<KeyedDocument>> keyed_documents(const policy::ResourceSet& set);
// Every resource of `set` as a set of its own, with its key.
std::vector<std::pair<ResourceKey, policy::ResourceSet>> split_by_key(policy::ResourceSet&& set);
// What apply_parsed() stores: the files' sets merged in order (a later document of one name
// replaces the earlier, as kubectl apply does), after the size check (check_apply_size).
Result<policy::ResourceSet> merge_parsed_files(std::vector<ParsedFile>&& files);
// store.conflict: `key` changed at `changed_at`, after the `if_revision` an apply was based on.
Unexpected<Error> conflict(const ResourceKey& key, int64_t changed_at, int64_t if_revision);
// store.too_large when `bytes` (the total of `files` texts) is more than one apply accepts;
// `first_source` names the file when there is one.
Status check_apply_size(size_t bytes, size_t files, std::string_view first_source);

// Opens (creating if missing) the SQLite store at `path`: the file is created 0600 (and an
// existing one tightened to 0600), WAL journal, synchronous=FULL, a busy timeout, the schema
// created or checked. A file that is not an SQLite database, one that fails SQLite's integrity
// check, or another program's database is refused and never written to.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace mg::control
