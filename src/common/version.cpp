#include "common/version.h"

namespace mg {

const char* version() { return MESHGUARD_VERSION; }

}  // namespace mg
