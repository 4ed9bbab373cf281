// Several meshes (policy/mesh.h, docs/MESHES.md): which mesh a resource belongs to, --mesh at
// parse time, the apply-time checks across meshes, and the trust decisions about a federated
// mesh's principals in the authorization engine.
#include "policy/mesh.h"

#include <gtest/gtest.h>

#include "policy/parse.h"
#include "test_util.h"

namespace mg::policy {
namespace {

using test::ap;
using test::must_parse;
using test::Req;
using test::run;

const std::string kMeshB =
    "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-b\nspec:\n  trustDomain: "
    "b.example\n"
    "  federatesWith: [default]\n";

std::string wl(const std::string& name, const std::string& labels_block) {
  return "apiVersion: meshguard.io/v1alpha1\nkind: Workload\nmetadata:\n  name: " + name +
         "\n  namespace: shop\n" + labels_block + "spec:\n  serviceAccount: " + name + "\n";
}

TEST(MeshMembership, LabelNamesTheMeshAndNoneIsTheDefault) {
  auto set = must_parse(kMeshB + "---\n" + wl("a", "") + "---\n" +
                        wl("b", "  labels:\n    meshguard.io/mesh: mesh-b\n") + "---\n" +
                        wl("c", "  labels: {meshguard.io/mesh: default, app: c}\n"));
  ASSERT_EQ(set.workloads.size(), 3u);
  EXPECT_EQ(mesh_of(set.workloads[0].meta), "default");
  EXPECT_EQ(mesh_of(set.workloads[1].meta), "mesh-b");
  EXPECT_EQ(mesh_of(set.workloads[2].meta), "default");
  EXPECT_EQ(mesh_of(set.meshes[0].meta), "mesh-b");
  EXPECT_TRUE(has_other_meshes(set));
  EXPECT_FALSE(has_other_meshes(must_parse(wl("a", ""))));

  const auto b = resources_of_mesh(set, "mesh-b");
  ASSERT_EQ(b.workloads.size(), 1u);
  EXPECT_EQ(b.workloads[0].meta.name, "b");
  ASSERT_EQ(b.meshes.size(), 1u);
  const auto def = resources_of_mesh(set, "default");
  EXPECT_EQ(def.workloads.size(), 2u);
  EXPECT_TRUE(def.meshes.empty());
  // A mesh's own set holds only its Mesh: mesh_config_of reads it.
  EXPECT_EQ(mesh_config_of(b).trust_domain, "b.example");
  EXPECT_EQ(mesh_config_of(def).trust_domain, "cluster.local");
}

TEST(MeshMembership, MeshFlagWritesTheLabelOrRefusesAnotherMesh) {
  // Block labels, flow labels, no labels, and -n together with --mesh.
  for (const std::string& labels :
       {std::string(""), std::string("  labels:\n    app: a\n"), std::string("  labels: {app: a}\n")}) {
    SCOPED_TRACE(labels);
    auto set = parse_resources(wl("a", labels), "a.yaml", "", "mesh-b");
    ASSERT_TRUE(set) << set.error().to_string();
    ASSERT_EQ(set->workloads.size(), 1u);
    EXPECT_EQ(set->workloads[0].meta.mesh, "mesh-b");
    // The stored text alone says so.
    auto again = parse_resources(set->workloads[0].meta.document, "stored");
    ASSERT_TRUE(again) << set->workloads[0].meta.document;
    EXPECT_EQ(again->workloads[0].meta.mesh, "mesh-b");
  }
  auto both = parse_resources(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\nspec: {}\n",
      "p.yaml", "shop", "mesh-b");
  ASSERT_TRUE(both) << both.error().to_string();
  auto stored = parse_resources(both->authorization_policies[0].meta.document, "stored");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->authorization_policies[0].meta.ns, "shop");
  EXPECT_EQ(stored->authorization_policies[0].meta.mesh, "mesh-b");

