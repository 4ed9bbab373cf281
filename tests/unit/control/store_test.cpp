// control/store.h with a real SQLite file in a fresh temporary directory: apply / get / list /
// remove, all-or-nothing applies, unchanged detection, durability across reopen, file modes, and
// refusal (without writing) of files that are not a healthy SQLite database.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "control/store.h"

namespace mg::control {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mg-store-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string ap(const std::string& name, const std::string& ns, const std::string& action = "DENY") {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  action: " + action + "\n";
}

std::string pa(const std::string& name, const std::string& ns, const std::string& mode) {
  return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  mtls:\n    mode: " + mode + "\n";
}

const std::string kMesh =
    "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n  trustDomain: "
    "example.org\n";

std::unique_ptr<Store> open_ok(const std::string& path) {
  auto s = open_sqlite_store(path);
  if (!s) ADD_FAILURE() << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

TEST(SqliteStore, ApplyGetListRemove) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->revision(), 0);

  const std::string text = ap("deny-all", "foo") + "---\n" + pa("strict", "foo", "STRICT") + "---\n" + kMesh;
  auto r = store->apply(text, "policies.yaml");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->revision, 1);
  ASSERT_EQ(r->created.size(), 3u);
  EXPECT_EQ(r->created[0], (ResourceKey{"AuthorizationPolicy", "foo", "deny-all"}));
  EXPECT_EQ(r->created[1], (ResourceKey{"PeerAuthentication", "foo", "strict"}));
  EXPECT_EQ(r->created[2], (ResourceKey{"Mesh", "", "default"}));
  EXPECT_TRUE(r->configured.empty());
  EXPECT_TRUE(r->unchanged.empty());
  EXPECT_EQ(store->revision(), 1);

  auto got = store->get({"PeerAuthentication", "foo", "strict"});
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->yaml, "---\n" + pa("strict", "foo", "STRICT"));  // the document as applied
  EXPECT_EQ((*got)->revision, 1);
  EXPECT_GT((*got)->updated_unix, 1600000000);
  EXPECT_EQ((*got)->key.str(), "PeerAuthentication/foo/strict");
  auto missing = store->get({"PeerAuthentication", "bar", "strict"});
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(store->apply(ap("allow", "bar", "ALLOW"), "more.yaml"));
  auto all = store->list(std::nullopt, std::nullopt);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 4u);  // sorted by kind, ns, name
  EXPECT_EQ((*all)[0].key.str(), "AuthorizationPolicy/bar/allow");
  EXPECT_EQ((*all)[1].key.str(), "AuthorizationPolicy/foo/deny-all");
  EXPECT_EQ((*all)[2].key.str(), "Mesh//default");
  EXPECT_EQ((*all)[3].key.str(), "PeerAuthentication/foo/strict");
  auto policies = store->list(std::string("AuthorizationPolicy"), std::nullopt);
  ASSERT_TRUE(policies);
  EXPECT_EQ(policies->size(), 2u);
  auto in_foo = store->list(std::nullopt, std::string("foo"));
  ASSERT_TRUE(in_foo);
  EXPECT_EQ(in_foo->size(), 2u);
  auto both = store->list(std::string("AuthorizationPolicy"), std::string("bar"));
  ASSERT_TRUE(both);
  ASSERT_EQ(both->size(), 1u);
  EXPECT_EQ((*both)[0].revision, 2);

  auto removed = store->remove({"AuthorizationPolicy", "foo", "deny-all"});
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_EQ(*removed, 3);
  EXPECT_EQ(store->revision(), 3);
  auto again = store->remove({"AuthorizationPolicy", "foo", "deny-all"});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, "store.not_found");
  EXPECT_EQ(store->revision(), 3);

  auto set = store->resources();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(set->size(), 3u);
  ASSERT_EQ(set->meshes.size(), 1u);
  EXPECT_EQ(set->meshes[0].trust_domain, "example.org");
  EXPECT_EQ(set->meshes[0].meta.document, "---\n" + kMesh);
  ASSERT_EQ(set->peer_authentications.size(), 1u);
  EXPECT_EQ(set->peer_authentications[0].meta.document, "---\n" + pa("strict", "foo", "STRICT"));
}

