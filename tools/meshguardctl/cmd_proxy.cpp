// meshguardctl's view of what the proxies enforce: `apply --wait`'s rollout check (over the
// control plane's workload list) and `proxy-config secret|policies|endpoints WORKLOAD` (the proxy's own
// /config_dump, read from the admin endpoint it reported to the control plane, or --admin).
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "admin_client.h"
#include "commands.h"
#include "common/time.h"

namespace mg::ctl {
namespace pb = ::meshguard::v1;

bool enforces_revision(const pb::WorkloadStatus& w, int64_t revision) {
  return w.connected() && !w.config_version().empty() && w.acked_version() == w.config_version() &&
         w.synced_revision() >= revision;
}

int wait_for_revision(const Conn& c, int64_t revision, std::chrono::milliseconds timeout) {
  auto stub = admin_stub(c);
  if (!stub) return fail_line(stub.error().to_string());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pb::ListWorkloadsResponse resp;
    auto ctx = call_context();
    auto st = (*stub)->ListWorkloads(ctx.get(), workloads_request(), &resp);
    if (!st.ok()) return rpc_failed(c, st);
    int connected = 0, selected = 0;
    std::vector<std::string> waiting, nacked;
    for (const auto& w : resp.workloads()) {
      if (!w.connected()) continue;
      ++connected;
      const std::string name = w.namespace_() + "/" + w.name();
      if (enforces_revision(w, revision)) {
        if (w.config_revision() >= revision) ++selected;
      } else if (!w.nack_error().empty()) {
        nacked.push_back(name + ": NACK: " + w.nack_error());
      } else {
        waiting.push_back(name +
                          (w.config_revision() >= revision ? " (pushed, not ACKed)" : " (not pushed yet)"));
      }
    }
    if (waiting.empty() && nacked.empty()) {
      std::cout << "revision " << revision << ": " << selected << " of " << connected
                << " connected proxies received it and ACKed; the others were not selected by the change\n";
      return 0;
    }
    // A NACK is final for this snapshot: the proxy keeps its last good one until the next change.
    if (!nacked.empty() || std::chrono::steady_clock::now() >= deadline) {
      std::cerr << "meshguardctl: revision " << revision << " is not in force on "
                << (waiting.size() + nacked.size()) << " of " << connected << " connected proxies"
                << (nacked.empty() ? " (timed out)" : "") << ":\n";
      for (const auto& n : nacked) std::cerr << "  " << n << "\n";
      for (const auto& n : waiting) std::cerr << "  " << n << "\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

namespace {

constexpr size_t kMaxDumpBytes = 16 << 20;

// GET http://ADDRESS/path from a proxy's admin endpoint (one request; it closes the connection).
Result<std::string> admin_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    return fail("ctl.bad_admin", "admin address must be HOST:PORT, got \"" + address + "\"");
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return fail("ctl.admin_unreachable", "cannot resolve " + address + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, freeaddrinfo);
  int fd = -1;
  for (auto* ai = found; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    timeval tv{10, 0};  // bounds connect, each write and each read
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  if (fd < 0) return fail("ctl.admin_unreachable", "cannot connect to the proxy's admin endpoint " + address);
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return fail("ctl.admin_unreachable", "cannot send to " + address);
  std::string in;
  char buf[16384];
  while (in.size() <= kMaxDumpBytes) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return fail("ctl.admin_unreachable", "no answer from " + address + " within 10 s");
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  if (in.size() > kMaxDumpBytes)
    return fail("ctl.admin_answer", address + path + " answered more than 16 MiB");
  auto head_end = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos)
    return fail("ctl.admin_answer", address + " did not answer HTTP");
  if (in.compare(9, 3, "200") != 0)
    return fail("ctl.admin_answer", address + path + " answered " + in.substr(9, 3));
  return in.substr(head_end + 4);
}

// WORKLOAD as istioctl and kubectl spell it: NAME[.NAMESPACE] or NAMESPACE/NAME (-n otherwise).
std::pair<std::string, std::string> split_workload(const std::string& arg, const std::string& ns) {
  if (auto slash = arg.find('/'); slash != std::string::npos)
    return {arg.substr(0, slash), arg.substr(slash + 1)};
  if (auto dot = arg.find('.'); dot != std::string::npos) return {arg.substr(dot + 1), arg.substr(0, dot)};
  return {ns, arg};
}

struct ProxyTarget {
  std::string key;                           // namespace/name ("" with --admin)
  std::string admin;                         // host:port
  std::optional<pb::WorkloadStatus> status;  // the control plane's record, if asked
  int64_t store_revision = 0;
};

Result<ProxyTarget> find_proxy(const Conn& c, const std::string& workload, const std::string& ns,
                               const std::string& admin) {
  ProxyTarget t;
  if (!admin.empty()) {
    t.admin = admin;
    return t;
  }
  if (workload.empty())
    return fail("ctl.usage", "a WORKLOAD (NAME[.NAMESPACE]) or --admin HOST:PORT is required");
  auto [want_ns, want_name] = split_workload(workload, ns);
  t.key = want_ns + "/" + want_name;
  auto stub = admin_stub(c);
  if (!stub) return fail(stub.error());
  pb::ListWorkloadsResponse resp;
  auto ctx = call_context();
  auto st = (*stub)->ListWorkloads(ctx.get(), workloads_request(), &resp);
  if (!st.ok()) {
    rpc_failed(c, st);
    return fail("ctl.rpc", "");  // printed already
  }
  t.store_revision = resp.revision();
  for (const auto& w : resp.workloads()) {
    if (w.namespace_() != want_ns || w.name() != want_name) continue;
    if (!w.connected())
      return fail("ctl.not_connected", "workload " + t.key + " is not connected to the control plane");
    if (w.admin_address().empty())
      return fail("ctl.no_admin_endpoint",
                  "workload " + t.key + "'s proxy reported no admin endpoint (no admin listener?)");
    t.admin = w.admin_address();
    t.status = w;
    return t;
  }
  return fail("ctl.not_found", "workload " + t.key + " not found (see `meshguardctl workload list`)");
}

Result<nlohmann::json> config_dump(const ProxyTarget& t) {
  auto body = admin_get(t.admin, "/config_dump");
  if (!body) return fail(body.error());
  auto j = nlohmann::json::parse(*body, nullptr, false);
  if (!j.is_object()) return fail("ctl.admin_answer", t.admin + "/config_dump is not a JSON object");
  return j;
}

std::string text_of(const nlohmann::json& j, const char* key, const std::string& fallback = "-") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_string()) return it->get<std::string>().empty() ? fallback : it->get<std::string>();
  return it->dump();
}

// Valid now: notBefore <= now <= notAfter (RFC 3339 UTC text compares in time order).
bool valid_now(const nlohmann::json& cert) {
  const std::string now = timefmt::utc_rfc3339(std::time(nullptr));
  const std::string nb = text_of(cert, "notBefore", ""), na = text_of(cert, "notAfter", "");
  return !nb.empty() && !na.empty() && nb <= now && now <= na;
}

int run_secret(const Conn& c, const std::string& workload, const std::string& ns, const std::string& admin,
               const std::string& output) {
  auto target = find_proxy(c, workload, ns, admin);
  if (!target) return target.error().message.empty() ? 1 : fail_line(target.error().to_string());
  auto dump = config_dump(*target);
  if (!dump) return fail_line(dump.error().to_string());
  const nlohmann::json cert = dump->value("certificate", nlohmann::json::object());
  if (output == "json") {
    std::cout << nlohmann::json{{"workload",
                                 target->key.empty() ? nlohmann::json() : nlohmann::json(target->key)},
                                {"spiffeId", cert.value("spiffeId", "")},
                                {"state", cert.value("state", "")},
                                {"chain", cert.value("chain", nlohmann::json::array())},
                                {"trustBundle", cert.value("trustBundle", nlohmann::json::object())},
                                {"issuingRoot", cert.value("issuingRoot", nlohmann::json())},
                                {"lastError", cert.value("lastError", nlohmann::json())}}
                     .dump(2)
              << "\n";
    return 0;
  }
  const std::string state = text_of(cert, "state");
  if (!cert.contains("chain")) {
    std::cout << "no certificate loaded (state " << state << ")\n";
    if (cert.contains("lastError")) std::cout << "last error: " << text_of(cert, "lastError") << "\n";
    return 0;
  }
  std::cout << "identity: " << text_of(cert, "spiffeId") << "   state: " << state << "\n";
  std::vector<std::vector<std::string>> rows{
      {"RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"}};
  const auto& chain = cert["chain"];
  for (size_t i = 0; i < chain.size(); ++i) {
    const char* type = i == 0                                ? "Cert Chain"
                       : chain[i].value("selfSigned", false) ? "Root CA (in chain)"
                                                             : "Intermediate CA";
    rows.push_back({"default", type, i == 0 ? state : "-", valid_now(chain[i]) ? "true" : "false",
                    text_of(chain[i], "serial"), text_of(chain[i], "notAfter"),
                    text_of(chain[i], "notBefore")});
  }
  const auto issuing = cert.value("issuingRoot", nlohmann::json());
  for (const auto& root :
       cert.value("trustBundle", nlohmann::json::object()).value("roots", nlohmann::json::array())) {
    const bool is_issuing =
        issuing.is_object() && issuing.value("fingerprint", "") == root.value("fingerprint", "");
    rows.push_back({"ROOTCA", is_issuing ? "Root CA (issuing)" : "Root CA", "-",
                    valid_now(root) ? "true" : "false", text_of(root, "serial"), text_of(root, "notAfter"),
                    text_of(root, "notBefore")});
  }
  print_table(rows);
  if (cert.contains("lastError")) std::cout << "last error: " << text_of(cert, "lastError") << "\n";
  return 0;
}

// SYNCED / STALE / NACK as `workload list` shows it, with what it means.
std::string ack_state(const ProxyTarget& t) {
  if (!t.status) return "unknown (read from the proxy directly: --admin)";
  const auto& w = *t.status;
  if (enforces_revision(w, t.store_revision))
    return "SYNCED (ACKed; the store is at revision " + std::to_string(t.store_revision) + ")";
  if (!w.nack_error().empty()) return "NACK: " + w.nack_error();
  return "STALE (store revision " + std::to_string(t.store_revision) + ", snapshot of revision " +
         std::to_string(w.config_revision()) +
         (w.acked_version() == w.config_version() ? "" : " not ACKed yet") + ")";
}

int run_policies(const Conn& c, const std::string& workload, const std::string& ns, const std::string& admin,
                 const std::string& output) {
  auto target = find_proxy(c, workload, ns, admin);
  if (!target) return target.error().message.empty() ? 1 : fail_line(target.error().to_string());
  auto dump = config_dump(*target);
  if (!dump) return fail_line(dump.error().to_string());
  const nlohmann::json cp = dump->value("controlPlane", nlohmann::json());
  const nlohmann::json policy = dump->value("policy", nlohmann::json::object());
  const nlohmann::json wl = dump->value("workload", nlohmann::json::object());
  if (output == "json") {
    nlohmann::json out{{"workload", wl}, {"controlPlane", cp}, {"policy", policy}};
    if (target->status) {
      const auto& w = *target->status;
      out["ack"] = {{"sync", enforces_revision(w, target->store_revision) ? "SYNCED"
                             : w.nack_error().empty()                     ? "STALE"
                                                                          : "NACK"},
                    {"storeRevision", target->store_revision},
                    {"configRevision", w.config_revision()},
                    {"ackedRevision", w.acked_revision()},
                    {"configVersion", w.config_version()},
                    {"ackedVersion", w.acked_version()},
                    {"nackError", w.nack_error()}};
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "workload:   " << text_of(wl, "namespace") << "/" << text_of(wl, "name") << "\n";
  if (cp.is_object()) {
    std::cout << "snapshot:   revision " << text_of(cp, "revision") << ", version " << text_of(cp, "version")
              << ", received " << text_of(cp, "received") << "\n"
              << "ack state:  " << ack_state(*target) << "\n";
  } else {
    std::cout << "snapshot:   none (standalone proxy: policies from " << text_of(policy, "dir") << ")\n";
  }
  if (!policy.contains("version")) {
    std::cout << "policy:     " << text_of(policy, "engine") << "\n";
    return 0;
  }
  std::cout << "policy:     load " << text_of(policy, "version") << ", sha256 " << text_of(policy, "hash")
            << ", loaded " << text_of(policy, "loadedAt") << "\n";
  if (!policy["lastError"].is_null())
    std::cout << "last error: " << text_of(policy, "lastError") << " (the previous policy stays in force)\n";
  std::vector<std::vector<std::string>> rows{{"KIND", "NAME", "APPLIES", "ORIGIN"}};
  for (const auto& r : policy.value("resources", nlohmann::json::array()))
    rows.push_back({text_of(r, "kind"), text_of(r, "name"),
                    r.value("appliesToWorkload", false) ? "yes" : "no", text_of(r, "origin")});
  if (rows.size() > 1) print_table(rows);
  return 0;
}

// The proxy's registry view: one row per endpoint of each service port (istioctl's
// `proxy-config endpoints` columns, plus the identity secure naming expects).
int run_endpoints(const Conn& c, const std::string& workload, const std::string& ns, const std::string& admin,
                  const std::string& output) {
  auto target = find_proxy(c, workload, ns, admin);
  if (!target) return target.error().message.empty() ? 1 : fail_line(target.error().to_string());
  auto dump = config_dump(*target);
  if (!dump) return fail_line(dump.error().to_string());
  const nlohmann::json registry = dump->value("registry", nlohmann::json::object());
  if (output == "json") {
    std::cout << nlohmann::json{{"workload", dump->value("workload", nlohmann::json::object())},
                                {"registry", registry}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"ENDPOINT", "STATUS", "OUTLIER CHECK", "ACTIVE", "CLUSTER", "WORKLOAD", "IDENTITY"}};
  size_t services = 0;
  for (const auto& s : registry.value("services", nlohmann::json::array())) {
    ++services;
    for (const auto& p : s.value("ports", nlohmann::json::array())) {
      const auto& endpoints = p.value("endpoints", nlohmann::json::array());
      if (endpoints.empty())
        rows.push_back({"-", "NO ENDPOINTS", "-", "-", text_of(p, "cluster"), "-", "-"});
      for (const auto& e : endpoints) {
        std::string outlier = "OK";
        if (e.value("ejected", false)) outlier = "EJECTED (" + text_of(e, "ejectedForMs") + " ms left)";
        const auto times = e.value("ejections", 0);
        if (times > 0) outlier += ", ejected " + std::to_string(times) + "x";
        rows.push_back({text_of(e, "address"), e.value("healthy", false) ? "HEALTHY" : "UNHEALTHY", outlier,
                        text_of(e, "activeRequests"), text_of(p, "cluster"), text_of(e, "workload"),
                        text_of(e, "identity")});
      }
    }
  }
  if (services == 0) {
    std::cout << "no services in the proxy's registry\n";
    return 0;
  }
  print_table(rows);
  return 0;
}

}  // namespace

void register_proxy_commands(CLI::App& app, Action& action) {
  static Conn conn_secret, conn_policies, conn_endpoints;
  static std::string workload, ns = "default", admin, output = "table";
  auto* pc = app.add_subcommand("proxy-config", "What one proxy enforces, read from its admin endpoint");
  pc->require_subcommand(1);
  auto add_common = [&](CLI::App* cmd, Conn& conn) {
    cmd->add_option("workload", workload,
                    "WORKLOAD: NAME[.NAMESPACE] or NAMESPACE/NAME (found via the control plane)");
    cmd->add_option("-n,--namespace", ns, "namespace of WORKLOAD (default: default)");
    cmd->add_option("--admin", admin,
                    "read this proxy admin endpoint (HOST:PORT) directly, without the control plane");
    cmd->add_option("-o,--output", output, "table|json")->check(CLI::IsMember({"table", "json"}));
    add_conn_options(cmd, conn);
  };
  auto* secret = pc->add_subcommand(
      "secret", "The workload's certificate chain, trust bundle and issuing root (serials, validity, state)");
  add_common(secret, conn_secret);
  secret->callback(
      [&action] { action = [] { return run_secret(conn_secret, workload, ns, admin, output); }; });
  auto* policies = pc->add_subcommand(
      "policies", "The policy snapshot the proxy enforces: its store revision, version and ACK state");
  add_common(policies, conn_policies);
  policies->callback(
      [&action] { action = [] { return run_policies(conn_policies, workload, ns, admin, output); }; });
  auto* endpoints = pc->add_subcommand(
      "endpoints", "The proxy's service registry: each service port's endpoints, health, ejection, identity");
  add_common(endpoints, conn_endpoints);
  endpoints->callback(
      [&action] { action = [] { return run_endpoints(conn_endpoints, workload, ns, admin, output); }; });
}

}  // namespace mg::ctl
