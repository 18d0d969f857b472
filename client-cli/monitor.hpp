#pragma once

#include "api.hpp"

namespace tunlabctl {

// Prints every signal tunlabd emits, one line each, until interrupted.
int monitor(Api& api, bool json);

}  // namespace tunlabctl