TEST(SqliteStore, UnchangedAndConfigured) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  const std::string text = ap("a", "ns") + "---\n" + ap("b", "ns");
  ASSERT_TRUE(store->apply(text, "x.yaml"));
  ASSERT_EQ(store->revision(), 1);

  auto same = store->apply(text, "x.yaml");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->revision, 1);  // nothing changed: no new revision
  EXPECT_EQ(same->unchanged.size(), 2u);
  EXPECT_TRUE(same->created.empty() && same->configured.empty());
  EXPECT_EQ((*store->get({"AuthorizationPolicy", "ns", "a"}))->revision, 1);

  auto changed =
      store->apply(ap("a", "ns") + "---\n" + ap("b", "ns", "ALLOW") + "---\n" + ap("c", "ns"), "x.yaml");
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->revision, 2);  // one bump for the whole apply
  ASSERT_EQ(changed->unchanged.size(), 1u);
  ASSERT_EQ(changed->configured.size(), 1u);
  ASSERT_EQ(changed->created.size(), 1u);
  EXPECT_EQ(changed->configured[0].name, "b");
  EXPECT_EQ(changed->created[0].name, "c");
  EXPECT_EQ((*store->get({"AuthorizationPolicy", "ns", "a"}))->revision, 1);
  EXPECT_EQ((*store->get({"AuthorizationPolicy", "ns", "b"}))->revision, 2);
  auto empty = store->apply("# nothing here\n", "empty.yaml");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->revision, 2);
}

// apply --if-revision: an apply based on a revision some resource it writes changed after is
// refused (store.conflict) and writes nothing, so a stale edit never overwrites a newer one.
TEST(SqliteStore, IfRevisionRefusesAStaleEdit) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->apply(ap("a", "ns") + "---\n" + ap("b", "ns"), "x.yaml"));  // revision 1
  auto parsed = [](const std::string& text) {
    std::vector<ParsedFile> files;
    files.push_back(*parse_apply_file({text, "edit.yaml"}));
    return files;
  };
  // Admin one edits a from revision 1: fine (a is at 1).
  auto first = store->apply_parsed(parsed(ap("a", "ns", "ALLOW")), 1);
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_EQ(first->revision, 2);
  // Admin two edited a from revision 1 too: refused, a keeps admin one's edit, b is untouched.
  auto second = store->apply_parsed(parsed(ap("a", "ns", "AUDIT") + "---\n" + ap("b", "ns", "ALLOW")), 1);
  ASSERT_FALSE(second);
  EXPECT_TRUE(is(second.error(), StoreError::Conflict)) << second.error().to_string();
  EXPECT_NE(second.error().message.find("AuthorizationPolicy/ns/a changed at revision 2"), std::string::npos)
      << second.error().message;
  EXPECT_EQ(store->revision(), 2);
  EXPECT_NE((*store->get({"AuthorizationPolicy", "ns", "a"}))->yaml.find("ALLOW"), std::string::npos);
  EXPECT_EQ((*store->get({"AuthorizationPolicy", "ns", "b"}))->revision, 1);
  // Read again (revision 2) and re-applied: accepted. A resource created after the base conflicts too.
  ASSERT_TRUE(store->apply_parsed(parsed(ap("a", "ns", "AUDIT")), 2));
  ASSERT_TRUE(store->apply(ap("c", "ns"), "c.yaml"));  // revision 4
  auto created_meanwhile = store->apply_parsed(parsed(ap("c", "ns", "ALLOW")), 3);
  ASSERT_FALSE(created_meanwhile);
  EXPECT_TRUE(is(created_meanwhile.error(), StoreError::Conflict));
}