  auto other = parse_resources(wl("a", "  labels: {meshguard.io/mesh: mesh-c}\n"), "a.yaml", "", "mesh-b");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, "policy.mesh_mismatch");
  auto mesh_doc = parse_resources(kMeshB, "m.yaml", "", "mesh-c");
  ASSERT_FALSE(mesh_doc);
  EXPECT_EQ(mesh_doc.error().code, "policy.mesh_mismatch");
  auto bad_label = parse_resources(wl("a", "  labels: {meshguard.io/mesh: B_B}\n"), "a.yaml");
  ASSERT_FALSE(bad_label);
  EXPECT_EQ(bad_label.error().code, "policy.bad_mesh_name");
}

TEST(MeshChecks, TrustDomainsUniqueAndReferencesExist) {
  EXPECT_TRUE(check_meshes(must_parse(kMeshB + "---\n" + wl("b", "  labels: {meshguard.io/mesh: mesh-b}\n")),
                           "cluster.local"));
  auto taken = check_meshes(
      must_parse("apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-c\nspec:\n"
                 "  trustDomain: cluster.local\n"),
      "cluster.local");
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code, "policy.mesh_trust_domain_taken");
  auto orphan = check_meshes(must_parse(wl("b", "  labels: {meshguard.io/mesh: mesh-x}\n")), "cluster.local");
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code, "policy.unknown_mesh");
  auto dangling =
      check_meshes(must_parse("apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-c\n"
                              "spec:\n  trustDomain: c.example\n  federatesWith: [mesh-x]\n"),
                   "cluster.local");
  ASSERT_FALSE(dangling);
  EXPECT_EQ(dangling.error().code, "policy.unknown_mesh");
}

TEST(MeshFederation, TrustDomainsOfTheNamedMeshes) {
  auto set = must_parse(kMeshB +
                        "---\napiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-c\n"
                        "spec:\n  trustDomain: c.example\n  federatesWith: [mesh-b, mesh-gone]\n");
  const Mesh* b = find_mesh(set, "mesh-b");
  const Mesh* c = find_mesh(set, "mesh-c");
  ASSERT_TRUE(b && c);
  EXPECT_EQ(federated_trust_domains(set, *b, "cluster.local"), std::vector<std::string>{"cluster.local"});
  EXPECT_EQ(federated_trust_domains(set, *c, "cluster.local"), std::vector<std::string>{"b.example"});
}

TEST(MeshFederation, ForeignPrincipalsAndNamingPatterns) {
  EXPECT_FALSE(is_foreign_principal("cluster.local/ns/a/sa/b", "cluster.local", {}));
  EXPECT_FALSE(is_foreign_principal("old.td/ns/a/sa/b", "cluster.local", {"old.td"}));
  EXPECT_TRUE(is_foreign_principal("b.example/ns/a/sa/b", "cluster.local", {"old.td"}));
  EXPECT_TRUE(names_trust_domain("b.example/ns/a/sa/b", "b.example"));
  EXPECT_TRUE(names_trust_domain("b.example/ns/a/", "b.example"));
  EXPECT_FALSE(names_trust_domain("*/ns/a/sa/b", "b.example"));
  EXPECT_TRUE(names_trust_domain("*.example/ns/a/sa/b", "b.example"));
  EXPECT_FALSE(names_trust_domain("*", "b.example"));
  EXPECT_FALSE(names_trust_domain("b.example", "b.example"));
  EXPECT_FALSE(names_trust_domain("b.exampl/ns/a/sa/b", "b.example"));
  EXPECT_FALSE(names_trust_domain("cluster.local/ns/a/sa/b", "b.example"));
}

// The destination is a workload of the mesh whose trust domain is cluster.local; the caller is
// b.example/ns/shop/sa/web, admitted by federation.
const char* kForeign = "b.example/ns/shop/sa/web";

Req foreign_req() {
  Req r;
  r.principal = kForeign;
  return r;
}

