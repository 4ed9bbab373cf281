// control/sqlite_store.cpp — the SQLite Store (store.h). One connection guarded by one mutex:
// the control plane's write rate is human-scale (applies), and reads are served from the
// snapshot the server builds, so a connection pool would buy nothing. Durability comes from WAL
// with synchronous=FULL: COMMIT returns only after the WAL is fsynced. Every write is one
// transaction (in_transaction: BEGIN IMMEDIATE, the body, COMMIT, ROLLBACK on any failure).
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "common/thread_annotations.h"
#include "control/store.h"
#include "policy/parse.h"

namespace mg::control {

namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 5000;

Unexpected<Error> sqlite_error(sqlite3* db, const std::string& what) {
  return fail(StoreError::Sqlite, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement, reset and unbound whenever a Use of it ends, so the next caller starts
// clean even after an early return.
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  Status prepare(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK) {
      return sqlite_error(db, std::string("prepare \"") + sql + "\"");
    }
    return {};
  }

  class Use {
   public:
    explicit Use(sqlite3_stmt* s) : s_(s) {}
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    ~Use() {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
    void text(int i, std::string_view v) {
      sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    void opt_text(int i, const std::optional<std::string>& v) {
      if (v)
        text(i, *v);
      else
        sqlite3_bind_null(s_, i);
    }
    void integer(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
    int step() { return sqlite3_step(s_); }
    std::string column_text(int i) const {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
      return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
    }
    int64_t column_int(int i) const { return sqlite3_column_int64(s_, i); }

   private:
    sqlite3_stmt* s_;
  };
  Use use() const { return Use(stmt_); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

Status exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string why = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return fail(StoreError::Sqlite, std::string(sql).substr(0, 40) + ": " + why);
  }
  return {};
}

// Refuses anything that is not (or not yet) an SQLite database before SQLite opens it, so a
// wrong --data-dir can never be "repaired" into an empty store. An empty file is fine.
Status check_existing_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return fail(StoreError::Open, path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return fail(StoreError::NotSqlite, path + ": not a regular file");
  if (st.st_size == 0) return {};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(StoreError::Open, path + ": " + std::strerror(errno));
  char header[16] = {};
  const ssize_t n = ::read(fd, header, sizeof header);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof header) || std::memcmp(header, "SQLite format 3", 16) != 0) {
    return fail(StoreError::NotSqlite,
                path + ": exists and is not an SQLite database (refusing to touch it)");
  }
  return {};
}

// The database file is created 0600 before SQLite sees it; SQLite gives its -wal and -shm files
// the database file's mode, so the whole store stays owner-only.
Status create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(StoreError::Open, path + ": " + std::strerror(errno));
  const int rc = ::fchmod(fd, 0600);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) return fail(StoreError::Open, path + ": chmod 0600: " + std::strerror(saved));
  return {};
}

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path) {
    if (auto s = check_existing_file(path); !s) return fail(s.error());
    if (auto s = create_private_file(path); !s) return fail(s.error());
    std::unique_ptr<SqliteStore> store(new SqliteStore());
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    const int rc = sqlite3_open_v2(path.c_str(), &store->db_, flags, nullptr);
    store->conn_.reset(store->db_);  // a handle comes back even on failure, and must be closed
    if (rc != SQLITE_OK) return sqlite_error(store->db_, "open " + path);
    sqlite3* db = store->db_;
    MutexLock lock(store->mu_);  // nobody else has it yet; the helpers below expect it held
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    // The first read of the file: a damaged header or page shows up here, before any write.
    if (auto s = store->check_integrity(path); !s) return fail(s.error());
    if (auto s = store->check_ours(path); !s) return fail(s.error());
    if (auto s = store->pragma_text("PRAGMA journal_mode=WAL", "wal"); !s) return fail(s.error());
    if (auto s = exec(db, "PRAGMA synchronous=FULL"); !s) return fail(s.error());
    if (auto s = store->init_schema(); !s) return fail(s.error());
    if (auto s = store->prepare(); !s) return fail(s.error());
    if (auto s = store->load_revision(); !s) return fail(s.error());
    lock.unlock();
    return std::unique_ptr<Store>(std::move(store));
  }

  Result<ApplyResult> apply_parsed(std::vector<ParsedFile> files, int64_t if_revision = 0) override {
    auto merged = merge_parsed_files(std::move(files));
    if (!merged) return fail(merged.error());
    policy::ResourceSet& all = *merged;
    auto docs = keyed_documents(all);  // points into `all`, which outlives it
    if (!docs) return fail(docs.error());

    MutexLock lock(mu_);
    ApplyResult result;
    int64_t current_revision = 0;
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    auto st = in_transaction([&]() -> Status {
      mu_.assert_held();  // in_transaction runs the body with it
      auto rev = read_revision();
      if (!rev) return fail(rev.error());
      current_revision = *rev;
      const int64_t next = current_revision + 1;
      for (const auto& d : *docs) {
        auto current = read_yaml(d.key);
        if (!current) return fail(current.error());
        if (if_revision > 0 && *current && (*current)->second > if_revision)
          return conflict(d.key, (*current)->second, if_revision);
        if (*current && (*current)->first == d.meta->document) {
          result.unchanged.push_back(d.key);
          continue;
        }
        const Statement& st = *current ? update_ : insert_;
        auto u = st.use();
        u.text(1, d.key.kind);
        u.text(2, d.key.ns);
        u.text(3, d.key.name);
        u.text(4, d.meta->document);
        u.integer(5, next);
        u.integer(6, now);
        if (u.step() != SQLITE_DONE) return sqlite_error(db_, "write " + d.key.str());
        (*current ? result.configured : result.created).push_back(d.key);
      }
      if (!result.created.empty() || !result.configured.empty()) return write_revision(next);
      return {};
    });
    if (!st) return fail(st.error());
    const bool changed = !result.created.empty() || !result.configured.empty();
    result.revision = changed ? current_revision + 1 : current_revision;
    revision_.store(result.revision);
    if (parsed_ && changed) {
      // What resources() hands out next: the documents just stored, as parsed for this apply.
      std::set<ResourceKey> written(result.created.begin(), result.created.end());
      written.insert(result.configured.begin(), result.configured.end());
      for (auto& [key, one] : split_by_key(std::move(all))) {
        if (written.count(key)) (*parsed_)[key] = std::move(one);
      }
    }
    return result;
  }

  Result<RemoveResult> remove_all(const std::vector<ResourceKey>& keys, bool ignore_missing) override {
    MutexLock lock(mu_);
    RemoveResult result;
    auto st = in_transaction([&]() -> Status {
      mu_.assert_held();  // in_transaction runs the body with it
      auto rev = read_revision();
      if (!rev) return fail(rev.error());
      result.revision = *rev;
      for (const auto& key : unique_keys(keys)) {
        auto u = delete_.use();
        u.text(1, key.kind);
        u.text(2, key.ns);
        u.text(3, key.name);
        if (u.step() != SQLITE_DONE) return sqlite_error(db_, "delete " + key.str());
        (sqlite3_changes(db_) == 0 ? result.missing : result.removed).push_back(key);
      }
      // Rolled back: nothing of it was deleted.
      if (!result.missing.empty() && !ignore_missing) return not_found(result.missing);
      if (result.removed.empty()) return {};
      result.revision = *rev + 1;
      return write_revision(result.revision);
    });
    if (!st) return fail(st.error());
    revision_.store(result.revision);
    if (parsed_) {
      for (const auto& key : result.removed) parsed_->erase(key);
    }
    return result;
  }

  Result<std::vector<StoredResource>> list(const std::optional<std::string>& kind,
                                           const std::optional<std::string>& ns) const override {
    MutexLock lock(mu_);
    auto u = list_.use();
    u.opt_text(1, kind);
    u.opt_text(2, ns);
    return read_rows(u, "list");
  }

  Result<std::optional<StoredResource>> get(const ResourceKey& key) const override {
    MutexLock lock(mu_);
    auto u = get_.use();
    u.text(1, key.kind);
    u.text(2, key.ns);
    u.text(3, key.name);
    auto rows = read_rows(u, "get " + key.str());
    if (!rows) return fail(rows.error());
    if (rows->empty()) return std::optional<StoredResource>();
    return std::optional<StoredResource>(std::move(rows->front()));
  }

  int64_t revision() const override { return revision_.load(); }

  Status save_registrations(const std::vector<StoredRegistration>& save,
                            const std::vector<std::string>& remove) override {
    if (save.empty() && remove.empty()) return {};
    MutexLock lock(mu_);
    return in_transaction([&]() -> Status {
      mu_.assert_held();  // in_transaction runs the body with it
      for (const auto& key : remove) {
        auto u = delete_registration_.use();
        u.text(1, key);
        if (u.step() != SQLITE_DONE) return sqlite_error(db_, "delete registration " + key);
      }
      for (const auto& r : save) {
        auto u = put_registration_.use();
        u.text(1, r.key);
        u.text(2, r.record);
        u.integer(3, r.connected ? 1 : 0);
        u.integer(4, r.healthy ? 1 : 0);
        u.integer(5, r.last_seen_unix);
        if (u.step() != SQLITE_DONE) return sqlite_error(db_, "write registration " + r.key);
      }
      return {};
    });
  }

  Result<std::vector<StoredRegistration>> registrations() const override {
    MutexLock lock(mu_);
    auto u = all_registrations_.use();
    std::vector<StoredRegistration> out;
    for (;;) {
      const int rc = u.step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return sqlite_error(db_, "read registrations");
      out.push_back({u.column_text(0), u.column_text(1), u.column_int(2) != 0, u.column_int(3) != 0,
                     u.column_int(4)});
    }
  }

  Result<policy::ResourceSet> resources() const override {
    MutexLock lock(mu_);
    if (!parsed_) {
      auto u = all_.use();
      auto rows = read_rows(u, "read all");
      if (!rows) return fail(rows.error());
      std::map<ResourceKey, policy::ResourceSet> parsed;
      for (const auto& row : *rows) {
        // Parsed alone, with the key as its source, so an error names the stored resource.
        auto set = policy::parse_resources(row.yaml, row.key.str());
        if (!set) return fail(StoreError::BadStored, "stored " + set.error().message);
        if (set->size() != 1)
          return fail(StoreError::BadStored, "stored " + row.key.str() + " is not exactly one resource");
        parsed.emplace(row.key, std::move(*set));
      }
      parsed_ = std::move(parsed);
    }
    policy::ResourceSet out;
    for (const auto& [key, one] : *parsed_) {
      policy::ResourceSet copy = one;
      out.append(std::move(copy));
    }
    return out;
  }

 private:
  SqliteStore() = default;

  Status check_integrity(const std::string& path) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA quick_check", -1, &raw, nullptr) != SQLITE_OK) {
      return corrupt(path);
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
    const int rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW) return corrupt(path);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    if (!text || std::string_view(text) != "ok") {
      return fail(StoreError::Corrupt, path + ": SQLite integrity check failed: " + (text ? text : "?"));
    }
    return {};
  }

  // Another program's database (tables, but not ours) is refused before anything is written to
  // it, switching it to WAL included.
  Status check_ours(const std::string& path) {
    sqlite3_stmt* raw = nullptr;
    const char* sql =
        "SELECT count(*), coalesce(sum(name = 'schema_version'), 0) FROM sqlite_master WHERE type = 'table'";
    if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) return sqlite_error(db_, "read schema");
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return sqlite_error(db_, "read schema");
    if (sqlite3_column_int64(stmt.get(), 0) > 0 && sqlite3_column_int64(stmt.get(), 1) == 0) {
      return fail(StoreError::NotMeshguard,
                  path + ": an SQLite database that is not a meshguard store (refusing to touch it)");
    }
    return {};
  }

  Status corrupt(const std::string& path) {
    const int code = sqlite3_errcode(db_);
    const std::string why = sqlite3_errmsg(db_);
    if ((code & 0xff) == SQLITE_NOTADB) return fail(StoreError::NotSqlite, path + ": " + why);
    return fail(StoreError::Corrupt, path + ": " + why);
  }

  Status pragma_text(const char* sql, std::string_view expect) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &raw, nullptr) != SQLITE_OK) return sqlite_error(db_, sql);
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) return sqlite_error(db_, sql);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    if (!text || std::string_view(text) != expect) {
      return fail(StoreError::Sqlite, std::string(sql) + " answered \"" + (text ? text : "") + "\"");
    }
    return {};
  }

  Status init_schema() MG_REQUIRES(mu_) {
    return in_transaction([&]() -> Status {
      mu_.assert_held();  // in_transaction runs the body with it
      if (auto s = exec(db_,
                        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                        "CREATE TABLE IF NOT EXISTS store_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
                        "  revision INTEGER NOT NULL);"
                        "CREATE TABLE IF NOT EXISTS resources (kind TEXT NOT NULL, ns TEXT NOT NULL,"
                        "  name TEXT NOT NULL, yaml TEXT NOT NULL, revision INTEGER NOT NULL,"
                        "  updated_unix INTEGER NOT NULL, PRIMARY KEY (kind, ns, name)) WITHOUT ROWID;"
                        // Added without a schema version bump: a build that does not know the
                        // table ignores it, so rolling back keeps working.
                        "CREATE TABLE IF NOT EXISTS registrations (key TEXT PRIMARY KEY, record TEXT NOT NULL,"
                        "  connected INTEGER NOT NULL, healthy INTEGER NOT NULL,"
                        "  last_seen_unix INTEGER NOT NULL) WITHOUT ROWID;");
          !s) {
        return s;
      }
      Statement version;
      if (auto s = version.prepare(db_, "SELECT version FROM schema_version"); !s) return s;
      auto u = version.use();
      int rc = u.step();
      if (rc == SQLITE_DONE) {
        return exec(db_,
                    "INSERT INTO schema_version (version) VALUES (1);"
                    "INSERT OR IGNORE INTO store_state (id, revision) VALUES (1, 0);");
      }
      if (rc != SQLITE_ROW) return sqlite_error(db_, "read schema version");
      if (u.column_int(0) != kSchemaVersion) {
        return fail(StoreError::Schema, "the store has schema version " + std::to_string(u.column_int(0)) +
                                            "; this build knows version " + std::to_string(kSchemaVersion));
      }
      return {};
    });
  }

  Status prepare() MG_REQUIRES(mu_) {
    const char* cols = "kind, ns, name, yaml, revision, updated_unix";
    const std::string get =
        std::string("SELECT ") + cols + " FROM resources WHERE kind = ?1 AND ns = ?2 AND name = ?3";
    const std::string list = std::string("SELECT ") + cols +
                             " FROM resources WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR ns = ?2)"
                             " ORDER BY kind, ns, name";
    const std::string all = std::string("SELECT ") + cols + " FROM resources ORDER BY kind, ns, name";
    for (auto [stmt, sql] : {std::pair{&get_, get.c_str()},
                             {&list_, list.c_str()},
                             {&all_, all.c_str()},
                             {&insert_,
                              "INSERT INTO resources (kind, ns, name, yaml, revision, updated_unix)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
                             {&update_,
                              "UPDATE resources SET yaml = ?4, revision = ?5, updated_unix = ?6"
                              " WHERE kind = ?1 AND ns = ?2 AND name = ?3"},
                             {&delete_, "DELETE FROM resources WHERE kind = ?1 AND ns = ?2 AND name = ?3"},
                             {&set_revision_, "UPDATE store_state SET revision = ?1 WHERE id = 1"},
                             {&put_registration_,
                              "INSERT OR REPLACE INTO registrations (key, record, connected, healthy, last_seen_unix)"
                              " VALUES (?1, ?2, ?3, ?4, ?5)"},
                             {&delete_registration_, "DELETE FROM registrations WHERE key = ?1"},
                             {&all_registrations_,
                              "SELECT key, record, connected, healthy, last_seen_unix FROM registrations ORDER BY key"},
                             {&get_revision_, "SELECT revision FROM store_state WHERE id = 1"}}) {
      if (auto s = stmt->prepare(db_, sql); !s) return s;
    }
    return {};
  }

  Status load_revision() MG_REQUIRES(mu_) {
    auto rev = read_revision();
    if (!rev) return fail(rev.error());
    revision_.store(*rev);
    return {};
  }

  // Read inside each write transaction rather than trusting revision_, so even a second process
  // writing the same file (never intended) could not make two changes share a revision.
  Result<int64_t> read_revision() MG_REQUIRES(mu_) {
    auto u = get_revision_.use();
    if (u.step() != SQLITE_ROW) return fail(StoreError::Corrupt, "the store has no revision row");
    return u.column_int(0);
  }

  Status write_revision(int64_t revision) MG_REQUIRES(mu_) {
    auto u = set_revision_.use();
    u.integer(1, revision);
    if (u.step() != SQLITE_DONE || sqlite3_changes(db_) != 1) return sqlite_error(db_, "write revision");
    return {};
  }

  // The stored text of `key` and its revision, or nullopt when absent. Caller holds mu_.
  Result<std::optional<std::pair<std::string, int64_t>>> read_yaml(const ResourceKey& key) MG_REQUIRES(mu_) {
    using Row = std::optional<std::pair<std::string, int64_t>>;
    auto u = get_.use();
    u.text(1, key.kind);
    u.text(2, key.ns);
    u.text(3, key.name);
    const int rc = u.step();
    if (rc == SQLITE_DONE) return Row();
    if (rc != SQLITE_ROW) return sqlite_error(db_, "read " + key.str());
    return Row(std::pair{u.column_text(3), u.column_int(4)});
  }

  Result<std::vector<StoredResource>> read_rows(Statement::Use& u, const std::string& what) const {
    std::vector<StoredResource> rows;
    for (;;) {
      const int rc = u.step();
      if (rc == SQLITE_DONE) return rows;
      if (rc != SQLITE_ROW) return sqlite_error(db_, what);
      StoredResource r;
      r.key = {u.column_text(0), u.column_text(1), u.column_text(2)};
      r.yaml = u.column_text(3);
      r.revision = u.column_int(4);
      r.updated_unix = u.column_int(5);
      rows.push_back(std::move(r));
    }
  }

  // BEGIN IMMEDIATE, `body`, COMMIT; on any failure ROLLBACK (nothing to report from it: either
  // the transaction is rolled back or SQLite already did it) and the failure.
  template <class Body>
  Status in_transaction(Body&& body) MG_REQUIRES(mu_) {
    if (auto s = exec(db_, "BEGIN IMMEDIATE"); !s) return s;
    Status s = body();
    if (s) s = exec(db_, "COMMIT");
    if (!s) (void)exec(db_, "ROLLBACK");
    return s;
  }

  // Declared before the statements so it is destroyed after them: sqlite3_close refuses to close
  // a connection whose statements are still alive.
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> conn_{nullptr, sqlite3_close};
  sqlite3* db_ = nullptr;  // == conn_.get(); used under mu_ (SQLITE_OPEN_NOMUTEX)
  mutable Mutex mu_;
  std::atomic<int64_t> revision_{0};
  Statement get_ MG_GUARDED_BY(mu_), insert_ MG_GUARDED_BY(mu_), update_ MG_GUARDED_BY(mu_),
      delete_ MG_GUARDED_BY(mu_), list_ MG_GUARDED_BY(mu_), all_ MG_GUARDED_BY(mu_),
      set_revision_ MG_GUARDED_BY(mu_), get_revision_ MG_GUARDED_BY(mu_), put_registration_ MG_GUARDED_BY(mu_),
      delete_registration_ MG_GUARDED_BY(mu_), all_registrations_ MG_GUARDED_BY(mu_);
  // The stored documents parsed, by key: filled by the first resources() (each stored document
  // parsed once), then kept in step by every apply (with the documents it parsed) and remove.
  mutable std::optional<std::map<ResourceKey, policy::ResourceSet>> parsed_ MG_GUARDED_BY(mu_);
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) { return SqliteStore::open(path); }

}  // namespace mg::control
