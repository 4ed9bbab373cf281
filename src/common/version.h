// common/version.h — the meshguard release every binary reports (--version, `meshguardctl version`,
// the control plane's Version RPC): CMake's project(VERSION), so one number is edited in one place.
#pragma once

namespace mg {

const char* version();

}  // namespace mg
