#include "proxy/config.h"

#include <algorithm>
#include <initializer_list>
#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "policy/match.h"

namespace mg::proxy {

std::string_view to_string(Protocol p) {
  switch (p) {
    case Protocol::Http: return "http";
    case Protocol::Http2: return "http2";
    case Protocol::Grpc: return "grpc";
    case Protocol::Tcp: return "tcp";
  }
  return "?";
}

std::optional<Protocol> parse_protocol(std::string_view text) {
  for (Protocol p : {Protocol::Http, Protocol::Http2, Protocol::Grpc, Protocol::Tcp}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}
std::string_view to_string(MtlsMode m) {
  switch (m) {
    case MtlsMode::Strict: return "STRICT";
    case MtlsMode::Permissive: return "PERMISSIVE";
    case MtlsMode::Disable: return "DISABLE";
  }
  return "?";
}

namespace {

// A config error that names where it is; thrown only inside this file, caught in parse_config.
struct ConfigError {
  std::string message;
};

class Parser {
 public:
  Parser(std::string source, ConfigMode mode) : source_(std::move(source)), mode_(mode) {}

  [[noreturn]] void error(const YAML::Node& node, const std::string& what) const {
    int line = node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    throw ConfigError{source_ + ":" + std::to_string(line) + ": " + what};
  }

  void expect_map(const YAML::Node& node, const std::string& where, std::initializer_list<const char*> fields) const {
    if (!node.IsMap()) error(node, where + " must be a mapping");
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      bool known = std::any_of(fields.begin(), fields.end(), [&](const char* f) { return key == f; });
      if (!known) error(kv.first, "unknown field '" + key + "' in " + where);
    }
  }

  std::string str(const YAML::Node& node, const std::string& where) const {
    if (!node.IsScalar()) error(node, where + " must be a string");
    return node.as<std::string>();
  }

  uint64_t number(const YAML::Node& node, const std::string& where, uint64_t max) const {
    if (!node.IsScalar()) error(node, where + " must be a number");
    const std::string& s = node.Scalar();
    if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      error(node, where + " must be a non-negative integer");
    }
    uint64_t v = std::stoull(s);
    if (v > max) error(node, where + " must be at most " + std::to_string(max));
    return v;
  }

  bool flag(const YAML::Node& node, const std::string& where) const {
    if (node.IsScalar() && node.Scalar() == "true") return true;
    if (node.IsScalar() && node.Scalar() == "false") return false;
    error(node, where + " must be true or false");
  }

  uint16_t port(const YAML::Node& node, const std::string& where) const {
    return static_cast<uint16_t>(number(node, where, 65535));
  }

  // "127.0.0.1:8080" → address, port.
  std::pair<std::string, uint16_t> host_port(const YAML::Node& node, const std::string& where) const {
    std::string s = str(node, where);
    size_t colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) error(node, where + " must be ADDRESS:PORT");
    std::string port_text = s.substr(colon + 1);
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(port_text) > 65535) {
      error(node, where + ": bad port '" + port_text + "'");
    }
    return {s.substr(0, colon), static_cast<uint16_t>(std::stoul(port_text))};
  }

  // An outbound entry without destination: by Host ({listen, protocol: http}) or one service port
  // ({listen, service: NAME.NAMESPACE, port: N}); the registry supplies the rest.
  void registry_route(const YAML::Node& n, const std::string& where, OutboundRoute& r) const {
    if (n["identities"]) error(n["identities"], where + ": identities come from the registry without destination");
    if (n["service"]) {
      if (n["protocol"]) error(n["protocol"], where + ": a service port's protocol comes from its Service");
      if (!n["port"]) error(n, where + ": service needs port");
      std::string name = str(n["service"], where + ".service");
      size_t dot = name.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == name.size() || name.find('.', dot + 1) != std::string::npos)
        error(n["service"], where + ".service must be NAME.NAMESPACE");
      r.service = name.substr(0, dot);
      r.service_ns = name.substr(dot + 1);
      r.service_port = port(n["port"], where + ".port");
      if (r.service_port == 0) error(n["port"], where + ".port must not be 0");
      return;
    }
    if (n["port"]) error(n["port"], where + ": port goes with service");
    std::string proto = n["protocol"] ? str(n["protocol"], where + ".protocol") : "";
    if (proto != "http")
      error(n, where + " needs destination and identities, or protocol: http (by Host through the registry), or "
                       "service and port");
    r.protocol = Protocol::Http;
  }

  ProxyConfig parse(const YAML::Node& root) {
    ProxyConfig cfg;
    cfg.source = source_;
    expect_map(root, "the proxy config",
               {"workload", "tls", "policyDir", "inbound", "outbound", "admin", "accessLog", "workers",
                "limits", "gatewayTopology", "outlierDetection", "gateway"});
    if (auto w = root["workload"]) {
      expect_map(w, "workload", {"name", "namespace", "serviceAccount", "labels", "address"});
      if (w["name"]) cfg.workload.name = str(w["name"], "workload.name");
      if (w["namespace"]) cfg.workload.ns = str(w["namespace"], "workload.namespace");
      if (w["serviceAccount"]) cfg.workload.service_account = str(w["serviceAccount"], "workload.serviceAccount");
      if (auto labels = w["labels"]) {
        if (!labels.IsMap()) error(labels, "workload.labels must be a mapping");
        for (const auto& kv : labels) cfg.workload.labels[kv.first.as<std::string>()] = str(kv.second, "a label value");
      }
      if (auto address = w["address"]) {
        cfg.workload.address = str(address, "workload.address");
        if (!policy::parse_ip(cfg.workload.address)) error(address, "workload.address must be an IP address");
      }
    } else {
      error(root, "missing required field 'workload'");
    }
    if (cfg.workload.ns.empty()) error(root["workload"], "workload.namespace is required");
    if (cfg.workload.service_account.empty()) error(root["workload"], "workload.serviceAccount is required");

    if (mode_ == ConfigMode::ControlPlane) {
      // The agent supplies both from its state directory; a second source would be ambiguous.
      if (root["tls"]) error(root["tls"], "tls comes from the control plane (--control-plane); remove this section");
      if (root["policyDir"])
        error(root["policyDir"], "policies come from the control plane (--control-plane); remove policyDir");
    }
    if (auto t = root["tls"]) {
      expect_map(t, "tls", {"certChain", "key", "trustBundle"});
      for (const char* f : {"certChain", "key", "trustBundle"}) {
        if (!t[f]) error(t, std::string("tls.") + f + " is required");
      }
      cfg.tls = tls::TlsFiles{str(t["certChain"], "tls.certChain"), str(t["key"], "tls.key"),
                              str(t["trustBundle"], "tls.trustBundle")};
    }
    if (auto p = root["policyDir"]) cfg.policy_dir = str(p, "policyDir");
    if (auto a = root["accessLog"]) cfg.access_log = str(a, "accessLog");
    if (auto w = root["workers"]) cfg.workers = static_cast<uint32_t>(number(w, "workers", 256));
    if (auto g = root["gatewayTopology"]) {
      expect_map(g, "gatewayTopology", {"numTrustedProxies"});
      if (auto n = g["numTrustedProxies"])
        cfg.num_trusted_proxies =
            static_cast<uint32_t>(number(n, "gatewayTopology.numTrustedProxies", UINT32_MAX));
    }
    if (auto g = root["gateway"]) {
      expect_map(g, "gateway", {"credentialsDir", "numTrustedProxies", "proxyProtocol"});
      GatewaySettings gw;
      if (auto d = g["credentialsDir"]) gw.credentials_dir = str(d, "gateway.credentialsDir");
      if (auto n = g["numTrustedProxies"]) {
        // Two places for one number would leave a reader guessing which wins.
        if (cfg.num_trusted_proxies)
          error(n, "gateway.numTrustedProxies and gatewayTopology.numTrustedProxies both given; keep one");
        cfg.num_trusted_proxies = static_cast<uint32_t>(number(n, "gateway.numTrustedProxies", UINT32_MAX));
      }
      if (auto p = g["proxyProtocol"]) gw.proxy_protocol = flag(p, "gateway.proxyProtocol");
      cfg.gateway = std::move(gw);
    }

    if (auto in = root["inbound"]) {
      if (!in.IsSequence()) error(in, "inbound must be a list");
      for (size_t i = 0; i < in.size(); ++i) {
        std::string where = "inbound[" + std::to_string(i) + "]";
        const YAML::Node& n = in[i];
        expect_map(n, where, {"port", "address", "appPort", "protocol", "mtlsMode"});
        InboundPort p;
        if (!n["port"] || !n["appPort"]) error(n, where + " needs port and appPort");
        p.port = port(n["port"], where + ".port");
        p.app_port = port(n["appPort"], where + ".appPort");
        if (p.app_port == 0) error(n["appPort"], where + ".appPort must not be 0");
        if (n["address"]) p.address = str(n["address"], where + ".address");
        if (n["protocol"]) {
          auto proto = parse_protocol(str(n["protocol"], where + ".protocol"));
          if (!proto) error(n["protocol"], where + ".protocol must be http, http2, grpc or tcp");
          p.protocol = *proto;
        }
        if (n["mtlsMode"]) {
          std::string mode = str(n["mtlsMode"], where + ".mtlsMode");
          if (mode == "STRICT") p.mtls = MtlsMode::Strict;
          else if (mode == "PERMISSIVE") p.mtls = MtlsMode::Permissive;
          else if (mode == "DISABLE") p.mtls = MtlsMode::Disable;
          else error(n["mtlsMode"], where + ".mtlsMode must be STRICT, PERMISSIVE or DISABLE");
          // With a control plane the agent supplies the certificates after parsing.
          if (p.mtls != MtlsMode::Disable && !cfg.tls && mode_ == ConfigMode::Standalone)
            error(n["mtlsMode"], where + ": mtlsMode " + mode + " needs a tls section");
        }
        cfg.inbound.push_back(p);
      }
    }
    if (auto out = root["outbound"]) {
      if (!out.IsSequence()) error(out, "outbound must be a list");
      for (size_t i = 0; i < out.size(); ++i) {
        std::string where = "outbound[" + std::to_string(i) + "]";
        const YAML::Node& n = out[i];
        expect_map(n, where, {"listen", "destination", "identities", "protocol", "service", "port"});
        if (!n["listen"]) error(n, where + " needs listen");
        OutboundRoute r;
        std::tie(r.listen_address, r.listen_port) = host_port(n["listen"], where + ".listen");
        if (!n["destination"]) {
          registry_route(n, where, r);
          if (!cfg.tls && mode_ == ConfigMode::Standalone)
            error(n, where + ": outbound routes originate mTLS and need a tls section");
          cfg.outbound.push_back(r);
          continue;
        }
        if (n["service"] || n["port"]) error(n, where + ": service and port go without destination");
        if (!n["identities"]) error(n, where + " needs listen, destination and identities");
        std::tie(r.destination_address, r.destination_port) = host_port(n["destination"], where + ".destination");
        if (r.destination_port == 0) error(n["destination"], where + ".destination port must not be 0");
        if (!n["identities"].IsSequence() || n["identities"].size() == 0) {
          error(n["identities"], where + ".identities must be a non-empty list of SPIFFE IDs");
        }
        for (const auto& id : n["identities"]) {
          std::string s = str(id, where + ".identities[]");
          if (auto parsed = identity::SpiffeId::parse(s); !parsed) error(id, where + ": " + parsed.error().to_string());
          r.identities.push_back(s);
        }
        if (n["protocol"]) {
          auto proto = parse_protocol(str(n["protocol"], where + ".protocol"));
          if (!proto) error(n["protocol"], where + ".protocol must be http, http2, grpc or tcp");
          r.protocol = *proto;
        }
        if (!cfg.tls && mode_ == ConfigMode::Standalone)
          error(n, where + ": outbound routes originate mTLS and need a tls section");
        cfg.outbound.push_back(r);
      }
    }
    if (auto o = root["outlierDetection"]) {
      expect_map(o, "outlierDetection",
                 {"consecutiveErrors", "baseEjectionTimeMs", "maxEjectionTimeMs", "maxEjectionPercent"});
      if (o["consecutiveErrors"]) {
        cfg.outlier.consecutive_errors =
            static_cast<uint32_t>(number(o["consecutiveErrors"], "outlierDetection.consecutiveErrors", 1'000'000));
        if (cfg.outlier.consecutive_errors == 0)
          error(o["consecutiveErrors"], "outlierDetection.consecutiveErrors must be positive");
      }
      if (o["baseEjectionTimeMs"])
        cfg.outlier.base_ejection = std::chrono::milliseconds(
            number(o["baseEjectionTimeMs"], "outlierDetection.baseEjectionTimeMs", 86'400'000));
      if (o["maxEjectionTimeMs"])
        cfg.outlier.max_ejection = std::chrono::milliseconds(
            number(o["maxEjectionTimeMs"], "outlierDetection.maxEjectionTimeMs", 86'400'000));
      if (o["maxEjectionPercent"])
        cfg.outlier.max_ejection_percent =
            static_cast<uint32_t>(number(o["maxEjectionPercent"], "outlierDetection.maxEjectionPercent", 100));
    }
    if (auto a = root["admin"]) {
      expect_map(a, "admin", {"port", "address"});
      if (!a["port"]) error(a, "admin.port is required");
      cfg.admin_port = port(a["port"], "admin.port");
      if (a["address"]) cfg.admin_address = str(a["address"], "admin.address");
    }
    if (auto l = root["limits"]) {
      expect_map(l, "limits", {"headerTimeoutMs", "idleTimeoutMs", "upstreamTimeoutMs", "drainTimeoutMs",
                               "maxConnections", "maxHeaderBytes", "maxHeaders"});
      auto ms = [&](const char* f, uint32_t& v) {
        if (l[f]) {
          v = static_cast<uint32_t>(number(l[f], std::string("limits.") + f, 3'600'000));
          if (v == 0) error(l[f], std::string("limits.") + f + " must be positive");
        }
      };
      ms("headerTimeoutMs", cfg.limits.header_timeout_ms);
      ms("idleTimeoutMs", cfg.limits.idle_timeout_ms);
      ms("upstreamTimeoutMs", cfg.limits.upstream_timeout_ms);
      ms("drainTimeoutMs", cfg.limits.drain_timeout_ms);
      ms("maxConnections", cfg.limits.max_connections);
      if (l["maxHeaderBytes"]) {
        cfg.limits.max_head_bytes = static_cast<uint32_t>(number(l["maxHeaderBytes"], "limits.maxHeaderBytes", 1 << 20));
        if (cfg.limits.max_head_bytes < 256) error(l["maxHeaderBytes"], "limits.maxHeaderBytes must be at least 256");
      }
      if (l["maxHeaders"]) {
        cfg.limits.max_headers = static_cast<uint32_t>(number(l["maxHeaders"], "limits.maxHeaders", 10'000));
        if (cfg.limits.max_headers == 0) error(l["maxHeaders"], "limits.maxHeaders must be positive");
      }
    }
    return cfg;
  }

 private:
  std::string source_;
  ConfigMode mode_;
};

}  // namespace

Result<ProxyConfig> parse_config(const std::string& yaml_text, const std::string& source_name, ConfigMode mode) {
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (!root || root.IsNull()) return fail("config.empty", source_name + ": the config is empty");
    return Parser(source_name, mode).parse(root);
  } catch (const ConfigError& e) {
    return fail("config.invalid", e.message);
  } catch (const YAML::Exception& e) {
    return fail("config.yaml", source_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return fail("config.invalid", source_name + ": " + e.what());
  }
}

Result<ProxyConfig> load_config(const std::string& path, ConfigMode mode) {
  auto text = files::read_file(path);
  if (!text) return fail(text.error());
  return parse_config(*text, path, mode);
}

}  // namespace mg::proxy
