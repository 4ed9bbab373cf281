// Istio YAML as people apply it with kubectl: files that mix the security kinds with other kinds,
// the namespace given on the command line, and two documents naming the same resource.
#include <gtest/gtest.h>

#include <string>

#include "policy/analyze.h"
#include "policy/parse.h"

namespace mg::policy {
namespace {

const std::string kMixed = R"(apiVersion: v1
kind: Service
metadata:
  name: httpbin
  labels: {app: httpbin}
spec:
  ports: [{name: http, port: 8000, targetPort: 8080}]
  selector: {app: httpbin}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpbin
  namespace: foo
spec:
  replicas: 1
  template: {metadata: {labels: {app: httpbin}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all
  namespace: foo
spec: {}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: foo}
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: reviews, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec: {hosts: [example.com]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default}
spec: {accessLogging: [{providers: [{name: envoy}]}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm}
spec: {address: 10.0.0.1}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: f}
spec: {configPatches: []}
---
apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: pc}
spec: {concurrency: 0}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: w}
spec: {url: oci://x}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: httpbin}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
)";

TEST(KubectlFiles, MixedFileKeepsTheSecurityKindsAndListsTheRest) {
  auto set = parse_resources(kMixed, "app.yaml");
  ASSERT_TRUE(set) << set.error().message;
  // The security kinds and Istio's networking kinds meshguard acts on (DestinationRule, Gateway,
  // VirtualService, ServiceEntry) are kept.
  ASSERT_EQ(set->size(), 6u);
  EXPECT_EQ(set->authorization_policies[0].meta.full_name(), "foo/deny-all");
  EXPECT_EQ(set->peer_authentications[0].meta.full_name(), "istio-system/default");
  ASSERT_EQ(set->destination_rules.size(), 1u);
  ASSERT_EQ(set->virtual_services.size(), 1u);
  EXPECT_EQ(set->virtual_services[0].meta.full_name(), "foo/reviews");
  ASSERT_EQ(set->gateways.size(), 1u);
  ASSERT_EQ(set->service_entries.size(), 1u);
  ASSERT_EQ(set->skipped.size(), 10u);
  EXPECT_EQ(set->skipped[0].kind, "Service");
  EXPECT_EQ(set->skipped[0].name, "httpbin");
  EXPECT_EQ(set->skipped[0].line, 1);
  EXPECT_EQ(set->skipped[1].kind, "Deployment");
  EXPECT_EQ(set->skipped[1].ns, "foo");
  EXPECT_EQ(set->skipped[1].line, 10);
  EXPECT_EQ(set->skipped[3].kind, "Sidecar");
  EXPECT_EQ(set->skipped.back().kind, "ServiceAccount");
  const auto warning = skipped_warning(*set);
  EXPECT_EQ(
      warning.rfind("skipped 10 documents of kinds meshguard does not enforce: Service httpbin (app.yaml:1), "
                    "Deployment foo/httpbin (app.yaml:10), ConfigMap settings (app.yaml:19)",
                    0),
      0u)
      << warning;
  EXPECT_EQ(warning.find("DestinationRule"), std::string::npos) << warning;
  EXPECT_EQ(warning.find("VirtualService"), std::string::npos) << warning;
  EXPECT_EQ(warning.find('\n'), std::string::npos);  // one line
  // The kept resources' documents are their own text: re-parsed alone they are the same resource.
  auto again = parse_resources(set->authorization_policies[0].meta.document, "stored");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->size(), 1u);
  EXPECT_TRUE(again->skipped.empty());
  EXPECT_TRUE(skipped_warning(*again).empty());
}

