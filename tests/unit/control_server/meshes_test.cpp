// tests/unit/control_server/meshes_test — several meshes on one control plane (docs/MESHES.md):
// a Mesh's own CA and trust domain, tokens that put a workload in a mesh, renewal and the config
// stream of a non-default mesh's proxy (its resources only, its bundle only, the control plane's
// roots apart), federation, and the apply-time checks.
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

const std::string kMeshB =
    "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-b\nspec:\n  trustDomain: "
    "b.example\n";

class ControlServerMeshes : public ControlServer {
 protected:
  pb::ListMeshesResponse list_meshes() {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ListMeshesResponse resp;
    auto st = stub->ListMeshes(&ctx, pb::ListMeshesRequest(), &resp);
    EXPECT_TRUE(st.ok()) << api::describe(st);
    return resp;
  }
  // Waits (bounded) until the model serves mesh `name`.
  bool wait_mesh(const std::string& name) {
    for (int i = 0; i < 500; ++i) {
      const auto listed = list_meshes();
      for (const auto& m : listed.meshes())
        if (m.name() == name) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::string mint_in(const std::string& mesh, const std::string& ns, const std::string& sa) {
    const auto now = static_cast<int64_t>(std::time(nullptr));
    BootstrapClaims c;
    c.ns = ns;
    c.service_account = sa;
    c.issued_at = now;
    c.expires_at = now + 600;
    c.mesh = mesh;
    auto t = mint_bootstrap_token(token_key_.get(), issuer(), c);
    EXPECT_TRUE(t);
    return t ? *t : "";
  }
};

TEST_F(ControlServerMeshes, AMeshHasItsOwnCaTrustDomainAndBundle) {
  ASSERT_TRUE(apply(kMeshB).ok());
  ASSERT_TRUE(wait_mesh("mesh-b"));
  const auto meshes = list_meshes();
  ASSERT_EQ(meshes.meshes_size(), 2);
  EXPECT_EQ(meshes.meshes(0).name(), "default");
  EXPECT_EQ(meshes.meshes(0).trust_domain(), "cluster.local");
  EXPECT_EQ(meshes.meshes(1).trust_domain(), "b.example");
  EXPECT_FALSE(meshes.meshes(1).ca_root_serial().empty());
  EXPECT_NE(meshes.meshes(1).ca_root_serial(), meshes.meshes(0).ca_root_serial());

  // A token for mesh-b: the identity is mesh-b's trust domain, signed by mesh-b's CA.
  auto csr = new_csr();
  auto r = sign(std::nullopt, csr.der, "Bearer " + mint_in("mesh-b", "shop", "cart"));
  ASSERT_TRUE(r.status.ok()) << api::describe(r.status);
  EXPECT_EQ(leaf_of(r.response.cert_chain_pem(), csr.key.get()).id, "spiffe://b.example/ns/shop/sa/cart");
  EXPECT_EQ(r.response.mesh_name(), "mesh-b");
  EXPECT_NE(r.response.trust_bundle_pem(), bundle_);
  EXPECT_EQ(r.response.control_plane_bundle_pem(), bundle_);
  EXPECT_TRUE(r.response.federated_bundles().empty());
  auto b_bundle = identity::TrustBundle::from_pem("b.example", r.response.trust_bundle_pem());
  ASSERT_TRUE(b_bundle);
  auto chain = crypto::parse_cert_chain_pem(r.response.cert_chain_pem());
  ASSERT_TRUE(chain);
  EXPECT_TRUE(identity::verify_svid(*chain, *b_bundle, std::time(nullptr)));
  EXPECT_FALSE(identity::verify_svid(*chain, ca_->bundle(), std::time(nullptr)));

  // A default-mesh token is unchanged.
  auto d = sign(std::nullopt, new_csr().der, "Bearer " + create_token("shop", "cart"));
  ASSERT_TRUE(d.status.ok());
  EXPECT_EQ(d.response.trust_bundle_pem(), bundle_);
  EXPECT_TRUE(d.response.mesh_name().empty());
  EXPECT_TRUE(d.response.control_plane_bundle_pem().empty());

  // A token for a mesh that does not exist.
  auto none = sign(std::nullopt, new_csr().der, "Bearer " + mint_in("nope", "shop", "cart"));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << api::describe(none.status);

  // Renewal with the mesh-b SVID: renewed in mesh-b.
  api::SvidFiles own{crypto::private_key_to_pem(csr.key.get()), r.response.cert_chain_pem(), ""};
  auto renewal_csr = new_csr();
  auto renewed = sign(own, renewal_csr.der, std::nullopt);
  ASSERT_TRUE(renewed.status.ok()) << api::describe(renewed.status);
  EXPECT_EQ(leaf_of(renewed.response.cert_chain_pem(), renewal_csr.key.get()).id,
            "spiffe://b.example/ns/shop/sa/cart");

  // The config stream of mesh-b's proxy: its Mesh, its resources, its bundle.
  pb::ApplyResponse applied;
  ASSERT_TRUE(apply(policy("default-mesh-policy", "shop"), &applied).ok());
  // only-b belongs to mesh-b by the label --mesh writes:
  {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ApplyRequest req;
    req.set_mesh("mesh-b");
    auto* f = req.add_files();
    f->set_yaml(policy("only-b", "shop"));
    f->set_source("b.yaml");
    ASSERT_TRUE(stub->Apply(&ctx, req, &applied).ok());
  }
  WatchClient w(channel(own));
  ASSERT_TRUE(w.hello("cart"));
  auto snap = w.at_least(applied.revision());
  ASSERT_TRUE(snap);
  EXPECT_TRUE(contains(snap->policies_yaml(), "name: mesh-b"));
  EXPECT_TRUE(contains(snap->policies_yaml(), "name: only-b"));
  EXPECT_FALSE(contains(snap->policies_yaml(), "default-mesh-policy"));
  EXPECT_EQ(snap->trust_bundle_pem(), r.response.trust_bundle_pem());
  EXPECT_EQ(snap->control_plane_bundle_pem(), bundle_);
  EXPECT_EQ(snap->mesh_name(), "mesh-b");
  EXPECT_EQ(snap->mesh().trust_domain(), "b.example");
  ASSERT_TRUE(w.ack(snap->version()));

  // Federation: mesh-b's proxy is pushed the default mesh's bundle, bound to its trust domain.
  ASSERT_TRUE(apply(kMeshB + "  federatesWith: [default]\n", &applied).ok());
  auto fed = w.at_least(applied.revision());
  ASSERT_TRUE(fed);
  EXPECT_EQ(fed->federated_bundles(), "# trust domain: cluster.local\n" + bundle_);
  auto listed = list_workloads();
  bool seen = false;
  for (const auto& wl : listed.workloads()) seen |= wl.name() == "cart" && wl.mesh() == "mesh-b";
  EXPECT_TRUE(seen);
}

TEST_F(ControlServerMeshes, ApplyChecksAcrossMeshes) {
  // Another mesh cannot take the default mesh's trust domain, nor federate with a mesh that does
  // not exist; a resource cannot belong to a mesh that does not exist.
  auto taken = apply(
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-c\nspec:\n"
      "  trustDomain: cluster.local\n");
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(contains(taken.error_message(), "policy.mesh_trust_domain_taken")) << taken.error_message();
  auto dangling = apply(kMeshB + "  federatesWith: [mesh-x]\n");
  EXPECT_TRUE(contains(dangling.error_message(), "policy.unknown_mesh")) << dangling.error_message();
  auto orphan = apply(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  namespace: shop\n"
      "  labels: {meshguard.io/mesh: mesh-x}\nspec: {}\n");
  EXPECT_TRUE(contains(orphan.error_message(), "policy.unknown_mesh")) << orphan.error_message();
  // Once mesh-b exists, its trust domain is fixed by its CA.
  ASSERT_TRUE(apply(kMeshB).ok());
  ASSERT_TRUE(wait_mesh("mesh-b"));
  auto moved = apply(
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: mesh-b\nspec:\n"
      "  trustDomain: other.example\n");
  EXPECT_TRUE(contains(moved.error_message(), "control.mesh_trust_domain_changed")) << moved.error_message();
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/data/meshes/mesh-b/ca/ca-key.pem"));
  EXPECT_EQ(std::filesystem::status(dir_ + "/data/meshes/mesh-b/ca/ca-key.pem").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace
}  // namespace mg::control::server_test
