#include "proxy/config.h"

#include <gtest/gtest.h>

namespace mg::proxy {
namespace {

constexpr const char* kFull = R"(workload:
  name: details
  namespace: bookinfo
  serviceAccount: bookinfo-details
  labels: {app: details, version: v1}
tls:
  certChain: /etc/mg/cert-chain.pem
  key: /etc/mg/key.pem
  trustBundle: /etc/mg/root-cert.pem
accessLog: /var/log/mg/access.log
workers: 3
inbound:
  - {port: 15006, appPort: 9080, protocol: http, mtlsMode: STRICT}
  - {port: 15007, address: 127.0.0.1, appPort: 9081, protocol: tcp}
outbound:
  - listen: 127.0.0.1:15001
    destination: 10.0.0.2:15006
    identities: [spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews]
    protocol: http
  - {listen: "127.0.0.1:15002", destination: "10.0.0.3:15006", identities: [spiffe://cluster.local/ns/x/sa/y]}
admin: {port: 15000}
limits: {headerTimeoutMs: 2000, idleTimeoutMs: 30000, maxConnections: 5, maxHeaderBytes: 4096, maxHeaders: 20}
)";

TEST(ProxyConfig, ParsesEveryField) {
  auto cfg = parse_config(kFull, "proxy.yaml");
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  EXPECT_EQ(cfg->workload.name, "details");
  EXPECT_EQ(cfg->workload.ns, "bookinfo");
  EXPECT_EQ(cfg->workload.service_account, "bookinfo-details");
  EXPECT_EQ(cfg->workload.labels.at("version"), "v1");
  ASSERT_TRUE(cfg->tls);
  EXPECT_EQ(cfg->tls->key, "/etc/mg/key.pem");
  EXPECT_EQ(cfg->access_log, "/var/log/mg/access.log");
  EXPECT_EQ(cfg->workers, 3u);
  ASSERT_EQ(cfg->inbound.size(), 2u);
  EXPECT_EQ(cfg->inbound[0].port, 15006);
  EXPECT_EQ(cfg->inbound[0].address, "0.0.0.0");
  EXPECT_EQ(cfg->inbound[0].mtls, MtlsMode::Strict);
  EXPECT_EQ(cfg->inbound[1].protocol, Protocol::Tcp);
  EXPECT_FALSE(cfg->inbound[1].mtls.has_value());  // no override: PeerAuthentication decides
  ASSERT_EQ(cfg->outbound.size(), 2u);
  EXPECT_EQ(cfg->outbound[0].protocol, Protocol::Http);
  EXPECT_EQ(cfg->outbound[1].protocol, Protocol::Tcp);  // the default
  EXPECT_EQ(cfg->outbound[0].listen_port, 15001);
  EXPECT_EQ(cfg->outbound[0].destination_address, "10.0.0.2");
  EXPECT_EQ(cfg->outbound[0].identities.at(0), "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");
  EXPECT_EQ(cfg->admin_port, 15000);
  EXPECT_EQ(cfg->limits.header_timeout_ms, 2000u);
  EXPECT_EQ(cfg->limits.max_connections, 5u);
  EXPECT_EQ(cfg->limits.max_head_bytes, 4096u);
  EXPECT_EQ(cfg->limits.max_headers, 20u);
}

std::string error_of(const std::string& yaml) {
  auto cfg = parse_config(yaml, "p.yaml");
  return cfg ? std::string("(accepted)") : cfg.error().message;
}

TEST(ProxyConfig, UnknownFieldsAreRejectedWithFileAndLine) {
  EXPECT_EQ(error_of("workload: {namespace: a, serviceAccount: b}\nadmn: {port: 1}\n"),
            "p.yaml:2: unknown field 'admn' in the proxy config");
  EXPECT_EQ(error_of("workload:\n  namespace: a\n  serviceAccount: b\n  labelz: {}\n"),
            "p.yaml:4: unknown field 'labelz' in workload");
  EXPECT_EQ(error_of("workload: {namespace: a, serviceAccount: b}\ninbound:\n  - port: 1\n    appPort: 2\n    mtls: STRICT\n"),
            "p.yaml:5: unknown field 'mtls' in inbound[0]");
  EXPECT_EQ(error_of("workload: {namespace: a, serviceAccount: b}\nlimits: {headerTimeout: 5}\n"),
            "p.yaml:2: unknown field 'headerTimeout' in limits");
}

TEST(ProxyConfig, BadValuesAreRejected) {
  const std::string w = "workload: {namespace: a, serviceAccount: b}\n";
  EXPECT_NE(error_of(w + "inbound: [{port: 1, appPort: 2, mtlsMode: strict}]\n").find("must be STRICT, PERMISSIVE or DISABLE"), std::string::npos);
  EXPECT_NE(error_of(w + "inbound: [{port: 1, appPort: 2, mtlsMode: STRICT}]\n").find("needs a tls section"), std::string::npos);
  // With a control plane the certificates come from the agent: an override is fine without tls.
  auto cp = parse_config(w + "inbound: [{port: 1, appPort: 2, mtlsMode: STRICT}]\n", "t.yaml", ConfigMode::ControlPlane);
  ASSERT_TRUE(cp) << cp.error().to_string();
  EXPECT_EQ(cp->inbound[0].mtls, MtlsMode::Strict);
  EXPECT_NE(error_of(w + "inbound: [{port: 70000, appPort: 2}]\n").find("at most 65535"), std::string::npos);
  EXPECT_NE(error_of(w + "inbound: [{port: 1, appPort: 0}]\n").find("must not be 0"), std::string::npos);
  EXPECT_NE(error_of(w + "inbound: [{port: 1, appPort: 2, protocol: udp}]\n").find("must be http, http2, grpc or tcp"),
            std::string::npos);
  EXPECT_NE(error_of(w + "inbound: [{port: 1, appPort: 2, protocol: HTTP2}]\n").find("must be http, http2, grpc or tcp"),
            std::string::npos);
  EXPECT_NE(error_of(w + "inbound: [{port: -1, appPort: 2}]\n").find("non-negative integer"), std::string::npos);
  EXPECT_NE(error_of(w + "tls: {certChain: a, key: b, trustBundle: c}\noutbound: [{listen: 'x', destination: '1.2.3.4:5', identities: [spiffe://a/b]}]\n")
                .find("must be ADDRESS:PORT"),
            std::string::npos);
  EXPECT_NE(error_of(w + "tls: {certChain: a, key: b, trustBundle: c}\noutbound: [{listen: '127.0.0.1:0', destination: '1.2.3.4:5', identities: [http://x]}]\n")
                .find("spiffe.bad_scheme"),
            std::string::npos);
  EXPECT_NE(error_of(w + "outbound: [{listen: '127.0.0.1:0', destination: '1.2.3.4:5', identities: [spiffe://a/b]}]\n")
                .find("need a tls section"),
            std::string::npos);
  EXPECT_NE(error_of(w + "tls: {certChain: a, key: b}\n").find("tls.trustBundle is required"), std::string::npos);
  EXPECT_NE(error_of(w + "limits: {headerTimeoutMs: 0}\n").find("must be positive"), std::string::npos);
  EXPECT_NE(error_of("workload: {namespace: a}\n").find("serviceAccount is required"), std::string::npos);
  EXPECT_NE(error_of("inbound: []\n").find("missing required field 'workload'"), std::string::npos);
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("[1, 2").find("p.yaml:"), std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find("must be a mapping"), std::string::npos);
}

TEST(ProxyConfig, LoadReportsMissingFile) {
  auto cfg = load_config("/nonexistent/proxy.yaml");
  ASSERT_FALSE(cfg);
}

TEST(ProxyConfig, GatewayTopologyNumTrustedProxies) {
  const std::string w = "workload: {namespace: ns, serviceAccount: sa}\n";
  auto absent = parse_config(w, "proxy.yaml");
  ASSERT_TRUE(absent) << absent.error().to_string();
  EXPECT_FALSE(absent->num_trusted_proxies);  // the Mesh document decides
  auto zero = parse_config(w + "gatewayTopology: {numTrustedProxies: 0}\n", "proxy.yaml");
  ASSERT_TRUE(zero) << zero.error().to_string();
  EXPECT_EQ(zero->num_trusted_proxies, 0u);
  auto two =
      parse_config(w + "gatewayTopology:\n  numTrustedProxies: 2\n", "proxy.yaml", ConfigMode::ControlPlane);
  ASSERT_TRUE(two) << two.error().to_string();
  EXPECT_EQ(two->num_trusted_proxies, 2u);
  for (const char* bad :
       {"gatewayTopology: {numTrustedProxies: -1}", "gatewayTopology: {numTrustedProxies: x}",
        "gatewayTopology: {numTrustedProxys: 1}", "gatewayTopology: 1"}) {
    auto r = parse_config(w + bad + "\n", "proxy.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().to_string().find("proxy.yaml:2"), std::string::npos) << r.error().to_string();
  }
}

TEST(ProxyConfig, GatewayBlock) {
  const std::string w = "workload: {namespace: ns, serviceAccount: sa}\n";
  auto none = parse_config(w, "proxy.yaml");
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_FALSE(none->gateway);
  auto gw = parse_config(w + "gateway: {credentialsDir: creds, numTrustedProxies: 1, proxyProtocol: true}\n",
                         "proxy.yaml");
  ASSERT_TRUE(gw) << gw.error().to_string();
  ASSERT_TRUE(gw->gateway);
  EXPECT_EQ(gw->gateway->credentials_dir, "creds");
  EXPECT_TRUE(gw->gateway->proxy_protocol);
  EXPECT_EQ(gw->num_trusted_proxies, 1u);
  auto bare = parse_config(w + "gateway: {}\n", "proxy.yaml");
  ASSERT_TRUE(bare) << bare.error().to_string();
  ASSERT_TRUE(bare->gateway);
  EXPECT_FALSE(bare->gateway->proxy_protocol);
  EXPECT_FALSE(bare->num_trusted_proxies);
  for (const char* bad : {"gateway: {proxyProtocol: yes}", "gateway: {credentialDir: x}", "gateway: 1",
                          "gateway: {numTrustedProxies: -1}",
                          "gatewayTopology: {numTrustedProxies: 1}\ngateway: {numTrustedProxies: 2}"}) {
    auto r = parse_config(w + bad + "\n", "proxy.yaml");
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().to_string().find("proxy.yaml:"), std::string::npos) << r.error().to_string();
  }
}

TEST(ProxyConfig, IstioPortProtocols) {
  const std::string w = "workload: {namespace: ns, serviceAccount: sa}\ntls: {certChain: a, key: b, trustBundle: c}\n";
  auto cfg = parse_config(w +
                              "inbound:\n"
                              "  - {port: 1, appPort: 2, protocol: http}\n"
                              "  - {port: 3, appPort: 4, protocol: http2}\n"
                              "  - {port: 5, appPort: 6, protocol: grpc}\n"
                              "  - {port: 7, appPort: 8, protocol: tcp}\n"
                              "outbound:\n"
                              "  - {listen: '127.0.0.1:0', destination: '1.2.3.4:5', identities: [spiffe://a/b], protocol: grpc}\n"
                              "  - {listen: '127.0.0.1:0', destination: '1.2.3.4:5', identities: [spiffe://a/b], protocol: http2}\n",
                          "t.yaml");
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  EXPECT_EQ(cfg->inbound[0].protocol, Protocol::Http);
  EXPECT_EQ(cfg->inbound[1].protocol, Protocol::Http2);
  EXPECT_EQ(cfg->inbound[2].protocol, Protocol::Grpc);
  EXPECT_EQ(cfg->inbound[3].protocol, Protocol::Tcp);
  EXPECT_EQ(cfg->outbound[0].protocol, Protocol::Grpc);
  EXPECT_EQ(cfg->outbound[1].protocol, Protocol::Http2);
  // Which app ports the proxy speaks HTTP/2 to.
  EXPECT_FALSE(app_speaks_h2(Protocol::Http));
  EXPECT_TRUE(app_speaks_h2(Protocol::Http2));
  EXPECT_TRUE(app_speaks_h2(Protocol::Grpc));
  EXPECT_FALSE(is_http(Protocol::Tcp));
  for (Protocol p : {Protocol::Http, Protocol::Http2, Protocol::Grpc, Protocol::Tcp}) EXPECT_EQ(parse_protocol(to_string(p)), p);
}

}  // namespace
}  // namespace mg::proxy

