// proxy/config.h — the standalone proxy's YAML configuration (`meshguard-proxy --config FILE`).
// Every mapping is checked against its known fields: an unknown or mistyped field is an error
// naming file:line, so a typo never silently disables a security setting.
//
//   workload: {name: details, namespace: bookinfo, serviceAccount: bookinfo-details, labels: {app: details},
//              address: 10.0.0.2}   # optional: where other proxies reach this one (service registry;
//                                   # told to the control plane, else a non-wildcard inbound listener's
//                                   # address, else the address the control plane sees the stream from)
//   tls: {certChain: cert-chain.pem, key: key.pem, trustBundle: root-cert.pem}   # watched, hot-reloaded
//   policyDir: policies/          # Istio policy files, enforced and watched (polled every 250 ms):
//                                 # a bad file refuses start-up; later, it keeps the last good set
//   accessLog: access.log         # "-" or absent: stdout
//   workers: 2                    # absent/0: one per core
//   gatewayTopology: {numTrustedProxies: 1}   # proxies trusted in front of this one (a gateway behind
//                                 # a load balancer): remote.ip / remoteIpBlocks take the Nth
//                                 # X-Forwarded-For entry from the right. Absent: the Mesh
//                                 # document's value (Mesh.spec.gatewayTopology), else 0 = the
//                                 # peer's address, XFF ignored (Istio's proxy.istio.io/config)
//   gateway: {credentialsDir: creds/, numTrustedProxies: 1, proxyProtocol: false}   # gateway mode
//                                 # (issue 20): Gateway/VirtualService documents selecting this
//                                 # workload's labels give its listeners and routes; an HTTPS server's
//                                 # credentialName NAME is read from credentialsDir/NAME/{tls.crt,tls.key};
//                                 # numTrustedProxies as gatewayTopology's (both given: refused);
//                                 # proxyProtocol: accepted connections start with a PROXY v1/v2 header;
//                                 # its listeners ("listening gateway[i] ADDR:PORT") bind workload.address
//                                 # (absent: 0.0.0.0), planned at start-up (proxy/gateway_mode.h)
//   inbound:                      # port 0: kernel-chosen, printed as "listening inbound[i] ADDR:PORT"
//     - {port: 15006, address: 0.0.0.0, appPort: 9080, protocol: http}   # http | http2 | grpc | tcp
//   outbound:
//     - {listen: "127.0.0.1:15001", destination: "10.0.0.2:15006", protocol: http,
//        identities: [spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews]}
//     - {listen: "127.0.0.1:15080", protocol: http}   # no destination: by Host through the registry
//       # (the Service + ServiceEndpoints documents of policyDir / the control plane's push):
//       # details, details.default[.svc[.cluster.local]] with or without :PORT; unknown host → 404
//       # (flag NR), no healthy endpoint → 503 (UH); secure naming from the registry
//     - {listen: "127.0.0.1:15432", service: ratings.prod, port: 5432}   # one service port:
//       # TCP spliced, or HTTP when the Service declares the port http/http2/grpc
//   outlierDetection: {consecutiveErrors: 5, baseEjectionTimeMs: 30000, maxEjectionTimeMs: 300000,
//                      maxEjectionPercent: 10}   # registry endpoints' passive health (these defaults)
//   admin: {port: 15000, address: 127.0.0.1}
//   limits: {headerTimeoutMs: 10000, idleTimeoutMs: 300000, upstreamTimeoutMs: 60000,
//            drainTimeoutMs: 5000, maxConnections: 10000, maxHeaderBytes: 61440, maxHeaders: 100}
// Inbound mTLS mode: PeerAuthentication in policyDir decides it per port (its portLevelMtls keys
// are the appPort, as Istio's are the workload port); with no PeerAuthentication applying, PERMISSIVE
// with a tls section and DISABLE without. `mtlsMode: STRICT|PERMISSIVE|DISABLE` on a port is an
// explicit operator override of the listener (it wins over PeerAuthentication, and survives policy
// reloads); a PeerAuthentication STRICT still denies plaintext requests in the chain (fail closed).
// RequestAuthentication jwtRules with a jwksUri (or only an issuer: OpenID discovery) need no
// setting here: the proxy fetches their keys
// in the background and re-fetches on every policy reload and every 20 minutes (proxy/jwks_keys.h);
// until they arrive such tokens get 401. The fetcher refuses link-local and cloud-metadata
// addresses only, so a JWKS server on 127.0.0.1 works as is.
// Defaults: inbound protocol http, outbound protocol tcp (the Protocol enum says what each means).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "tls/tls.h"

