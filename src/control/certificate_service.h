// control/certificate_service.h — CertificateService.Sign: a proxy's certificate request,
// authenticated by a bootstrap token (first request) or by the caller's current SVID (renewal),
// signed by the CA for the identity that authentication names — never one the CSR asks for — with
// the mesh's certificate lifetime. Holds no state of its own.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "telemetry/metrics.h"

namespace mg::control {

class BootstrapCredentials;
class CaRotation;
class ConfigModel;

struct CertificateServiceDeps {
  std::string trust_domain;
  const ConfigModel& model;
  const CaRotation& ca;
  const BootstrapCredentials& bootstrap;
  telemetry::Registry& metrics;
};

std::unique_ptr<grpc::Service> make_certificate_service(const CertificateServiceDeps& deps);

}  // namespace mg::control