// --dry-run=server: plan() answers what apply_parsed() would, and writes nothing.
TEST(SqliteStore, PlanComparesWithoutWriting) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->apply(ap("a", "ns") + "---\n" + ap("b", "ns"), "x.yaml"));
  auto parse = [](const std::string& text) {
    auto f = parse_apply_file({text, "y.yaml"});
    EXPECT_TRUE(f) << (f ? "" : f.error().to_string());
    return std::move(*f);
  };
  std::vector<ParsedFile> files;
  files.push_back(parse(ap("a", "ns") + "---\n" + ap("b", "ns", "ALLOW")));
  files.push_back(parse(ap("c", "ns") + "---\n" + ap("c", "ns", "ALLOW")));  // named twice: one key
  auto plan = store->plan(files);
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_EQ(plan->revision, 1);
  ASSERT_EQ(plan->unchanged.size(), 1u);
  ASSERT_EQ(plan->configured.size(), 1u);
  ASSERT_EQ(plan->created.size(), 1u);
  EXPECT_EQ(plan->unchanged[0].name, "a");
  EXPECT_EQ(plan->configured[0].name, "b");
  EXPECT_EQ(plan->created[0].name, "c");
  EXPECT_EQ(store->revision(), 1);
  EXPECT_FALSE(*store->get({"AuthorizationPolicy", "ns", "c"}));
  EXPECT_NE((*store->get({"AuthorizationPolicy", "ns", "b"}))->yaml.find("DENY"), std::string::npos);
  // The same answer apply_parsed() then gives.
  auto applied = store->apply_parsed(std::move(files));
  ASSERT_TRUE(applied);
  EXPECT_EQ(applied->created, plan->created);
  EXPECT_EQ(applied->configured, plan->configured);
  EXPECT_EQ(applied->unchanged, plan->unchanged);
}

// resources() parses what it reads back once and then follows applies and removes with the
// documents they parsed: after each change it must equal what a fresh read of the file gives.
TEST(SqliteStore, ResourcesFollowAppliesAndRemoves) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  auto documents = [](const Store& s) {
    std::vector<std::string> out;
    auto set = s.resources();
    if (!set) ADD_FAILURE() << set.error().to_string();
    if (!set) return out;
    for (const auto& p : set->authorization_policies)
      out.push_back(p.meta.full_name() + " " + policy::to_string(p.action) + " " + p.meta.document);
    for (const auto& p : set->peer_authentications) out.push_back(p.meta.full_name() + " " + p.meta.document);
    return out;
  };
  auto reopened = [&] {
    auto again = open_ok(path);
    return again ? documents(*again) : std::vector<std::string>{};
  };
  ASSERT_TRUE(store->apply(ap("b", "ns"), "x.yaml"));
  EXPECT_EQ(documents(*store).size(), 1u);  // the first read fills what later calls keep in step

  // configured, created and unchanged in one apply, through the parsed path the admin service uses
  auto file = parse_apply_file(
      {ap("b", "ns", "ALLOW") + "---\n" + ap("a", "ns") + "---\n" + pa("p", "ns", "STRICT"), "y.yaml"});
  ASSERT_TRUE(file) << file.error().to_string();
  std::vector<ParsedFile> files;
  files.push_back(std::move(*file));
  auto applied = store->apply_parsed(std::move(files));
  ASSERT_TRUE(applied) << applied.error().to_string();
  EXPECT_EQ(applied->created.size(), 2u);
  EXPECT_EQ(applied->configured.size(), 1u);
  auto now = documents(*store);
  ASSERT_EQ(now.size(), 3u);
  EXPECT_EQ(now, reopened());
  EXPECT_EQ(now[1].rfind(std::string("ns/b ") + policy::to_string(policy::Action::Allow) + " ", 0), 0u)
      << now[1];

  ASSERT_TRUE(store->remove({"AuthorizationPolicy", "ns", "a"}));
  now = documents(*store);
  EXPECT_EQ(now.size(), 2u);
  EXPECT_EQ(now, reopened());

  auto missing = store->remove({"AuthorizationPolicy", "ns", "a"});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(is(missing.error(), StoreError::NotFound));
  EXPECT_STREQ(to_string(StoreError::NotFound), "store.not_found");
}

