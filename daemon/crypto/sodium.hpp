#pragma once

// Internal to daemon/crypto: libsodium must be initialised once before its random generator
// and AEADs are used (it picks CPU-specific implementations there).

#include <sodium.h>

namespace tunlab::crypto::detail {

void ensure_sodium();

}  // namespace tunlab::crypto::detail
