// control/store.cpp — what every Store implementation shares: error codes, resource keys, the
// document list an apply stores, and apply()/apply_all() over apply_parsed() (see store.h).
#include "control/store.h"

#include <algorithm>
#include <map>
#include <set>

#include "policy/parse.h"

namespace mg::control {

const char* to_string(StoreError e) {
  switch (e) {
    case StoreError::NotFound:
      return "store.not_found";
    case StoreError::Duplicate:
      return "store.duplicate";
    case StoreError::TooLarge:
      return "store.too_large";
    case StoreError::Open:
      return "store.open";
    case StoreError::NotSqlite:
      return "store.not_sqlite";
    case StoreError::Corrupt:
      return "store.corrupt";
    case StoreError::NotMeshguard:
      return "store.not_meshguard";
    case StoreError::Schema:
      return "store.schema";
    case StoreError::Sqlite:
      return "store.sqlite";
    case StoreError::BadStored:
      return "store.bad_stored";
    case StoreError::Conflict:
      return "store.conflict";
    case StoreError::Etcd:
      return "store.etcd";
    case StoreError::Url:
      return "store.url";
    case StoreError::BadKey:
      return "store.bad_key";
  }
  return "store.unknown";
}

Unexpected<Error> fail(StoreError e, std::string message) {
  return fail(std::string(to_string(e)), std::move(message));
}

bool is(const Error& error, StoreError e) { return error.code == to_string(e); }

std::string ResourceKey::str() const { return kind + "/" + ns + "/" + name; }

namespace {

// Two documents for one resource in one set: parse_resources and ResourceSet::append keep the
// later one, so this only guards a set built some other way.
Status check_unique(const std::vector<KeyedDocument>& docs) {
  std::set<ResourceKey> seen;
  for (const auto& d : docs) {
    if (!seen.insert(d.key).second) {
      return fail(StoreError::Duplicate, d.meta->source + ":" + std::to_string(d.meta->line) + ": " +
                                             d.key.str() + " appears more than once in one apply");
    }
  }
  return {};
}

}  // namespace

Result<std::vector<KeyedDocument>> keyed_documents(const policy::ResourceSet& set) {
  std::vector<KeyedDocument> out;
  policy::for_each_kind(set, [&](const char* kind, const auto& resources) {
    for (const auto& r : resources) out.push_back({{kind, r.meta.ns, r.meta.name}, &r.meta});
  });
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.meta->order < b.meta->order; });
  if (auto s = check_unique(out); !s) return fail(s.error());
  return out;
}

std::vector<std::pair<ResourceKey, policy::ResourceSet>> split_by_key(policy::ResourceSet&& set) {
  std::vector<std::pair<ResourceKey, policy::ResourceSet>> out;
  policy::for_each_kind([&](const char* kind, auto member) {
    for (auto& r : set.*member) {
      ResourceKey key{kind, r.meta.ns, r.meta.name};
      policy::ResourceSet one;
      (one.*member).push_back(std::move(r));
      out.emplace_back(std::move(key), std::move(one));
    }
  });
  return out;
}

Status check_apply_size(size_t bytes, size_t files, std::string_view first_source) {
  if (bytes <= kMaxApplyBytes) return {};
  return fail(StoreError::TooLarge, std::string(files == 1 ? first_source : "apply") + ": " +
                                        std::to_string(bytes) + " bytes is more than one apply accepts (" +
                                        std::to_string(kMaxApplyBytes) + ")");
}

Result<ParsedFile> parse_apply_file(const ApplyInput& file) {
  auto set = policy::parse_resources(file.yaml, file.source, file.ns, file.mesh);
  if (!set) return fail(set.error());
  if (auto st = policy::check_appliable(*set); !st) return fail(st.error());
  return ParsedFile{std::string(file.source), file.yaml.size(), std::move(*set)};
}

Result<policy::ResourceSet> merge_parsed_files(std::vector<ParsedFile>&& files) {
  size_t total = 0;
  for (const auto& f : files) total += f.bytes;
  if (auto s = check_apply_size(total, files.size(), files.empty() ? "" : files[0].source); !s)
    return fail(s.error());
  policy::ResourceSet all;
  for (auto& f : files) all.append(std::move(f.resources));
  return all;
}

Unexpected<Error> conflict(const ResourceKey& key, int64_t changed_at, int64_t if_revision) {
  return fail(StoreError::Conflict, key.str() + " changed at revision " + std::to_string(changed_at) +
                                        ", after revision " + std::to_string(if_revision) +
                                        " this apply is based on: nothing was written; read it again and re-apply");
}

std::vector<ResourceKey> unique_keys(const std::vector<ResourceKey>& keys) {
  std::vector<ResourceKey> out;
  std::set<ResourceKey> seen;
  for (const auto& k : keys) {
    if (seen.insert(k).second) out.push_back(k);
  }
  return out;
}

Unexpected<Error> not_found(const std::vector<ResourceKey>& missing) {
  std::string names;
  for (const auto& k : missing) names += (names.empty() ? "" : ", ") + k.str();
  return fail(StoreError::NotFound, names + " not found");
}

Result<int64_t> Store::remove(const ResourceKey& key) {
  auto removed = remove_all({key});
  if (!removed) return fail(removed.error());
  return removed->revision;
}

Result<ApplyResult> Store::plan(const std::vector<ParsedFile>& files) const {
  size_t total = 0;
  for (const auto& f : files) total += f.bytes;
  if (auto s = check_apply_size(total, files.size(), files.empty() ? "" : files[0].source); !s)
    return fail(s.error());
  // Keys only: a later document of one name replaces the earlier, as apply_parsed() stores it.
  std::map<ResourceKey, const policy::Meta*> last;
  std::vector<ResourceKey> order;
  for (const auto& f : files) {
    auto docs = keyed_documents(f.resources);
    if (!docs) return fail(docs.error());
    for (const auto& d : *docs) {
      if (!last.count(d.key)) order.push_back(d.key);
      last[d.key] = d.meta;
    }
  }
  ApplyResult result;
  result.revision = revision();
  for (const auto& key : order) {
    auto current = get(key);
    if (!current) return fail(current.error());
    if (!*current) result.created.push_back(key);
    else if ((*current)->yaml == last[key]->document) result.unchanged.push_back(key);
    else result.configured.push_back(key);
  }
  return result;
}

Result<ApplyResult> Store::apply(std::string_view yaml, std::string_view source) {
  return apply_all({{yaml, source}});
}

Result<ApplyResult> Store::apply_all(const std::vector<ApplyInput>& files) {
  size_t total = 0;
  for (const auto& f : files) total += f.yaml.size();
  if (auto s = check_apply_size(total, files.size(), files.empty() ? "" : files[0].source); !s)
    return fail(s.error());
  std::vector<ParsedFile> parsed;
  parsed.reserve(files.size());
  for (const auto& f : files) {
    auto file = parse_apply_file(f);
    if (!file) return fail(file.error());
    parsed.push_back(std::move(*file));
  }
  return apply_parsed(std::move(parsed));
}

}  // namespace mg::control