// delete -f of several documents: one transaction, one revision bump; a missing key deletes
// nothing (store.not_found naming each missing one) unless ignore_missing; durable on reopen.
TEST(SqliteStore, RemoveAllIsAllOrNothing) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->apply(ap("a", "ns") + "---\n" + ap("b", "ns") + "---\n" + ap("c", "ns") + "---\n" +
                               pa("strict", "ns", "STRICT"),
                           "four.yaml"));
  ASSERT_EQ(store->revision(), 1);
  const ResourceKey a{"AuthorizationPolicy", "ns", "a"}, b{"AuthorizationPolicy", "ns", "b"},
      c{"AuthorizationPolicy", "ns", "c"}, strict{"PeerAuthentication", "ns", "strict"},
      gone{"AuthorizationPolicy", "ns", "gone"}, gone2{"PeerAuthentication", "other", "gone"};
  auto count = [&store] {
    auto all = store->list(std::nullopt, std::nullopt);
    return all ? all->size() : size_t{999};
  };

  // Two of them missing: nothing deleted, both named, no revision bump.
  auto refused = store->remove_all({a, gone, b, gone2});
  ASSERT_FALSE(refused);
  EXPECT_TRUE(is(refused.error(), StoreError::NotFound));
  EXPECT_EQ(refused.error().message, "AuthorizationPolicy/ns/gone, PeerAuthentication/other/gone not found");
  EXPECT_EQ(count(), 4u);
  EXPECT_EQ(store->revision(), 1);
  ASSERT_TRUE(store->resources());
  EXPECT_EQ(store->resources()->size(), 4u);

  // Several kinds at once (a key named twice counts once): one revision.
  auto removed = store->remove_all({a, strict, a, b});
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_EQ(removed->revision, 2);
  EXPECT_EQ(removed->removed, (std::vector<ResourceKey>{a, strict, b}));
  EXPECT_TRUE(removed->missing.empty());
  EXPECT_EQ(store->revision(), 2);
  EXPECT_EQ(count(), 1u);
  EXPECT_EQ(store->resources()->size(), 1u);  // the parsed cache follows

  // ignore_missing: the present one deleted, the others listed.
  auto ignoring = store->remove_all({gone, c, a}, true);
  ASSERT_TRUE(ignoring) << ignoring.error().to_string();
  EXPECT_EQ(ignoring->removed, (std::vector<ResourceKey>{c}));
  EXPECT_EQ(ignoring->missing, (std::vector<ResourceKey>{gone, a}));
  EXPECT_EQ(ignoring->revision, 3);
  EXPECT_EQ(count(), 0u);
  // Nothing there at all: no bump.
  auto nothing = store->remove_all({a, b}, true);
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->removed.empty());
  EXPECT_EQ(nothing->revision, 3);
  EXPECT_EQ(store->revision(), 3);

  store.reset();
  auto reopened = open_ok(path);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->revision(), 3);
  auto left = reopened->list(std::nullopt, std::nullopt);
  ASSERT_TRUE(left);
  EXPECT_TRUE(left->empty());
}

TEST(SqliteStore, BadApplyChangesNothing) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->apply(ap("a", "ns"), "first.yaml"));
  const auto before = store->list(std::nullopt, std::nullopt);
  ASSERT_TRUE(before);

  struct Case {
    std::string text, code, where;
  };
  const std::vector<Case> cases = {
      {ap("a", "ns", "ALLOW") + "---\n" + ap("b", "ns", "NOPE"), "policy.invalid", "bad.yaml:15:"},
      {ap("new", "ns") +
           "---\napiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: Other_Mesh\n",
       "policy.bad_mesh_name", "bad.yaml:12:"},
      {ap("x", "ns") + "---\nkind: [unclosed\n", "policy.bad_yaml", "bad.yaml:"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    auto r = store->apply(c.text, "bad.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_NE(r.error().message.find(c.where), std::string::npos) << r.error().message;
    EXPECT_EQ(store->revision(), 1);
    auto after = store->list(std::nullopt, std::nullopt);
    ASSERT_TRUE(after);
    ASSERT_EQ(after->size(), before->size());
    EXPECT_EQ((*after)[0].yaml, (*before)[0].yaml);
  }
  auto big = store->apply(std::string(kMaxApplyBytes + 1, '#'), "big.yaml");
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "store.too_large");
}