namespace mg::proxy {
namespace {

TEST(ProxyConfig, RegistryRoutes) {
  const std::string head = "workload: {namespace: a, serviceAccount: b}\ntls: {certChain: a, key: b, trustBundle: c}\n";
  auto cfg = parse_config(head + R"(outbound:
  - {listen: "127.0.0.1:15080", protocol: http}
  - {listen: "127.0.0.1:15432", service: ratings.prod, port: 5432}
  - {listen: "127.0.0.1:15001", destination: "10.0.0.2:15006", identities: [spiffe://td/ns/a/sa/b]}
outlierDetection: {consecutiveErrors: 2, baseEjectionTimeMs: 500, maxEjectionTimeMs: 2000, maxEjectionPercent: 50}
)",
                          "p.yaml");
  ASSERT_TRUE(cfg) << cfg.error().to_string();
  ASSERT_EQ(cfg->outbound.size(), 3u);
  EXPECT_TRUE(cfg->outbound[0].by_registry());
  EXPECT_TRUE(cfg->outbound[0].service.empty());
  EXPECT_EQ(cfg->outbound[0].protocol, Protocol::Http);
  EXPECT_TRUE(cfg->outbound[1].by_registry());
  EXPECT_EQ(cfg->outbound[1].service, "ratings");
  EXPECT_EQ(cfg->outbound[1].service_ns, "prod");
  EXPECT_EQ(cfg->outbound[1].service_port, 5432);
  EXPECT_FALSE(cfg->outbound[2].by_registry());
  EXPECT_EQ(cfg->outlier.consecutive_errors, 2u);
  EXPECT_EQ(cfg->outlier.base_ejection.count(), 500);
  EXPECT_EQ(cfg->outlier.max_ejection.count(), 2000);
  EXPECT_EQ(cfg->outlier.max_ejection_percent, 50u);
  // Defaults: Istio's outlierDetection defaults.
  auto plain = parse_config(head, "p.yaml");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->outlier.consecutive_errors, 5u);
  EXPECT_EQ(plain->outlier.base_ejection.count(), 30'000);
  EXPECT_EQ(plain->outlier.max_ejection_percent, 10u);

  auto error_of = [&](const std::string& outbound) {
    auto r = parse_config(head + "outbound: [" + outbound + "]\n", "p.yaml");
    return r ? std::string() : r.error().to_string();
  };
  EXPECT_NE(error_of("{listen: '127.0.0.1:0'}").find("or protocol: http"), std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', protocol: tcp}").find("or protocol: http"), std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', protocol: http, identities: [spiffe://a/b]}").find("come from the registry"),
            std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', service: ratings, port: 1}").find("NAME.NAMESPACE"), std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', service: a.b.c, port: 1}").find("NAME.NAMESPACE"), std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', service: a.b}").find("service needs port"), std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', service: a.b, port: 0}").find("must not be 0"), std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', service: a.b, port: 1, protocol: tcp}").find("comes from its Service"),
            std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', port: 1, protocol: http}").find("port goes with service"),
            std::string::npos);
  EXPECT_NE(error_of("{listen: '127.0.0.1:0', destination: '1.2.3.4:5', identities: [spiffe://a/b], service: a.b}")
                .find("without destination"),
            std::string::npos);
  auto no_tls = parse_config("workload: {namespace: a, serviceAccount: b}\noutbound: [{listen: '127.0.0.1:0', protocol: http}]\n",
                             "p.yaml");
  ASSERT_FALSE(no_tls);
  EXPECT_NE(no_tls.error().to_string().find("need a tls section"), std::string::npos);
  auto bad = parse_config(head + "outlierDetection: {consecutiveErrors: 0}\n", "p.yaml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("must be positive"), std::string::npos);
  EXPECT_FALSE(parse_config(head + "outlierDetection: {maxEjectionPercent: 101}\n", "p.yaml"));
  EXPECT_FALSE(parse_config(head + "outlierDetection: {interval: 1}\n", "p.yaml"));
}

}  // namespace
}  // namespace mg::proxy