namespace mg::proxy {

// Istio's port protocols. http: HTTP/1.1 and HTTP/2 (h2c prior knowledge, or ALPN h2) accepted
// from the client, told apart by the connection preface; the app is spoken to in HTTP/1.1.
// http2 / grpc: the same from the client; the app speaks HTTP/2 (h2c prior knowledge). tcp: bytes.
// On an outbound route the three HTTP values are requests relayed to the destination proxy over
// HTTP/2 when it selects ALPN h2, HTTP/1.1 otherwise.
enum class Protocol { Http, Http2, Grpc, Tcp };
inline bool is_http(Protocol p) { return p != Protocol::Tcp; }
// The app behind an inbound port with this protocol speaks HTTP/2.
inline bool app_speaks_h2(Protocol p) { return p == Protocol::Http2 || p == Protocol::Grpc; }
std::optional<Protocol> parse_protocol(std::string_view text);
// Per inbound port: the listener's treatment of the first bytes (see the mode rules above).
enum class MtlsMode { Strict, Permissive, Disable };

std::string_view to_string(Protocol p);
std::string_view to_string(MtlsMode m);

struct WorkloadInfo {
  std::string name;
  std::string ns;
  std::string service_account;
  std::map<std::string, std::string> labels;
  std::string address;  // workload.address, "" when absent (an IP address when present)
};

struct InboundPort {
  std::string address = "0.0.0.0";
  uint16_t port = 0;  // 0: the kernel picks one (printed on stdout)
  uint16_t app_port = 0;
  Protocol protocol = Protocol::Http;
  std::optional<MtlsMode> mtls;  // the operator override; absent: PeerAuthentication decides
  // Not from the file: gateway listener i (proxy/gateway_mode.h), whose port this is, and whether
  // it terminates TLS itself (an HTTPS SIMPLE server: the credentialName's certificate).
  std::optional<size_t> gateway;
  bool edge_tls = false;
  // A TLS PASSTHROUGH server's listener: the mesh's mTLS (STRICT) carrying an app's own TLS, routed
  // by its SNI (VirtualService tls[]) and relayed untouched (Inbound::serve_passthrough).
  bool passthrough = false;
};

struct OutboundRoute {
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 0;
  std::string destination_address;  // "": the registry decides (by_registry)
  uint16_t destination_port = 0;
  std::vector<std::string> identities;  // SPIFFE IDs the server may present (secure naming)
  // Without a destination: `service` empty routes each request by its Host / :authority through
  // the registry (protocol http); else the listener is one service port, service.service_ns:
  // service_port, TCP or HTTP as the Service declares that port. Endpoints, balancing and the
  // identities to expect come from the registry (proxy/registry.h, proxy/balancer.h).
  std::string service, service_ns;
  uint16_t service_port = 0;
  bool by_registry() const { return destination_address.empty(); }
  // tcp: each app connection is spliced over its own mTLS connection. http / http2 / grpc:
  // requests are parsed and sent over pooled mTLS connections (reused across app connections):
  // one HTTP/2 connection carrying many streams when the destination selects ALPN h2, else
  // keep-alive HTTP/1.1 ones.
  Protocol protocol = Protocol::Tcp;
};

// Passive health of registry endpoints (proxy/balancer.h); defaults are Istio DestinationRule's
// outlierDetection defaults. Shorter values make a test's ejection quick.
struct OutlierSettings {
  uint32_t consecutive_errors = 5;                     // consecutive connect failures / 5xx
  std::chrono::milliseconds base_ejection{30'000};     // × the times ejected
  std::chrono::milliseconds max_ejection{300'000};     // cap on one ejection
  uint32_t max_ejection_percent = 10;                  // of a port's endpoints (at least 1, never all)
};

// The `gateway:` block: present means this proxy is a gateway (ingress or egress).
struct GatewaySettings {
  std::string credentials_dir;   // credentialName NAME → credentials_dir/NAME/{tls.crt,tls.key}
  bool proxy_protocol = false;   // a PROXY protocol v1/v2 header precedes each accepted connection
};

struct ProxyLimits {
  uint32_t header_timeout_ms = 10'000;  // whole request head must arrive within this (slowloris)
  uint32_t idle_timeout_ms = 300'000;   // keep-alive connection with no request in flight
  uint32_t upstream_timeout_ms = 60'000;  // app response head
  uint32_t drain_timeout_ms = 5'000;    // SIGTERM: wait this long for in-flight work
  uint32_t max_connections = 10'000;    // downstream connections over all listeners
  uint32_t max_head_bytes = 60 * 1024;
  uint32_t max_headers = 100;
};

struct ProxyConfig {
  std::string source;  // file it came from
  WorkloadInfo workload;
  std::optional<tls::TlsFiles> tls;
  std::optional<std::string> policy_dir;
  std::vector<InboundPort> inbound;
  std::vector<OutboundRoute> outbound;
  std::string admin_address = "127.0.0.1";
  std::optional<uint16_t> admin_port;
  std::string access_log;  // "" or "-": stdout
  uint32_t workers = 0;    // 0: one per core
  ProxyLimits limits;
  OutlierSettings outlier;  // outlierDetection
  std::optional<uint32_t> num_trusted_proxies;  // gatewayTopology.numTrustedProxies: over the Mesh's
  std::optional<GatewaySettings> gateway;       // gateway mode (the `gateway:` block)
  // Not from the file: set by meshguard-proxy with a control plane. policyDir then holds the
  // agent's fail-static copy, read at start-up only; updates arrive by Proxy::apply_policies.
  bool policy_pushed = false;
};

// Standalone: credentials and policies from the files the config names. ControlPlane: the agent
// supplies both (its state directory), so `tls` and `policyDir` must be absent.
enum class ConfigMode { Standalone, ControlPlane };

Result<ProxyConfig> parse_config(const std::string& yaml_text, const std::string& source_name,
                                 ConfigMode mode = ConfigMode::Standalone);
Result<ProxyConfig> load_config(const std::string& path, ConfigMode mode = ConfigMode::Standalone);

}  // namespace mg::proxy
