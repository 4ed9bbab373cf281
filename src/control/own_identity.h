// control/own_identity.h — the control plane's own identities in its data dir: control/ (the
// serving certificate gRPC presents, re-read by gRPC from serving.pem) and admin/ (the admin SVID
// meshguardctl uses). The serving one is issued at every start, both when missing or invalid,
// and both again once half of their life has passed (checked by housekeeping); root-cert.pem
// follows the CA's bundle. Owns those files; holds no other state.
#pragma once

#include <chrono>
#include <string>

#include "ca/authority.h"
#include "common/result.h"
#include "telemetry/metrics.h"

namespace mg::control {

class OwnIdentities {
 public:
  OwnIdentities(std::string data_dir, std::string trust_domain, std::chrono::seconds ttl,
                telemetry::Registry& metrics)
      : data_dir_(std::move(data_dir)),
        trust_domain_(std::move(trust_domain)),
        ttl_(ttl),
        metrics_(metrics) {}

  // Issues with `authority` what needs issuing. At start a failure is returned; later it is
  // logged and retried at the next call.
  Status renew(const ca::Authority& authority, bool at_start) const;

 private:
  const std::string data_dir_;
  const std::string trust_domain_;
  const std::chrono::seconds ttl_;
  telemetry::Registry& metrics_;
};

}  // namespace mg::control