TEST(KubectlFiles, UnknownSecurityKindOrBadKnownKindStillRefusesTheWholeFile) {
  struct Case {
    const char* name;
    std::string extra;
    std::string want;
  };
  const Case cases[] = {
      {"kind typo in security.istio.io",
       "apiVersion: security.istio.io/v1\nkind: AuthorisationPolicy\nmetadata: {name: x}\nspec: {}\n",
       "app.yaml:90: unknown kind \"AuthorisationPolicy\" in security.istio.io/v1"},
      {"unknown kind in meshguard.io",
       "apiVersion: meshguard.io/v1alpha1\nkind: Meshes\nmetadata: {name: default}\n",
       "app.yaml:90: unknown kind \"Meshes\""},
      {"known kind, wrong group",
       "apiVersion: networking.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\n",
       "app.yaml:90: AuthorizationPolicy: apiVersion must be"},
      {"malformed known kind",
       "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\nspec: {mtls: {mode: "
       "strict}}\n",
       "app.yaml:93: mtls.mode"},
      {"no apiVersion", "kind: VirtualService\nmetadata: {name: x}\n", "app.yaml:90: apiVersion is required"},
      {"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "app.yaml:90: kind is required"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto set = parse_resources(kMixed + "---\n" + c.extra, "app.yaml");
    ASSERT_FALSE(set);
    EXPECT_NE(set.error().message.find(c.want), std::string::npos) << set.error().message;
  }
}

std::string ap(const std::string& name, const std::string& ns, const std::string& action) {
  return "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  action: " + action +
         "\n  rules: [{to: [{operation: {paths: [/x]}}]}]\n";
}

TEST(KubectlFiles, SameNameInOneTextTheLaterDocumentWins) {
  const std::string text = ap("p", "foo", "ALLOW") + "---\n" + ap("other", "foo", "AUDIT") + "---\n" +
                           ap("p", "foo", "DENY") + "---\n" + ap("p", "bar", "ALLOW");
  auto set = parse_resources(text, "one.yaml");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->authorization_policies.size(), 3u);
  // Load order is kept for the rest; the winner sits where the later document was.
  EXPECT_EQ(set->authorization_policies[0].meta.full_name(), "foo/other");
  EXPECT_EQ(set->authorization_policies[1].meta.full_name(), "foo/p");
  EXPECT_EQ(set->authorization_policies[1].action, Action::Deny);
  EXPECT_EQ(set->authorization_policies[1].meta.line, 19);
  EXPECT_EQ(set->authorization_policies[2].meta.full_name(), "bar/p");  // another namespace: another resource
  ASSERT_EQ(set->replaced.size(), 1u);
  EXPECT_EQ(set->replaced[0].kind, "AuthorizationPolicy");
  EXPECT_EQ(set->replaced[0].full_name, "foo/p");
  EXPECT_EQ(set->replaced[0].source + ":" + std::to_string(set->replaced[0].line), "one.yaml:1");
  EXPECT_EQ(set->replaced[0].by_source + ":" + std::to_string(set->replaced[0].by_line), "one.yaml:19");
}

TEST(KubectlFiles, SameNameAcrossFilesTheLaterFileWins) {
  auto first = parse_resources(ap("p", "foo", "DENY") + "---\n" + ap("q", "foo", "ALLOW"), "a.yaml");
  auto second = parse_resources(ap("p", "foo", "ALLOW"), "b.yaml");
  auto third = parse_resources(ap("p", "foo", "AUDIT"), "c.yaml");
  ASSERT_TRUE(first && second && third);
  ResourceSet all;
  all.append(std::move(*first));
  all.append(std::move(*second));
  all.append(std::move(*third));
  ASSERT_EQ(all.authorization_policies.size(), 2u);
  EXPECT_EQ(all.authorization_policies[1].meta.full_name(), "foo/p");
  EXPECT_EQ(all.authorization_policies[1].action, Action::Audit);
  EXPECT_EQ(all.authorization_policies[1].meta.source, "c.yaml");
  // Documents keep their load order across files (what the control plane reports and stores by).
  EXPECT_LT(all.authorization_policies[0].meta.order, all.authorization_policies[1].meta.order);
  ASSERT_EQ(all.replaced.size(), 2u);
  EXPECT_EQ(all.replaced[0].source, "a.yaml");
  EXPECT_EQ(all.replaced[0].by_source, "b.yaml");
  EXPECT_EQ(all.replaced[1].source, "b.yaml");
  EXPECT_EQ(all.replaced[1].by_source, "c.yaml");
  // Kinds are separate names: a PeerAuthentication p does not replace the AuthorizationPolicy p.
  auto pa = parse_resources(
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: foo}\n",
      "d.yaml");
  ASSERT_TRUE(pa);
  all.append(std::move(*pa));
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(all.replaced.size(), 2u);
}

TEST(KubectlFiles, AnalyzeReportsEachReplacedDocumentWithBothLocations) {
  auto set = parse_resources(ap("p", "foo", "ALLOW") + "---\n" + ap("p", "foo", "DENY"), "one.yaml");
  ASSERT_TRUE(set);
  const auto findings = analyze(*set, MeshConfig{});
  const Finding* dup = nullptr;
  for (const auto& f : findings)
    if (f.code == "MG0007") dup = &f;
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(dup->severity, "warning");
  EXPECT_EQ(dup->resource, "foo/p");
  EXPECT_EQ(
      dup->message,
      "AuthorizationPolicy defined twice: one.yaml:1 is replaced by one.yaml:10 (the later document wins)");
  EXPECT_EQ(dup->location, "one.yaml:10");
}


