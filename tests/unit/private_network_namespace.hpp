#pragma once

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <cstring>

namespace tunlab {

// Tests against real kernel objects (devices, sockets, routes) in a private network namespace
// of the test process, so that the host is never touched. Needs root; skipped without it.
class PrivateNetworkNamespaceTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        if (in_private_namespace_) {
            return;  // one per process: every suite of the executable shares it
        }
        if (unshare(CLONE_NEWNET) == 0) {
            in_private_namespace_ = true;
        } else {
            unshare_error_ = errno;
        }
    }

    void SetUp() override {
        if (unshare_error_ == EPERM) {
            GTEST_SKIP() << "needs root (CAP_SYS_ADMIN) for a private network namespace";
        }
        ASSERT_TRUE(in_private_namespace_) << "unshare(CLONE_NEWNET): " << strerror(unshare_error_);
    }

    static inline bool in_private_namespace_ = false;
    static inline int unshare_error_ = 0;
};

}  // namespace tunlab