TEST(SqliteStore, ApplyAllIsOneTransactionOverSeveralFiles) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  const std::string a = ap("a", "ns"), b = pa("b", "ns", "STRICT") + "---\n" + kMesh;
  auto r = store->apply_all({{a, "a.yaml"}, {b, "b.yaml"}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->revision, 1);
  ASSERT_EQ(r->created.size(), 3u);
  EXPECT_EQ(r->created[0].name, "a");
  EXPECT_EQ(r->created[1].name, "b");
  EXPECT_EQ(r->created[2].kind, "Mesh");
  EXPECT_EQ((*store->get({"AuthorizationPolicy", "ns", "a"}))->yaml, a);  // each file's own text

  // A bad second file: its own name and line, and the good first file is not applied either.
  auto bad = store->apply_all({{ap("new", "ns"), "ok.yaml"}, {pa("c", "ns", "strict"), "bad.yaml"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("bad.yaml:8:"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(*store->get({"AuthorizationPolicy", "ns", "new"}));
  const std::string half(kMaxApplyBytes / 2 + 1, '#');
  auto big = store->apply_all({{half, "h1.yaml"}, {half, "h2.yaml"}});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "store.too_large");
  EXPECT_EQ(store->revision(), 1);
  auto same = store->apply_all({{a, "a.yaml"}, {b, "b.yaml"}});
  ASSERT_TRUE(same);
  EXPECT_EQ(same->unchanged.size(), 3u);
  EXPECT_EQ(same->revision, 1);
}

TEST(SqliteStore, SameNameTwiceStoresTheLaterDocument) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  // In one file: the later document is stored, once.
  const std::string later = ap("a", "ns", "DENY");
  auto one = store->apply(ap("a", "ns", "ALLOW") + "---\n" + ap("b", "ns") + "---\n" + later, "one.yaml");
  ASSERT_TRUE(one) << one.error().to_string();
  ASSERT_EQ(one->created.size(), 2u);
  EXPECT_EQ(one->created[0].name, "b");  // document order: b came before the winning a
  EXPECT_EQ(one->created[1].name, "a");
  auto stored = store->get({"AuthorizationPolicy", "ns", "a"});
  ASSERT_TRUE(stored && *stored);
  EXPECT_NE((*stored)->yaml.find("action: DENY"), std::string::npos) << (*stored)->yaml;
  EXPECT_EQ((*stored)->yaml.find("action: ALLOW"), std::string::npos) << (*stored)->yaml;
  ASSERT_TRUE(store->resources());  // from here on resources() follows applies without reading back
  // Across files of one apply: the later file's document.
  auto two = store->apply_all({{ap("x", "ns", "DENY"), "one.yaml"}, {ap("x", "ns", "ALLOW"), "two.yaml"}});
  ASSERT_TRUE(two) << two.error().to_string();
  ASSERT_EQ(two->created.size(), 1u);
  EXPECT_EQ((*store->get({"AuthorizationPolicy", "ns", "x"}))->yaml, ap("x", "ns", "ALLOW"));
  auto all = store->resources();
  ASSERT_TRUE(all) << all.error().to_string();
  ASSERT_EQ(all->authorization_policies.size(), 3u);
  EXPECT_EQ(all->authorization_policies[2].meta.full_name(), "ns/x");
  EXPECT_EQ(all->authorization_policies[2].action, policy::Action::Allow);
}

TEST(SqliteStore, TheApplysNamespaceGoesIntoTheKeyAndTheStoredText) {
  // kubectl apply -n: a document without metadata.namespace lands in the apply's namespace, and
  // its stored text says so (it is parsed alone when the store is opened again, and by proxies).
  TempDir dir;
  const std::string path = dir.file("store.db");
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->resources());
  const std::string mesh_wide =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\nspec:\n  "
      "mtls:\n"
      "    mode: STRICT\n";
  auto applied = store->apply_all({{mesh_wide, "strict.yaml", "istio-system"}});
  ASSERT_TRUE(applied) << applied.error().to_string();
  ASSERT_EQ(applied->created.size(), 1u);
  EXPECT_EQ(applied->created[0].str(), "PeerAuthentication/istio-system/default");
  auto stored = store->get({"PeerAuthentication", "istio-system", "default"});
  ASSERT_TRUE(stored && *stored);
  EXPECT_NE((*stored)->yaml.find("  namespace: istio-system\n"), std::string::npos) << (*stored)->yaml;
  auto held = store->resources();
  ASSERT_TRUE(held && held->peer_authentications.size() == 1u);
  EXPECT_EQ(held->peer_authentications[0].meta.full_name(), "istio-system/default");
  store.reset();
  auto again = open_ok(path);
  ASSERT_TRUE(again);
  held = again->resources();
  ASSERT_TRUE(held && held->peer_authentications.size() == 1u);
  EXPECT_EQ(held->peer_authentications[0].meta.full_name(), "istio-system/default");
  // A document naming another namespace than the apply's is refused; nothing changes.
  auto mismatch = again->apply_all({{pa("p", "foo", "STRICT"), "foo.yaml", "bar"}});
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, "policy.namespace_mismatch");
  EXPECT_EQ(again->list(std::nullopt, std::nullopt)->size(), 1u);
}