const char* kMeshWideStrict = R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
spec:
  mtls:
    mode: STRICT
)";

TEST(KubectlFiles, NamespaceFromTheCommandLine) {
  // Without -n: "default", and the stored text is left as written.
  auto plain = parse_resources(kMeshWideStrict, "pa.yaml");
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(plain->peer_authentications[0].meta.full_name(), "default/default");
  EXPECT_EQ(plain->peer_authentications[0].meta.document, kMeshWideStrict);
  // With -n: the namespace, also in the document text, which re-parses alone to the same resource.
  auto placed = parse_resources(kMeshWideStrict, "pa.yaml", "istio-system");
  ASSERT_TRUE(placed) << placed.error().message;
  const auto& meta = placed->peer_authentications[0].meta;
  EXPECT_EQ(meta.full_name(), "istio-system/default");
  EXPECT_EQ(meta.line, 1);
  EXPECT_EQ(
      meta.document,
      "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  namespace: istio-system\n"
      "  name: default\nspec:\n  mtls:\n    mode: STRICT\n");
  auto stored = parse_resources(meta.document, "stored");
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(stored->peer_authentications[0].meta.full_name(), "istio-system/default");
  EXPECT_EQ(stored->peer_authentications[0].mode, MtlsMode::Strict);
  // -n default: nothing to write.
  auto def = parse_resources(kMeshWideStrict, "pa.yaml", "default");
  ASSERT_TRUE(def);
  EXPECT_EQ(def->peer_authentications[0].meta.document, kMeshWideStrict);
}

TEST(KubectlFiles, NamespaceIsWrittenIntoEveryMetadataStyle) {
  struct Case {
    const char* name;
    std::string text;
  };
  const Case cases[] = {
      {"flow",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {}\n"},
      {"flow with labels",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: p , labels: {a: "
       "b}}\n"},
      {"json",
       R"({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": {"name": "p"}})"},
      {"after a marker and a comment",
       "# head\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n    # c\n    "
       "name: p\n"},
      {"deeper indentation",
       "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n      labels:\n        a: "
       "b\n      name: p\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto set = parse_resources(c.text, "ap.yaml", "foo");
    ASSERT_TRUE(set) << set.error().message;
    ASSERT_EQ(set->authorization_policies.size(), 1u);
    EXPECT_EQ(set->authorization_policies[0].meta.full_name(), "foo/p");
    auto again = parse_resources(set->authorization_policies[0].meta.document, "stored");
    ASSERT_TRUE(again) << again.error().message << "\n" << set->authorization_policies[0].meta.document;
    EXPECT_EQ(again->authorization_policies[0].meta.full_name(), "foo/p");
  }
  // An anchored metadata mapping is not rewritten by guesswork: refused with file:line.
  auto anchored = parse_resources(
      "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: &m\n  name: p\n", "ap.yaml",
      "foo");
  ASSERT_FALSE(anchored);
  EXPECT_NE(anchored.error().message.find("ap.yaml:3: cannot add namespace foo"), std::string::npos)
      << anchored.error().message;
}

TEST(KubectlFiles, NamespaceMismatchIsRefusedWithFileAndLine) {
  const std::string text = std::string(kMeshWideStrict) + "---\n" + ap("p", "foo", "DENY");
  auto ok = parse_resources(text, "two.yaml", "foo");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->peer_authentications[0].meta.ns, "foo");
  EXPECT_EQ(ok->authorization_policies[0].meta.ns, "foo");
  auto bad = parse_resources(text, "two.yaml", "bar");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "policy.namespace_mismatch");
  EXPECT_NE(
      bad.error().message.find("two.yaml:13: the namespace from the provided object (\"foo\") does not match "
                               "the namespace given with -n/--namespace (\"bar\")"),
      std::string::npos)
      << bad.error().message;
  // A Mesh is cluster-scoped: -n does not apply to it.
  auto mesh = parse_resources(
      "apiVersion: meshguard.io/v1alpha1\nkind: Mesh\nmetadata: {name: default, namespace: x}\n", "mesh.yaml",
      "bar");
  ASSERT_TRUE(mesh) << mesh.error().message;
  EXPECT_EQ(mesh->meshes[0].meta.ns, "");
  // -n must be a namespace name.
  for (const char* ns : {"Foo", "a/b", "-a", "a b", "a\nnamespace: x"}) {
    auto r = parse_resources(kMeshWideStrict, "pa.yaml", ns);
    ASSERT_FALSE(r) << ns;
    EXPECT_EQ(r.error().code, "policy.bad_namespace");
  }
}

}  // namespace
}  // namespace mg::policy
