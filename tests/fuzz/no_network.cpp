// Linked into every fuzz target: a getaddrinfo() that never leaves the machine.
//
// Endpoint::parse() resolves host names with getaddrinfo(); under a fuzzer that would send
// millions of random names to the system's resolver (DNS, mDNS, /etc/hosts through NSS): slow,
// flaky and noisy on the network. This definition in the executable takes precedence over
// glibc's (and over the weak ASan interceptor):
//   - numeric hosts go to the real getaddrinfo() with AI_NUMERICHOST added, which only parses
//     (inet_aton/inet_pton and, for "fe80::1%lo", if_nametoindex() - a local ioctl);
//   - a few fixed names resolve from the table below, so the code after resolution (port
//     patching, IPv6 results, round trips) is still exercised;
//   - every other name fails with EAI_NONAME, as an unknown name would.
// Everything else in the parsers is the shipped code.

#include <dlfcn.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>

namespace {

using GetaddrinfoFunction = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

GetaddrinfoFunction real_getaddrinfo() {
    static const auto function =
        reinterpret_cast<GetaddrinfoFunction>(dlsym(RTLD_NEXT, "getaddrinfo"));
    return function;
}

struct FakeName {
    std::string_view name;
    const char* address;
};

constexpr FakeName kFakeNames[] = {
    {"localhost", "127.0.0.1"},
    {"ip6-localhost", "::1"},
    {"server.test", "10.9.0.11"},
    {"server6.test", "fd00:9::11"},
};

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** results) {
    const GetaddrinfoFunction real = real_getaddrinfo();
    if (real == nullptr) {
        return EAI_SYSTEM;
    }
    addrinfo numeric{};
    if (hints != nullptr) {
        numeric = *hints;
    }
    const bool numeric_only = (numeric.ai_flags & AI_NUMERICHOST) != 0;
    numeric.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    const int status = real(node, service, &numeric, results);
    if (status == 0 || numeric_only || node == nullptr) {
        return status;
    }
    for (const auto& fake : kFakeNames) {
        if (fake.name == node) {
            return real(fake.address, service, &numeric, results);
        }
    }
    return EAI_NONAME;
}