TEST(SqliteStore, ReopenKeepsDataAndRevision) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  {
    auto store = open_ok(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->apply(ap("a", "ns") + "---\n" + kMesh, "x.yaml"));
    ASSERT_TRUE(store->apply(ap("b", "ns"), "y.yaml"));
    ASSERT_TRUE(store->remove({"AuthorizationPolicy", "ns", "a"}));
    EXPECT_EQ(store->revision(), 3);
  }
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->revision(), 3);
  auto all = store->list(std::nullopt, std::nullopt);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key.str(), "AuthorizationPolicy/ns/b");
  EXPECT_EQ((*all)[1].key.str(), "Mesh//default");
  auto next = store->apply(ap("c", "ns"), "z.yaml");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->revision, 4);
}

// The service registry's registrations: saved and removed in one transaction, kept across a
// reopen, sorted by key, and never seen as resources (no revision bump).
TEST(SqliteStore, RegistrationsSurviveReopenAndAreNotResources) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  const StoredRegistration a{"shop/a", R"({"name":"a"})", true, true, 100};
  const StoredRegistration b{"shop/b", R"({"name":"b"})", false, false, 200};
  StoredRegistration c{"other/c", R"({"name":"c"})", false, true, 300};
  {
    auto store = open_ok(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->apply(ap("p", "ns"), "x.yaml"));
    ASSERT_TRUE(store->save_registrations({b, a, c}, {"shop/absent"}));
    c.healthy = false;
    c.last_seen_unix = 301;
    ASSERT_TRUE(store->save_registrations({c}, {"shop/b"}));  // an upsert and a delete
    EXPECT_EQ(store->revision(), 1);
    auto all = store->list(std::nullopt, std::nullopt);
    ASSERT_TRUE(all);
    EXPECT_EQ(all->size(), 1u);
    auto set = store->resources();
    ASSERT_TRUE(set);
    EXPECT_EQ(set->size(), 1u);
  }
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->revision(), 1);
  auto regs = store->registrations();
  ASSERT_TRUE(regs) << regs.error().to_string();
  ASSERT_EQ(regs->size(), 2u);
  EXPECT_EQ((*regs)[0], c);
  EXPECT_EQ((*regs)[1], a);
  ASSERT_TRUE(store->save_registrations({}, {"other/c", "shop/a"}));
  regs = store->registrations();
  ASSERT_TRUE(regs);
  EXPECT_TRUE(regs->empty());
}

// A store written by a build without the registrations table gains it at open (no schema version
// bump: that build, rolled back to, ignores the table).
TEST(SqliteStore, OlderStoreGainsTheRegistrationsTable) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  {
    auto store = open_ok(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->apply(ap("p", "ns"), "x.yaml"));
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "DROP TABLE registrations", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = open_ok(path);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->revision(), 1);
  ASSERT_TRUE(store->save_registrations({{"shop/a", "{}", true, true, 1}}, {}));
  auto regs = store->registrations();
  ASSERT_TRUE(regs);
  EXPECT_EQ(regs->size(), 1u);
}

TEST(SqliteStore, FilesAreOwnerOnly) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  {
    // An existing empty file with loose permissions is tightened, not trusted as is.
    write_all(path, "");
    ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
    auto store = open_ok(path);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->apply(ap("a", "ns"), "x.yaml"));
    for (const std::string& f : {path, path + "-wal"}) {
      struct stat st {};
      ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
    }
  }
}

