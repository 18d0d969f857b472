#include "keys.hpp"

#include <fstream>
#include <iostream>

#include "crypto/encoding.hpp"
#include "crypto/random.hpp"
#include "crypto/secret_key.hpp"
#include "crypto/x25519.hpp"

namespace tunlabctl {

namespace {

// One line, whitespace around it dropped, decoded into locked memory; the text is wiped.
tunlab::crypto::SecretKey read_private(std::istream& in, const std::string& source) {
    std::string line;
    std::getline(in, line);
    const auto first = line.find_first_not_of(" \t\r");
    const auto last = line.find_last_not_of(" \t\r");
    const std::string_view text = first == std::string::npos
                                      ? std::string_view()
                                      : std::string_view(line).substr(first, last - first + 1);
    tunlab::crypto::SecretKey key;
    const bool valid = tunlab::crypto::key_from_base64(text, key.bytes());
    tunlab::crypto::secure_wipe({reinterpret_cast<uint8_t*>(line.data()), line.size()});
    if (!valid) {
        throw KeyError(source + ": not a key (32 bytes in base64, as `tunlabctl genkey` prints)");
    }
    return key;
}

}  // namespace

std::string read_key_file(const std::string& path, const std::string& option) {
    std::ifstream file(path);
    if (!file) {
        throw KeyError(option + ": cannot read " + path);
    }
    const auto key = read_private(file, option + " " + path);
    return tunlab::crypto::key_to_base64(key.bytes());
}

int print_new_private_key() {
    const auto key = tunlab::crypto::generate_private_key(tunlab::crypto::system_random());
    std::cout << tunlab::crypto::key_to_base64(key.bytes()) << "\n";
    return 0;
}

int print_public_key(std::istream& in) {
    const auto key = read_private(in, "stdin");
    std::cout << tunlab::crypto::key_to_base64(tunlab::crypto::public_key_of(key)) << "\n";
    return 0;
}

}  // namespace tunlabctl
