#include "crypto/kdf.hpp"

#include <array>

#include "crypto/secret_key.hpp"

namespace tunlab::crypto {
namespace {

// Up to three blocks; each reads the previous one, so outputs may not overlap each other, but
// may overlap the key or input (consumed into prk first).
void expand(std::span<const Block> outputs, Bytes key, Bytes input) {
    std::array<uint8_t, kHashSize> prk;
    hmac_blake2s(prk, key, {input});
    std::array<uint8_t, kHashSize> previous;
    for (size_t i = 0; i < outputs.size(); ++i) {
        const uint8_t counter = static_cast<uint8_t>(i + 1);
        const Bytes previous_block = i == 0 ? Bytes{} : Bytes(previous);
        std::array<uint8_t, kHashSize> block;
        hmac_blake2s(block, prk, {previous_block, Bytes(&counter, 1)});
        previous = block;
        std::copy(block.begin(), block.end(), outputs[i].begin());
        secure_wipe(block);
    }
    secure_wipe(previous);
    secure_wipe(prk);
}

}  // namespace

void kdf1(Block t0, Bytes key, Bytes input) {
    const Block outputs[] = {t0};
    expand(outputs, key, input);
}

void kdf2(Block t0, Block t1, Bytes key, Bytes input) {
    const Block outputs[] = {t0, t1};
    expand(outputs, key, input);
}

void kdf3(Block t0, Block t1, Block t2, Bytes key, Bytes input) {
    const Block outputs[] = {t0, t1, t2};
    expand(outputs, key, input);
}

}  // namespace tunlab::crypto