TEST(SqliteStore, RefusesFilesThatAreNotHealthyDatabases) {
  TempDir dir;
  // Not SQLite at all: refused, and not a byte changes.
  const std::string text_file = dir.file("notes.txt");
  std::string content;
  for (int i = 0; i < 500; ++i) content += "line " + std::to_string(i) + ": precious data\n";
  write_all(text_file, content);
  auto r = open_sqlite_store(text_file);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "store.not_sqlite");
  EXPECT_NE(r.error().message.find("notes.txt"), std::string::npos);
  EXPECT_EQ(read_all(text_file), content);
  EXPECT_FALSE(fs::exists(text_file + "-wal"));

  // The right header, garbage after it: SQLite itself refuses it; still untouched.
  const std::string garbage_file = dir.file("garbage.db");
  std::string garbage("SQLite format 3", 16);
  for (int i = 0; i < 8192; ++i) garbage.push_back(static_cast<char>((i * 7919 + 13) & 0xff));
  write_all(garbage_file, garbage);
  auto g = open_sqlite_store(garbage_file);
  ASSERT_FALSE(g);
  EXPECT_TRUE(g.error().code == "store.corrupt" || g.error().code == "store.not_sqlite")
      << g.error().to_string();
  EXPECT_EQ(read_all(garbage_file), garbage);

  // A real store whose table pages were overwritten: the integrity check catches it at open.
  const std::string damaged = dir.file("damaged.db");
  {
    auto store = open_ok(damaged);
    ASSERT_TRUE(store);
    std::string many;
    for (int i = 0; i < 200; ++i) many += ap("p" + std::to_string(i), "ns") + "---\n";
    ASSERT_TRUE(store->apply(many, "many.yaml"));
  }  // closing checkpoints the WAL into the main file
  std::string bytes = read_all(damaged);
  ASSERT_GT(bytes.size(), 4096u * 4);
  for (size_t i = 4096 * 2; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0xA5);
  write_all(damaged, bytes);
  auto d = open_sqlite_store(damaged);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, "store.corrupt") << d.error().to_string();
  EXPECT_EQ(read_all(damaged), bytes);

  // Another program's SQLite database: refused before any write (not even the switch to WAL).
  const std::string foreign = dir.file("other-app.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES (1);", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  const std::string foreign_bytes = read_all(foreign);
  auto f = open_sqlite_store(foreign);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, "store.not_meshguard");
  EXPECT_EQ(read_all(foreign), foreign_bytes);

  // A directory is not a database either.
  auto dir_open = open_sqlite_store(dir.file(""));
  ASSERT_FALSE(dir_open);
}

// A child process applies in a loop and acknowledges each success on a pipe; it is killed with
// SIGKILL mid-stream. Every acknowledged apply must be in the store when it is opened again.
TEST(SqliteStore, AcknowledgedAppliesSurviveKill9) {
  TempDir dir;
  const std::string path = dir.file("store.db");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto store = open_sqlite_store(path);
    if (!store) ::_exit(2);
    for (int32_t i = 0; i < 400; ++i) {
      if (!(*store)->apply(ap("p" + std::to_string(i), "ns"), "loop.yaml")) ::_exit(3);
      if (::write(fds[1], &i, sizeof i) != static_cast<ssize_t>(sizeof i)) ::_exit(4);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  int32_t last = -1, n = 0;
  while (last < 24 && ::read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) last = n;
  ::kill(pid, SIGKILL);
  // Acknowledgements written before the signal landed count too.
  while (::read(fds[0], &n, sizeof n) == static_cast<ssize_t>(sizeof n)) last = n;
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << status;
  ASSERT_GE(last, 24);

  auto store = open_ok(path);
  ASSERT_TRUE(store);
  EXPECT_GE(store->revision(), last + 1);
  for (int32_t i = 0; i <= last; ++i) {
    auto got = store->get({"AuthorizationPolicy", "ns", "p" + std::to_string(i)});
    ASSERT_TRUE(got);
    EXPECT_TRUE(got->has_value()) << "acknowledged apply " << i << " lost";
  }
  auto set = store->resources();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_GE(set->authorization_policies.size(), static_cast<size_t>(last + 1));
}

TEST(SqliteStore, ConcurrentAppliesAreSerialized) {
  TempDir dir;
  auto store = open_ok(dir.file("store.db"));
  ASSERT_TRUE(store);
  constexpr int kThreads = 4, kEach = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = store->apply(ap("p" + std::to_string(t) + "-" + std::to_string(i), "ns"), "t.yaml");
        EXPECT_TRUE(r);
        (void)store->list(std::nullopt, std::string("ns"));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store->revision(), kThreads * kEach);
  auto all = store->list(std::nullopt, std::nullopt);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace mg::control
