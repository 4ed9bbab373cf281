// Meta::document (each resource keeps its document's exact text, and that text alone parses back
// to the same resource) and meshguard's Mesh kind.
#include <gtest/gtest.h>

#include "policy/parse.h"
#include "policy/select.h"

namespace mg::policy {
namespace {

const char* kMeshHead = "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\n";

TEST(Document, EachResourceKeepsItsExactText) {
  const std::string a =
      "# leading comment\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: "
      "a\n";
  const std::string b =
      "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: b\n"
      "  namespace: foo\nspec:\n  mtls: {mode: STRICT}\n";
  const std::string c =
      "--- {apiVersion: meshguard.io/v1alpha1, kind: Workload, metadata: {name: c}, spec: {ports: "
      "[\"80\"]}}\n";
  const std::string d =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n  trustDomain: "
      "example.org\n";
  const std::string text = a + b + c + "...\n" + d;
  auto r = parse_resources(text, "all.yaml");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ(r->authorization_policies[0].meta.document, a);
  EXPECT_EQ(r->peer_authentications[0].meta.document, b);
  EXPECT_EQ(r->workloads[0].meta.document, c);
  EXPECT_EQ(r->meshes[0].meta.document, d);

  // Each text alone is exactly one resource, the same one.
  auto again = parse_resources(r->peer_authentications[0].meta.document, "stored");
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(again->peer_authentications[0].meta.full_name(), "foo/b");
  EXPECT_EQ(again->peer_authentications[0].mode, MtlsMode::Strict);
  EXPECT_EQ(again->peer_authentications[0].meta.document, b);
  auto flow = parse_resources(c, "stored");
  ASSERT_TRUE(flow) << flow.error().message;
  ASSERT_EQ(flow->workloads.size(), 1u);
  EXPECT_EQ(flow->workloads[0].ports, std::vector<uint32_t>{80});

  // Joined with "\n---\n" the texts parse back to the whole set.
  std::string joined;
  for (const auto* doc : {&a, &b, &c, &d}) joined += *doc + "\n---\n";
  auto all = parse_resources(joined, "joined");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->size(), 4u);
}

TEST(Document, ParsingTwiceGivesTheSameText) {
  const std::string text = std::string(kMeshHead) + "spec:\n  rootNamespace: mesh-root\n";
  auto first = parse_resources(text);
  ASSERT_TRUE(first);
  auto second = parse_resources(first->meshes[0].meta.document);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->meshes[0].meta.document, text);
  EXPECT_EQ(second->meshes[0].root_namespace, "mesh-root");
}

TEST(Mesh, DefaultsAndEveryField) {
  auto defaults = parse_resources(kMeshHead);
  ASSERT_TRUE(defaults) << defaults.error().message;
  ASSERT_EQ(defaults->meshes.size(), 1u);
  const Mesh& m = defaults->meshes[0];
  EXPECT_EQ(m.meta.name, "default");
  EXPECT_EQ(m.meta.ns, "");
  EXPECT_EQ(m.trust_domain, "cluster.local");
  EXPECT_EQ(m.root_namespace, "istio-system");
  EXPECT_EQ(m.path_normalization, PathNormalization::Base);
  EXPECT_EQ(m.certificate_ttl_seconds, 86400);
  EXPECT_EQ(m.ca_mode, "builtin");

  const std::string full =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\n  namespace: ignored\n"
      "spec:\n  trustDomain: prod.example.com\n  rootNamespace: mesh-system\n"
      "  pathNormalization: DECODE_AND_MERGE_SLASHES\n  certificateTTL: 30m\n  ca:\n    mode: plugin\n";
  auto r = parse_resources(full);
  ASSERT_TRUE(r) << r.error().message;
  const Mesh& f = r->meshes[0];
  EXPECT_EQ(f.meta.ns, "");  // cluster-scoped
  EXPECT_EQ(f.trust_domain, "prod.example.com");
  EXPECT_EQ(f.root_namespace, "mesh-system");
  EXPECT_EQ(f.path_normalization, PathNormalization::DecodeAndMergeSlashes);
  EXPECT_EQ(f.certificate_ttl_seconds, 1800);
  EXPECT_EQ(f.ca_mode, "plugin");
}

