// The configuration model (control/model.h) read from a store while an apply commits: the model's
// revision is always the one its resources are at. A store that lets an apply land between the
// model's reads (a decorator over a real SQLite store) stands for an `apply` racing a push round.
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <memory>
#include <string>

#include "ca/authority.h"
#include "control/ca_rotation.h"
#include "control/model.h"
#include "control/store.h"
#include "telemetry/metrics.h"

namespace mg::control {
namespace {

namespace fs = std::filesystem;

// Forwards to `inner`; its first read of the resources is followed at once by an apply of
// `concurrent` (committed after that read, before the reader's next call).
class ApplyAfterFirstRead final : public Store {
 public:
  ApplyAfterFirstRead(Store& inner, std::string concurrent)
      : inner_(inner), concurrent_(std::move(concurrent)) {}
  Result<ApplyResult> apply_parsed(std::vector<ParsedFile> files, int64_t if_revision) override {
    return inner_.apply_parsed(std::move(files), if_revision);
  }
  Result<RemoveResult> remove_all(const std::vector<ResourceKey>& keys, bool ignore_missing) override {
    return inner_.remove_all(keys, ignore_missing);
  }
  Result<std::vector<StoredResource>> list(const std::optional<std::string>& kind,
                                           const std::optional<std::string>& ns) const override {
    return inner_.list(kind, ns);
  }
  Result<std::optional<StoredResource>> get(const ResourceKey& key) const override { return inner_.get(key); }
  int64_t revision() const override { return inner_.revision(); }
  Result<policy::ResourceSet> resources() const override {
    auto set = inner_.resources();
    if (!applied_) {
      applied_ = true;
      auto r = inner_.apply(concurrent_, "concurrent.yaml");
      if (!r) ADD_FAILURE() << r.error().to_string();
    }
    return set;
  }
  Status save_registrations(const std::vector<StoredRegistration>& save,
                            const std::vector<std::string>& remove) override {
    return inner_.save_registrations(save, remove);
  }
  Result<std::vector<StoredRegistration>> registrations() const override { return inner_.registrations(); }

 private:
  Store& inner_;
  std::string concurrent_;
  mutable bool applied_ = false;
};

std::string deny_policy(const std::string& name) {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: default\nspec:\n  action: DENY\n  rules:\n  - {}\n";
}

TEST(ConfigModel, ItsRevisionIsTheOneItsResourcesAreAt) {
  const fs::path dir = fs::temp_directory_path() / ("mg-model-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto opened = open_sqlite_store((dir / "store.db").string());
  ASSERT_TRUE(opened) << opened.error().to_string();
  Store& inner = **opened;
  ASSERT_TRUE(inner.apply(deny_policy("first"), "first.yaml"));
  ASSERT_EQ(inner.revision(), 1);

  auto authority =
      ca::Authority::create_self_signed("example.org", crypto::KeyType::EcP256, std::time(nullptr));
  ASSERT_TRUE(authority) << authority.error().to_string();
  telemetry::Registry metrics;
  CaRotation ca(std::make_shared<const ca::Authority>(std::move(*authority)), dir.string(), false, metrics);
  ApplyAfterFirstRead store(inner, deny_policy("second"));
  ConfigModel model(store, ca, "example.org", metrics);

  ASSERT_TRUE(model.rebuild());
  auto m = model.current();
  ASSERT_TRUE(m);
  // Revision 1 holds "first" alone, revision 2 both: never revision 2 with "first" alone (a push
  // round would call a proxy synced to revision 2 without "second").
  EXPECT_EQ(m->revision, 2);
  EXPECT_EQ(m->set.authorization_policies.size(), 2u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mg::control
