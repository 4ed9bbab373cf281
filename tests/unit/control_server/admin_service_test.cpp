// tests/unit/control_server/admin_service_test — AdminService: only the admin identity may call it; apply (bad
// documents change nothing, -n, the Mesh's trust domain, CUSTOM providers), tokens for the
// reserved namespace.
#include "control_server_fixture.h"

namespace mg::control::server_test {
namespace {

TEST_F(ControlServer, AdminRpcsNeedTheAdminIdentity) {
  const auto workload_svid = issue("shop", "cart");
  // An SVID for the reserved namespace that is not the admin identity is no admin either.
  const auto control_sa = issue("meshguard-system", "meshguard-other");
  for (const auto& own : {std::optional<api::SvidFiles>(), std::optional<api::SvidFiles>(workload_svid),
                          std::optional<api::SvidFiles>(control_sa)}) {
    auto stub = admin_stub(own);
    const std::string who = own ? leaf_of(own->cert_chain_pem, nullptr).id : "no certificate";
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::ApplyRequest req;
      req.add_files()->set_yaml(policy("p", "shop"));
      pb::ApplyResponse resp;
      EXPECT_EQ(stub->Apply(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::GetResponse resp;
      EXPECT_EQ(stub->Get(&ctx, pb::GetRequest(), &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::DeleteRequest req;
      req.mutable_key()->set_kind("AuthorizationPolicy");
      req.mutable_key()->set_namespace_("shop");
      req.mutable_key()->set_name("p");
      pb::DeleteResponse resp;
      EXPECT_EQ(stub->Delete(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::ListWorkloadsResponse resp;
      EXPECT_EQ(stub->ListWorkloads(&ctx, pb::ListWorkloadsRequest(), &resp).error_code(),
                grpc::StatusCode::PERMISSION_DENIED)
          << who;
    }
    {
      grpc::ClientContext ctx;
      set_deadline(ctx);
      pb::CreateTokenRequest req;
      req.set_namespace_("shop");
      req.set_service_account("cart");
      pb::CreateTokenResponse resp;
      EXPECT_EQ(stub->CreateToken(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
      EXPECT_TRUE(resp.token().empty());
    }
  }
  EXPECT_EQ(get_all().resources_size(), 0);  // nothing was applied
}

TEST_F(ControlServer, CreateTokenForTheSystemNamespaceIsInvalidArgument) {
  auto stub = admin_stub(admin_);
  for (const char* sa : {"meshguard-admin", "meshguard-control", "x"}) {
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::CreateTokenRequest req;
    req.set_namespace_("meshguard-system");
    req.set_service_account(sa);
    pb::CreateTokenResponse resp;
    EXPECT_EQ(stub->CreateToken(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT) << sa;
    EXPECT_TRUE(resp.token().empty());
  }
}

TEST_F(ControlServer, BadApplyChangesNothing) {
  pb::ApplyResponse first;
  auto st = apply(policy("keep", "shop"), &first);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  const auto before = get_all();
  ASSERT_EQ(before.resources_size(), 1);

  const std::vector<std::string> bad = {
      policy("new-good", "shop") + "---\n" +
          "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
          "metadata:\n  name: bad\n  namespace: shop\nspec:\n  bogusField: 1\n",
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: [\n",  // YAML syntax
      // A typo of a security kind (a kind of another API group is left out, below).
      "apiVersion: security.istio.io/v1\nkind: AuthorisationPolicy\nmetadata:\n  name: x\n",
  };
  for (const auto& yaml : bad) {
    pb::ApplyResponse resp;
    auto s = apply(yaml, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(s) << "\n" << yaml;
    auto after = get_all();
    EXPECT_EQ(after.revision(), before.revision());
    ASSERT_EQ(after.resources_size(), 1);
    EXPECT_EQ(after.resources(0).key().name(), "keep");
    EXPECT_EQ(after.resources(0).yaml(), before.resources(0).yaml());
  }
  // Not refused since issue 12 item 8: a document of a kind meshguard does not enforce is left
  // out, and an apply of nothing else changes nothing. (Two documents with one name — item 10 —
  // store the later: store_test and e2e kubectl_yaml.)
  pb::ApplyResponse skipped;
  st = apply("apiVersion: example.com/v1\nkind: Unknown\nmetadata:\n  name: x\n", &skipped);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  EXPECT_EQ(skipped.created_size() + skipped.configured_size() + skipped.unchanged_size(), 0);
  EXPECT_EQ(get_all().revision(), before.revision());
}

TEST_F(ControlServer, BadFileInAMultiFileApplyChangesNothing) {
  const auto before = get_all();
  auto stub = admin_stub(admin_);
  grpc::ClientContext ctx;
  set_deadline(ctx);
  pb::ApplyRequest req;
  auto* good = req.add_files();
  good->set_yaml(policy("good", "shop"));
  good->set_source("good.yaml");
  auto* bad = req.add_files();
  bad->set_yaml(policy("also-good", "shop") + "---\n" +
                "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
                "metadata:\n  name: bad\n  namespace: shop\nspec:\n  action: MAYBE\n");
  bad->set_source("bad.yaml");
  pb::ApplyResponse resp;
  auto st = stub->Apply(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "bad.yaml")) << st.error_message();
  auto after = get_all();
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.resources_size(), 0);
}

TEST_F(ControlServer, ApplyNamespacePlacesDocumentsThatNameNone) {
  // kubectl apply -n: ApplyRequest.namespace is where a document without metadata.namespace goes;
  // one naming another namespace refuses the whole apply.
  const std::string mesh_wide =
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  name: default\nspec:\n"
      "  mtls:\n    mode: STRICT\n";
  auto apply_in = [&](const std::string& ns, const std::string& yaml, pb::ApplyResponse* resp) {
    auto stub = admin_stub(admin_);
    grpc::ClientContext ctx;
    set_deadline(ctx);
    pb::ApplyRequest req;
    req.set_namespace_(ns);
    auto* f = req.add_files();
    f->set_yaml(yaml);
    f->set_source("strict.yaml");
    return stub->Apply(&ctx, req, resp);
  };
  pb::ApplyResponse resp;
  auto st = apply_in("istio-system", mesh_wide, &resp);
  ASSERT_TRUE(st.ok()) << api::describe(st);
  ASSERT_EQ(resp.created_size(), 1);
  EXPECT_EQ(resp.created(0).namespace_(), "istio-system");
  auto all = get_all();
  ASSERT_EQ(all.resources_size(), 1);
  EXPECT_TRUE(contains(all.resources(0).yaml(), "namespace: istio-system")) << all.resources(0).yaml();

  st = apply_in("bar", policy("p", "shop"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "does not match the namespace given with -n/--namespace (\"bar\")"))
      << st.error_message();
  st = apply_in("Not/A-Namespace", mesh_wide, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_EQ(get_all().revision(), all.revision());
}

TEST_F(ControlServer, MeshWithAnotherTrustDomainIsRefused) {
  const std::string head =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n";
  const auto before = get_all();
  auto st = apply(head + "  trustDomain: example.org\n" + "---\n" + policy("p", "shop"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  auto after = get_all();
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.resources_size(), 0);
  // The CA's own trust domain is accepted: the refusal was about the trust domain.
  st = apply(head + "  trustDomain: cluster.local\n");
  EXPECT_TRUE(st.ok()) << api::describe(st);
}

// A CUSTOM AuthorizationPolicy must name one of the Mesh's extensionProviders: the Mesh applied
// with it, else the stored one. Otherwise the whole apply is refused and nothing is stored.
TEST_F(ControlServer, CustomNamingAnUndefinedProviderIsRefusedAtApply) {
  const std::string mesh =
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n"
      "  trustDomain: cluster.local\n  extensionProviders:\n  - name: opa-ext\n"
      "    envoyExtAuthzGrpc: {service: 127.0.0.1, port: 9191}\n";
  auto custom = [](const std::string& name, const std::string& provider) {
    return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
           "\n  namespace: shop\nspec:\n  action: CUSTOM\n  provider:\n    name: " + provider +
           "\n  rules:\n  - {}\n";
  };
  const auto before = get_all();
  auto st = apply(policy("p", "shop") + "---\n" + custom("ext", "opa-ext"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "test.yaml:")) << st.error_message();
  EXPECT_TRUE(contains(st.error_message(), "CUSTOM provider \"opa-ext\" is not defined in the Mesh's extensionProviders"))
      << st.error_message();
  auto after = get_all();
  EXPECT_EQ(after.revision(), before.revision());
  EXPECT_EQ(after.resources_size(), 0);

  // Defined by the Mesh of the same apply: accepted; then by the stored Mesh.
  st = apply(mesh + "---\n" + custom("ext", "opa-ext"));
  ASSERT_TRUE(st.ok()) << api::describe(st);
  st = apply(custom("ext2", "opa-ext"));
  EXPECT_TRUE(st.ok()) << api::describe(st);
  const auto stored = get_all();
  st = apply(custom("ext3", "other"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << api::describe(st);
  EXPECT_TRUE(contains(st.error_message(), "\"other\" is not defined")) << st.error_message();
  EXPECT_EQ(get_all().revision(), stored.revision());
}

}  // namespace
}  // namespace mg::control::server_test
