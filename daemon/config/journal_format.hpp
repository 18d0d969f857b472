#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tunlab {

// The framing of a state journal (see StateStore): a header naming the base file it belongs to,
// then records appended one write() each:
//
//   header:  "tunlabj1" (8 bytes) | generation (8 bytes, little-endian)
//   record:  payload length (4 bytes, little-endian) | MAC (16 bytes) | payload
//
// The MAC is keyed BLAKE2s-128 over the length and the payload, keyed with the generation: a
// record torn by a crash, rotted on disk, or copied from another journal fails it. The generation
// is a random number the base file carries too, so that a journal left behind by a crash between
// two steps of a compaction (new base written, old journal not yet gone) is never replayed onto
// the base that already holds its changes.
namespace journal {

inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kRecordHeaderSize = 4 + 16;
// No change is this big (10,000 peers at once are about 2 MB); a length above it is damage.
inline constexpr uint32_t kMaxPayload = 64u << 20;

std::string encode_header(uint64_t generation);
std::string encode_record(uint64_t generation, std::string_view payload);

struct Contents {
    // How the journal ends after its last whole record.
    enum class End {
        Whole,      // at a record boundary
        TornTail,   // in a record that a crash cut short (it ran to the end of the file)
        Corrupt,    // in a record that fails its check with more data after it: damage
        WrongBase,  // not a journal of this generation (or not a journal): nothing in it applies
    };
    std::vector<std::string> records;  // the payloads of the whole records, in order
    End end = End::Whole;
    size_t whole_bytes = 0;  // bytes up to the end of the last whole record
};

// Splits `file` (a whole journal's bytes) into its records, up to the first that is not whole.
Contents read(std::string_view file, uint64_t generation);

}  // namespace journal
}  // namespace tunlab
