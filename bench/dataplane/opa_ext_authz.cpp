// mg-bench-opa-ext-authz: an ext_authz gRPC provider (envoy.service.auth.v3.Authorization/Check)
// that decides with meshguard's own OPAPolicy evaluation — the sidecar-OPA architecture of the
// issue 14 benchmark, so the CUSTOM row and the in-proxy OPAPolicy row run the same Rego engine on
// the same input document and differ only by the hop. The CheckRequest is read back into the
// request the proxy would have judged (policy::Request), then policy::run_opa_policies decides.
// Plaintext gRPC on 127.0.0.1 only; prints "grpc PORT" once serving.
//   mg-bench-opa-ext-authz --policy FILE --namespace NS --service-account SA
//                          [--label K=V]... [--trust-domain TD]
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "policy/engine.h"
#include "policy/opa.h"
#include "policy/parse.h"

namespace pb = envoy::service::auth::v3;

namespace {

struct Options {
  std::string policy_file, ns, service_account, trust_domain = "cluster.local";
  std::map<std::string, std::string> labels;
};

void usage(std::ostream& out) {
  out << "usage: mg-bench-opa-ext-authz --policy FILE --namespace NS --service-account SA\n"
         "                              [--label K=V]... [--trust-domain TD]\n"
         "An ext_authz gRPC provider on 127.0.0.1 (port chosen by the kernel, printed as\n"
         "\"grpc PORT\") deciding with the OPAPolicies of FILE for workload NS/SA.\n";
}

class Authorization final : public pb::Authorization::Service {
 public:
  Authorization(std::shared_ptr<const mg::policy::AuthzSnapshot> snapshot, std::string trust_domain)
      : snapshot_(std::move(snapshot)), trust_domain_(std::move(trust_domain)) {}

  grpc::Status Check(grpc::ServerContext*, const pb::CheckRequest* check, pb::CheckResponse* response) override {
    const auto& attrs = check->attributes();
    const auto& http = attrs.request().http();
    mg::policy::Request r;
    const auto& w = snapshot_->workload();
    r.destination_namespace = w.ns;
    r.destination_labels = w.labels;
    r.destination_service_account = w.service_account;
    r.destination_ip = attrs.destination().address().socket_address().address();
    r.destination_port = attrs.destination().address().socket_address().port_value();
    r.source_principal = std::string(mg::policy::strip_spiffe(attrs.source().principal()));
    r.source_ip = attrs.source().address().socket_address().address();
    mg::policy::HttpRequest h;
    h.method = http.method();
    h.path = http.path();
    h.host = http.host();
    for (const auto& [name, value] : http.headers()) h.headers.emplace_back(name, value);
    r.http = std::move(h);
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    r.time = now;

    mg::policy::OpaInputContext ctx;
    ctx.trust_domain = trust_domain_;
    ctx.peer_identity = !r.source_principal.empty();
    ctx.now = now;
    mg::policy::Decision d;
    if (mg::policy::run_opa_policies(*snapshot_, r, ctx, d)) {
      response->mutable_status()->set_code(0);
      auto* ok = response->mutable_ok_response();
      for (const auto& [name, value] : d.upstream_headers) {
        auto* set = ok->add_headers();
        set->mutable_header()->set_key(name);
        set->mutable_header()->set_value(value);
      }
      return grpc::Status::OK;
    }
    response->mutable_status()->set_code(7);  // PERMISSION_DENIED
    auto* denied = response->mutable_denied_response();
    denied->mutable_status()->set_code(d.status);
    denied->set_body(d.body);
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<const mg::policy::AuthzSnapshot> snapshot_;
  std::string trust_domain_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    }
    if (i + 1 >= argc) {
      usage(std::cerr);
      return 2;
    }
    std::string v = argv[++i];
    if (a == "--policy") {
      o.policy_file = v;
    } else if (a == "--namespace") {
      o.ns = v;
    } else if (a == "--service-account") {
      o.service_account = v;
    } else if (a == "--trust-domain") {
      o.trust_domain = v;
    } else if (a == "--label" && v.find('=') != std::string::npos) {
      o.labels[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
    } else {
      usage(std::cerr);
      return 2;
    }
  }
  if (o.policy_file.empty() || o.ns.empty() || o.service_account.empty()) {
    usage(std::cerr);
    return 2;
  }
  std::ifstream in(o.policy_file);
  if (!in) {
    std::cerr << "cannot read " << o.policy_file << "\n";
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto resources = mg::policy::parse_resources(text.str(), o.policy_file);
  if (!resources) {
    std::cerr << resources.error().message << "\n";
    return 1;
  }
  auto snapshot =
      mg::policy::compile_snapshot(*resources, {o.ns, o.labels, o.service_account}, mg::policy::MeshConfig{});
  if (!snapshot) {
    std::cerr << snapshot.error().message << "\n";
    return 1;
  }
  if ((*snapshot)->opa_policies().empty()) {
    std::cerr << o.policy_file << ": no OPAPolicy selects " << o.ns << "/" << o.service_account << "\n";
    return 1;
  }

  Authorization service(*snapshot, o.trust_domain);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "cannot start the gRPC server\n";
    return 1;
  }
  std::cout << "grpc " << port << std::endl;
  server->Wait();
}
