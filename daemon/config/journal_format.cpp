#include "config/journal_format.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "crypto/blake2s.hpp"

namespace tunlab::journal {

namespace {

constexpr std::string_view kMagic = "tunlabj1";

template <typename Integer>
void put_le(std::string& out, Integer value) {
    for (size_t i = 0; i < sizeof(Integer); ++i) {
        out += static_cast<char>((value >> (8 * i)) & 0xff);
    }
}

template <typename Integer>
Integer get_le(std::string_view in) {
    Integer value = 0;
    for (size_t i = 0; i < sizeof(Integer); ++i) {
        value |= static_cast<Integer>(static_cast<uint8_t>(in[i])) << (8 * i);
    }
    return value;
}

crypto::Bytes bytes(std::string_view text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

crypto::Mac mac(uint64_t generation, std::string_view length, std::string_view payload) {
    std::string key;
    put_le(key, generation);
    return crypto::keyed_blake2s_128(bytes(key), {bytes(length), bytes(payload)});
}

// A crash while appending can leave the file longer than what was written (the size reached
// the disk, the data did not): such a tail reads as zeros.
bool all_zero(std::string_view rest) {
    return std::all_of(rest.begin(), rest.end(), [](char c) { return c == 0; });
}

}  // namespace

std::string encode_header(uint64_t generation) {
    std::string header(kMagic);
    put_le(header, generation);
    return header;
}

std::string encode_record(uint64_t generation, std::string_view payload) {
    std::string record;
    record.reserve(kRecordHeaderSize + payload.size());
    put_le(record, static_cast<uint32_t>(payload.size()));
    const auto check = mac(generation, std::string_view(record), payload);
    record.append(reinterpret_cast<const char*>(check.data()), check.size());
    record.append(payload);
    return record;
}

Contents read(std::string_view file, uint64_t generation) {
    Contents contents;
    if (file.size() < kHeaderSize || file.substr(0, kMagic.size()) != kMagic ||
        get_le<uint64_t>(file.substr(kMagic.size())) != generation) {
        contents.end = Contents::End::WrongBase;
        return contents;
    }
    size_t position = kHeaderSize;
    contents.whole_bytes = position;
    while (position < file.size()) {
        const std::string_view rest = file.substr(position);
        if (rest.size() < kRecordHeaderSize) {
            contents.end = Contents::End::TornTail;
            return contents;
        }
        const std::string_view length = rest.substr(0, 4);
        const uint32_t size = get_le<uint32_t>(length);
        if (size > kMaxPayload || size > rest.size() - kRecordHeaderSize) {
            // Runs past the end: cut short by a crash, unless a sane length says otherwise.
            contents.end = size <= kMaxPayload || all_zero(rest) ? Contents::End::TornTail
                                                                 : Contents::End::Corrupt;
            return contents;
        }
        const std::string_view payload = rest.substr(kRecordHeaderSize, size);
        const auto expected = mac(generation, length, payload);
        if (std::memcmp(expected.data(), rest.data() + 4, expected.size()) != 0) {
            // The last record in the file: its write did not complete. Anything after it means
            // a record in the middle went bad, and what follows depends on it.
            const bool last = kRecordHeaderSize + size == rest.size();
            contents.end =
                last || all_zero(rest) ? Contents::End::TornTail : Contents::End::Corrupt;
            return contents;
        }
        contents.records.emplace_back(payload);
        position += kRecordHeaderSize + size;
        contents.whole_bytes = position;
    }
    return contents;
}

}  // namespace tunlab::journal