TEST(MeshFederation, ForeignPeerNeedsAnAllowRuleNamingItWithItsTrustDomain) {
  // No policy at all: a local peer is allowed (Istio), a federated one is not.
  EXPECT_TRUE(run("", Req{}).allow);
  auto none = run("", foreign_req());
  EXPECT_FALSE(none.allow);
  EXPECT_EQ(none.status, 403);
  EXPECT_EQ(none.reason, ReasonCode::DeniedForeignNotNamed);

  // Named with its trust domain: allowed, by that rule.
  auto named = run(
      ap("allow-b", "  rules:\n  - from:\n    - source:\n        principals: [\"b.example/ns/shop/sa/web\"]"),
      foreign_req());
  EXPECT_TRUE(named.allow) << named.text;
  EXPECT_EQ(named.policy, "default/allow-b");
  auto prefix =
      run(ap("allow-b", "  rules:\n  - from:\n    - source:\n        principals: [\"b.example/ns/shop/*\"]"),
          foreign_req());
  EXPECT_TRUE(prefix.allow) << prefix.text;

  // Every way of not naming it: denied.
  for (const std::string& source :
       {std::string("principals: [\"*\"]"), std::string("principals: [\"*/ns/shop/sa/web\"]"),
        std::string("principals: [\"cluster.local/ns/shop/sa/web\"]"), std::string("namespaces: [\"shop\"]"),
        std::string("notPrincipals: [\"cluster.local/ns/x/sa/y\"]"), std::string("notNamespaces: [\"x\"]"),
        std::string("ipBlocks: [\"10.0.0.0/8\"]")}) {
    SCOPED_TRACE(source);
    auto o = run(ap("allow", "  rules:\n  - from:\n    - source:\n        " + source), foreign_req());
    EXPECT_FALSE(o.allow) << o.text;
    EXPECT_EQ(o.reason, ReasonCode::DeniedForeignNotNamed);
    // The same policy still admits the local peer it was written for (Istio semantics unchanged).
    Req local;
    local.principal = "cluster.local/ns/shop/sa/web";
    local.source_ip = "10.0.0.1";
    if (source.find("notPrincipals") == std::string::npos &&
        source.find("notNamespaces") == std::string::npos) {
      EXPECT_TRUE(run(ap("allow", "  rules:\n  - from:\n    - source:\n        " + source), local).allow);
    }
  }
  // A rule without `from` (any source) does not name it either.
  EXPECT_FALSE(
      run(ap("allow", "  rules:\n  - to:\n    - operation:\n        methods: [GET]"), foreign_req()).allow);

  // DENY rules keep working on it: a DENY naming it wins over the ALLOW naming it.
  auto denied =
      run(ap("allow-b", "  rules:\n  - from:\n    - source:\n        principals: [\"b.example/*\"]") +
              ap("deny-b",
                 "  action: DENY\n  rules:\n  - from:\n    - source:\n        principals: "
                 "[\"b.example/ns/shop/sa/web\"]"),
          foreign_req());
  EXPECT_FALSE(denied.allow);
  EXPECT_EQ(denied.reason, ReasonCode::DeniedByPolicy);
  // A namespace-only DENY does not reach it (namespaces are the mesh's own), a notPrincipals one does.
  auto not_named =
      run(ap("allow-b", "  rules:\n  - from:\n    - source:\n        principals: [\"b.example/*\"]") +
              ap("deny-others",
                 "  action: DENY\n  rules:\n  - from:\n    - source:\n        notPrincipals: "
                 "[\"cluster.local/*\"]"),
          foreign_req());
  EXPECT_FALSE(not_named.allow);
  EXPECT_EQ(not_named.reason, ReasonCode::DeniedByPolicy);
}

TEST(MeshFederation, TrustDomainAliasesAreNotForeign) {
  MeshConfig mesh;
  mesh.trust_domain_aliases = {"b.example"};
  auto o = run(ap("allow", "  rules:\n  - from:\n    - source:\n        namespaces: [\"shop\"]"),
               foreign_req(), nullptr, mesh);
  EXPECT_TRUE(o.allow) << o.text;
}

}  // namespace
}  // namespace mg::policy