TEST(Mesh, H2UpgradePolicy) {
  auto defaults = parse_resources(kMeshHead);
  ASSERT_TRUE(defaults) << defaults.error().message;
  EXPECT_TRUE(defaults->meshes[0].h2_upgrade) << "meshguard upgrades HTTP/1.1 between proxies by default";
  EXPECT_TRUE(mesh_config_of(*defaults).h2_upgrade);
  auto off = parse_resources(std::string(kMeshHead) + "spec:\n  h2UpgradePolicy: DO_NOT_UPGRADE\n");
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_FALSE(off->meshes[0].h2_upgrade);
  EXPECT_FALSE(mesh_config_of(*off).h2_upgrade);
  auto on = parse_resources(std::string(kMeshHead) + "spec:\n  h2UpgradePolicy: UPGRADE\n");
  ASSERT_TRUE(on) << on.error().message;
  EXPECT_TRUE(on->meshes[0].h2_upgrade);
  auto bad = parse_resources(std::string(kMeshHead) + "spec:\n  h2UpgradePolicy: upgrade\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(":6: h2UpgradePolicy must be UPGRADE or DO_NOT_UPGRADE"), std::string::npos)
      << bad.error().message;
}

TEST(Mesh, CertificateTtlBounds) {
  const std::vector<std::pair<std::string, int64_t>> good = {
      {"1m", 60},     {"60s", 60}, {"90s", 90}, {"1h", 3600}, {"1.5h", 5400}, {"2160h", 90LL * 86400},
      {"60000ms", 60}};
  for (const auto& [text, seconds] : good) {
    SCOPED_TRACE(text);
    auto r = parse_resources(std::string(kMeshHead) + "spec:\n  certificateTTL: \"" + text + "\"\n");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->meshes[0].certificate_ttl_seconds, seconds);
  }
  for (const std::string text : {"59s", "0s", "2161h", "1.5s", "1d", "-1h", "h", "", "1e3s", "1 h", "90"}) {
    SCOPED_TRACE(text);
    auto r =
        parse_resources(std::string(kMeshHead) + "spec:\n  certificateTTL: \"" + text + "\"\n", "mesh.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, "policy.bad_duration");
    EXPECT_NE(r.error().message.find("mesh.yaml:6: certificateTTL"), std::string::npos) << r.error().message;
  }
}

struct Bad {
  const char* name;
  std::string yaml;
  std::string expect;  // substring of the error, including "file:line"
};

TEST(Mesh, Rejections) {
  const std::string head = kMeshHead;
  const std::vector<Bad> cases = {
      {"name not a DNS label",
       "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: Second_Mesh\n",
       "mesh.yaml:4: Mesh: metadata.name must be a mesh name"},
      {"federates with itself",
       "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: b\nspec:\n  federatesWith: [b]\n",
       "mesh.yaml:6: federatesWith cannot name the mesh itself"},
      {"federates with a bad name", head + "spec:\n  federatesWith: [\"B C\"]\n",
       "mesh.yaml:6: federatesWith entry \"B C\" is not a mesh name"},
      {"wrong apiVersion", "apiVersion: security.istio.io/v1\nkind: Mesh\nmetadata:\n  name: default\n",
       "mesh.yaml:1: Mesh: apiVersion must be meshguard.io/v1alpha1"},
      {"unknown field", head + "spec:\n  trustDomian: x\n",
       "mesh.yaml:6: unknown field \"trustDomian\" in Mesh.spec"},
      {"unknown ca field", head + "spec:\n  ca:\n    mode: builtin\n    url: x\n",
       "mesh.yaml:8: unknown field \"url\""},
      {"bad trust domain", head + "spec:\n  trustDomain: Example.COM\n",
       "mesh.yaml:6: trustDomain \"Example.COM\" is not a valid"},
      {"trust domain with port", head + "spec:\n  trustDomain: \"td:80\"\n", "mesh.yaml:6: trustDomain"},
      {"bad path normalization", head + "spec:\n  pathNormalization: base\n",
       "mesh.yaml:6: pathNormalization must be"},
      {"bad ca mode", head + "spec:\n  ca:\n    mode: vault\n",
       "mesh.yaml:7: ca.mode must be builtin or plugin"},
      {"empty root namespace", head + "spec:\n  rootNamespace: \"\"\n", "mesh.yaml:6: rootNamespace"},
      {"root namespace with slash", head + "spec:\n  rootNamespace: a/b\n", "mesh.yaml:6: rootNamespace"},
      {"ttl not a string", head + "spec:\n  certificateTTL: [1h]\n",
       "mesh.yaml:6: certificateTTL must be a string"},
      {"spec not a mapping", head + "spec: [a]\n", "mesh.yaml:5: Mesh.spec must be a mapping"},
      {"duplicate field", head + "spec:\n  trustDomain: a\n  trustDomain: b\n",
       "mesh.yaml:7: duplicate field"},
      {"bad trust domain alias", head + "spec:\n  trustDomainAliases: [old-td, \"Old TD\"]\n",
       "mesh.yaml:6: trustDomainAliases entry \"Old TD\" is not a valid"},
      {"trust domain aliases not a list", head + "spec:\n  trustDomainAliases: old-td\n",
       "mesh.yaml:6: trustDomainAliases must be a list"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_resources(c.yaml, "mesh.yaml");
    ASSERT_FALSE(r) << "accepted";
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  auto named =
      parse_resources("apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: Second_Mesh\n");
  ASSERT_FALSE(named);
  EXPECT_EQ(named.error().code, "policy.bad_mesh_name");
}

// Mesh.spec.ca.pluginDir: another mesh's CA plugged in (docs/MESHES.md); refused on the default
// mesh (--plug-in-ca chooses its CA), with mode builtin, relative, and mode plugin without it.
TEST(Mesh, CaPluginDir) {
  const std::string other = "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: payments\n";
  auto plugged =
      parse_resources(other + "spec:\n  trustDomain: pay.example\n  ca: {pluginDir: /etc/mg/pay}\n");
  ASSERT_TRUE(plugged) << plugged.error().message;
  EXPECT_EQ(plugged->meshes[0].ca_plugin_dir, "/etc/mg/pay");
  EXPECT_EQ(plugged->meshes[0].ca_mode, "plugin");
  auto both = parse_resources(other + "spec:\n  ca: {mode: plugin, pluginDir: /etc/mg/pay}\n");
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->meshes[0].ca_plugin_dir, "/etc/mg/pay");
  auto built_in = parse_resources(other + "spec:\n  ca: {mode: builtin}\n");
  ASSERT_TRUE(built_in) << built_in.error().message;
  EXPECT_EQ(built_in->meshes[0].ca_plugin_dir, "");
  auto default_mode = parse_resources(std::string(kMeshHead) + "spec:\n  ca: {mode: plugin}\n");
  ASSERT_TRUE(default_mode) << "the default mesh's mode plugin stays accepted: "
                            << default_mode.error().message;

  const std::vector<Bad> cases = {
      {"on the default mesh", std::string(kMeshHead) + "spec:\n  ca: {pluginDir: /etc/mg/ca}\n",
       "mesh.yaml:6: ca.pluginDir is for meshes other than the default"},
      {"with mode builtin", other + "spec:\n  ca: {mode: builtin, pluginDir: /etc/mg/pay}\n",
       "mesh.yaml:6: ca.pluginDir plugs in a CA: it cannot go with ca.mode builtin"},
      {"relative", other + "spec:\n  ca: {pluginDir: etc/mg/pay}\n",
       "mesh.yaml:6: ca.pluginDir must be an absolute directory path"},
      {"empty", other + "spec:\n  ca: {pluginDir: \"\"}\n", "mesh.yaml:6: ca.pluginDir must be an absolute"},
      {"mode plugin without it", other + "spec:\n  ca: {mode: plugin}\n",
       "mesh.yaml:6: ca.mode plugin needs ca.pluginDir"},
      {"not a string", other + "spec:\n  ca: {pluginDir: [/a]}\n", "mesh.yaml:6: ca.pluginDir"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = parse_resources(c.yaml, "mesh.yaml");
    ASSERT_FALSE(r) << "accepted";
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
}

// Istio's meshConfig.trustDomainAliases, and mesh_document: the Mesh text the control plane
// pushes when none is stored parses back to the same settings.
TEST(Mesh, TrustDomainAliasesAndTheWrittenDocument) {
  auto r = parse_resources(std::string(kMeshHead) +
                           "spec:\n  trustDomain: new-td\n  trustDomainAliases:\n  - old-td\n  - older-td\n");
  ASSERT_TRUE(r) << r.error().message;
  const MeshConfig mesh = mesh_config_of(*r);
  EXPECT_EQ(mesh.trust_domain, "new-td");
  EXPECT_EQ(mesh.trust_domain_aliases, (std::vector<std::string>{"old-td", "older-td"}));

  MeshConfig written;
  written.trust_domain = "example.org";
  written.trust_domain_aliases = {"old.example.org"};
  written.root_namespace = "mesh-root";
  written.path_normalization = PathNormalization::MergeSlashes;
  written.num_trusted_proxies = 2;
  auto again = parse_resources(mesh_document(written), "pushed");
  ASSERT_TRUE(again) << again.error().message;
  const MeshConfig read = mesh_config_of(*again);
  EXPECT_EQ(read.trust_domain, "example.org");
  EXPECT_EQ(read.trust_domain_aliases, written.trust_domain_aliases);
  EXPECT_EQ(read.root_namespace, "mesh-root");
  EXPECT_EQ(read.path_normalization, PathNormalization::MergeSlashes);
  EXPECT_TRUE(read.h2_upgrade);
  written.h2_upgrade = false;
  auto no_upgrade = parse_resources(mesh_document(written), "pushed");
  ASSERT_TRUE(no_upgrade) << no_upgrade.error().message;
  EXPECT_FALSE(mesh_config_of(*no_upgrade).h2_upgrade) << "the written document keeps DO_NOT_UPGRADE";
  EXPECT_EQ(read.num_trusted_proxies, 2u);
  EXPECT_TRUE(mesh_config_of(*parse_resources(mesh_document(MeshConfig{}))).trust_domain_aliases.empty());
}

TEST(Mesh, AppendKeepsMeshes) {
  auto a = parse_resources(kMeshHead);
  auto b = parse_resources("apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata:\n  name: w\n");
  ASSERT_TRUE(a && b);
  ResourceSet set;
  set.append(std::move(*a));
  set.append(std::move(*b));
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.meshes.size(), 1u);
}

}  // namespace
}  // namespace mg::policy

namespace mg::policy {
namespace {

// An alias-heavy document is judged by the same budget inside a large file as alone, so a
// document accepted in an apply is accepted again when the store re-parses its stored text.
TEST(Document, AliasBudgetIsPerDocument) {
  auto aliased = [](int references) {
    std::string doc =
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: "
        "aliased\nspec:\n"
        "  rules:\n  - &r\n    from:\n";
    for (int i = 0; i < 60; ++i) doc += "    - source:\n        principals: [a, b, c, d, e, f, g, h, i, j]\n";
    for (int i = 0; i < references; ++i) doc += "  - *r\n";
    return doc;
  };
  std::string padding =
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: padded\n";
  while (padding.size() < 200000)
    padding += "# a long comment line that only makes the file big......................\n";
  for (int references : {40, 400}) {
    SCOPED_TRACE(references);
    const std::string doc = aliased(references);
    auto alone = parse_resources(doc);
    auto in_file = parse_resources(padding + doc);
    EXPECT_EQ(alone.has_value(), in_file.has_value());
    if (in_file) {
      auto again = parse_resources(in_file->authorization_policies[1].meta.document);
      EXPECT_TRUE(again);
    } else {
      EXPECT_NE(in_file.error().message.find("too large"), std::string::npos) << in_file.error().message;
    }
  }
}

TEST(Mesh, GatewayTopologyNumTrustedProxies) {
  auto none = parse_resources(std::string(kMeshHead) + "spec: {}\n");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(none->meshes[0].num_trusted_proxies, 0u);
  EXPECT_EQ(mesh_config_of(*none).num_trusted_proxies, 0u);
  auto two =
      parse_resources(std::string(kMeshHead) + "spec:\n  gatewayTopology:\n    numTrustedProxies: 2\n");
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(mesh_config_of(*two).num_trusted_proxies, 2u);
  for (const char* bad : {"-1", "two", "1.5", "\"\"", "99999999999", "[1]"}) {
    auto r = parse_resources(
        std::string(kMeshHead) + "spec:\n  gatewayTopology: {numTrustedProxies: " + bad + "}\n", "mesh.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("mesh.yaml:6: "), std::string::npos) << r.error().message;
  }
  auto unknown =
      parse_resources(std::string(kMeshHead) + "spec:\n  gatewayTopology: {forwardClientCertDetails: X}\n");
  EXPECT_FALSE(unknown);
}

TEST(Mesh, OutboundTrafficPolicyBothFormsAndTheWrittenDocument) {
  auto none = parse_resources(std::string(kMeshHead) + "spec: {}\n");
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_EQ(mesh_config_of(*none).outbound_traffic_policy, OutboundTrafficPolicy::AllowAny);
  for (const char* form : {"{mode: REGISTRY_ONLY}", "REGISTRY_ONLY"}) {
    auto r = parse_resources(std::string(kMeshHead) + "spec:\n  outboundTrafficPolicy: " + form + "\n");
    ASSERT_TRUE(r) << form << ": " << r.error().message;
    MeshConfig mesh = mesh_config_of(*r);
    EXPECT_EQ(mesh.outbound_traffic_policy, OutboundTrafficPolicy::RegistryOnly) << form;
    // The control plane's written Mesh (pushed when none is stored) carries it back.
    auto again = parse_resources(mesh_document(mesh));
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(mesh_config_of(*again).outbound_traffic_policy, OutboundTrafficPolicy::RegistryOnly);
  }
  auto allow = parse_resources(std::string(kMeshHead) + "spec:\n  outboundTrafficPolicy: {mode: ALLOW_ANY}\n");
  ASSERT_TRUE(allow) << allow.error().message;
  EXPECT_EQ(mesh_config_of(*allow).outbound_traffic_policy, OutboundTrafficPolicy::AllowAny);
  EXPECT_EQ(mesh_document(mesh_config_of(*allow)).find("outboundTrafficPolicy"), std::string::npos);
  for (const char* bad : {"registry_only", "{mode: BLOCK}", "{}", "{mode: REGISTRY_ONLY, egressProxy: x}", "[REGISTRY_ONLY]"}) {
    auto r = parse_resources(std::string(kMeshHead) + "spec:\n  outboundTrafficPolicy: " + bad + "\n", "mesh.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("mesh.yaml:6: "), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace mg::policy
