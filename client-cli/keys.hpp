#pragma once

#include <istream>
#include <stdexcept>
#include <string>

namespace tunlabctl {

// Keys as `wg` handles them: 32 bytes in base64 (44 characters), from a file or stdin. Local
// work that needs no tunlabd, and the only crypto tunlabctl does (crypto/: X25519 from
// libsodium).

struct KeyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The key in `path` (one line), checked, as base64 to send; `option` names it in errors.
std::string read_key_file(const std::string& path, const std::string& option);
// `tunlabctl genkey`: a new private key on stdout.
int print_new_private_key();
// `tunlabctl pubkey`: the public key of the private key on `in`.
int print_public_key(std::istream& in);

}  // namespace tunlabctl
