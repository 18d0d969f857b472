// libFuzzer target: what the D-Bus API does with a caller's a{sv} option maps and object paths
// (dbus/service/options.hpp, dbus/service/object_paths.hpp), up to the configuration checks the
// daemon runs next:
//   CreateTunnel(name, options) -> create_tunnel_request(name, options)
//   AddPeer(endpoint, options)  -> add_peer_request(endpoint, options, listen address)
// (dbus/service/requests.hpp: what the adaptors call), after options_to_json on its own.
//   RemovePeer(path)            -> peer_id_from_path(tunnel, path)
//
// Input: a small binary format, read front to back (make_bus_seeds.py writes it; past the end
// every read gives 0, which ends every list):
//   call     = byte%3: 0 CreateTunnel(bool "tun0"-else-string, options)
//                      1 AddPeer(string endpoint, byte tunnel, options): tunnel bit 0
//                      listen_address
//                        "::" (else "0.0.0.0"), bit 1 protocol wireguard (else plain)
//                      2 RemovePeer(string tunnel, integer<u64> id, string path)
//   string   = byte t: t < 0x80: t bytes follow; t >= 0x80: word (t-0x80) % |kWords|
//   integer  = byte t: t == 0: sizeof(T) bytes follow, big-endian; else kNumbers[(t-1) %
//   |kNumbers|] bool     = byte & 1;  count = byte % 16 options  = count, then count x (string key,
//   variant) variant  = byte kind % 25 (% 9 when nested 7 deep), then its value:
//     0 s  1 b  2 y  3 q  4 u  5 t  6 n  7 i  8 x  9 as  10 v  11 av  12 a{sv}  13 aa{sv}
//     14 d  15 o  16 ao  17 g  18 ay  19 a{ss}  20 (si)  21 a{iv}  22 ai  23 aas  24 ab
//   (what options_to_json accepts is dbus/common/variant_json.hpp's business; whatever it
//   refuses must be a RequestError).
// Strings are made what sd-bus would deliver (valid UTF-8, no NUL): nothing else reaches a
// handler. No bus connection is needed to build Variants.
//
// A handler turns RequestError and ConfigError into the documented org.tunlab1.Error.* replies;
// any other exception becomes Error.Failed (or, before guarded(), a crash), so here it traps.

#include <sdbus-c++/Error.h>
#include <sdbus-c++/Message.h>
#include <sdbus-c++/Types.h>
#include <systemd/sd-bus.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "config/tunnel_config.hpp"
#include "core/error.hpp"
#include "fuzz_check.hpp"
#include "service/object_paths.hpp"
#include "service/options.hpp"
#include "service/requests.hpp"

namespace {

using nlohmann::json;
using tunlab::bus::Options;

// A variant that holds a variant ("v" inside "v"), which busctl can send ("v v u 1400") but
// sdbus::Variant's constructor cannot build from a Variant (that is its copy constructor).
struct VariantBox {
    sdbus::Variant inner;
};

}  // namespace

template <>
struct sdbus::signature_of<VariantBox> {
    static constexpr bool is_valid = true;
    static const std::string str() { return "v"; }
};

namespace {

sdbus::Message& operator<<(sdbus::Message& message, const VariantBox& box) {
    return message << box.inner;
}

constexpr int kMaximumDepth = 7;         // options_to_json refuses more than 4 levels
constexpr size_t kMaximumElements = 15;  // all 12 tunnel settings fit in one map

const char* const kWords[] = {
    // keys
    "interface", "mode", "protocol", "addresses", "mtu", "listen_address", "listen_port",
    "learn_peers", "max_learned_peers", "learned_peer_timeout", "routes", "peers", "endpoint",
    "allowed_ips", "keepalive", "name",
    // values
    "tun", "tap", "plain", "wireguard", "tun0", "tap%d", "tun%d%d", "192.168.53.99/24",
    "fd00:53::99/64", "192.168.60.0/24", "192.168.60.5/24", "0.0.0.0/0", "::/0", "10.9.0.11:9090",
    "[fd00::1]:9090", "[::ffff:10.9.0.5]:9090", "localhost:9090", "server6.test:1", "::", "0.0.0.0",
    "10.9.0.11", "", "[fe80::1%lo]:9090", "010.9.0.11:9090", "10.9.0.11:0",
    // keys of protocol wireguard, and keys to put there
    "public_key", "preshared_key", "private_key", "private_key_file", "preshared_key_file",
    "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "/etc/shadow"};

const int64_t kNumbers[] = {0,       1,     24,        25,        179,           180,
                            575,     576,   1279,      1280,      1472,          1500,
                            9090,    65535, 65536,     86400 * 7, 86400 * 7 + 1, 1000000,
                            1000001, -1,    INT32_MIN, INT64_MIN, INT64_MAX};

// The input, read front to back; past its end every byte is 0.
class Reader {
  public:
    Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    size_t remaining() const { return size_ - position_; }
    uint8_t byte() { return position_ < size_ ? data_[position_++] : 0; }
    bool boolean() { return (byte() & 1u) != 0; }
    size_t below(size_t limit) { return byte() % limit; }
    std::string bytes(size_t count) {
        count = std::min(count, remaining());
        std::string out(reinterpret_cast<const char*>(data_ + position_), count);
        position_ += count;
        return out;
    }
    template <typename Integer>
    Integer literal() {
        uint64_t value = 0;
        for (size_t i = 0; i < sizeof(Integer); ++i) {
            value = (value << 8) | byte();
        }
        return static_cast<Integer>(value);
    }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t position_ = 0;
};

// Valid UTF-8 without NUL, as sd-bus delivers every string: sd-bus itself is the judge.
std::string as_bus_string(std::string text) {
    std::erase(text, '\0');
    try {
        const sdbus::Variant probe(text);
        return text;
    } catch (const sdbus::Error&) {
        std::erase_if(text, [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
        return text;
    }
}

template <typename T, size_t N>
const T& pick(const T (&array)[N], size_t index) {
    return array[index % N];
}

std::string make_string(Reader& in) {
    const uint8_t tag = in.byte();
    if (tag >= 0x80) {
        return pick(kWords, tag - 0x80u);
    }
    return as_bus_string(in.bytes(tag));
}

template <typename Integer>
Integer make_integer(Reader& in) {
    const uint8_t tag = in.byte();
    if (tag != 0) {
        return static_cast<Integer>(pick(kNumbers, tag - 1u));
    }
    return in.literal<Integer>();
}

sdbus::ObjectPath make_object_path(Reader& in) {
    std::string path = make_string(in);
    if (!sd_bus_object_path_is_valid(path.c_str())) {
        path = "/org/tunlab1";
    }
    return sdbus::ObjectPath(path);
}

sdbus::Variant make_variant(Reader& in, int depth);

Options make_options(Reader& in, int depth) {
    Options options;
    const size_t count = in.below(kMaximumElements + 1);
    for (size_t i = 0; i < count && in.remaining() > 0; ++i) {
        std::string key = make_string(in);
        options.insert_or_assign(std::move(key), make_variant(in, depth + 1));
    }
    return options;
}

template <typename Element, typename Make>
std::vector<Element> make_vector(Reader& in, Make&& make) {
    std::vector<Element> elements;
    const size_t count = in.below(kMaximumElements + 1);
    for (size_t i = 0; i < count && in.remaining() > 0; ++i) {
        elements.push_back(make());
    }
    return elements;
}

sdbus::Variant make_variant(Reader& in, int depth) {
    // Past the depth limit only scalars, so that every input ends.
    const size_t kind = in.below(depth >= kMaximumDepth ? 9 : 25);
    switch (kind) {
        case 0:
            return sdbus::Variant(make_string(in));
        case 1:
            return sdbus::Variant(in.boolean());
        case 2:
            return sdbus::Variant(make_integer<uint8_t>(in));
        case 3:
            return sdbus::Variant(make_integer<uint16_t>(in));
        case 4:
            return sdbus::Variant(make_integer<uint32_t>(in));
        case 5:
            return sdbus::Variant(make_integer<uint64_t>(in));
        case 6:
            return sdbus::Variant(make_integer<int16_t>(in));
        case 7:
            return sdbus::Variant(make_integer<int32_t>(in));
        case 8:
            return sdbus::Variant(make_integer<int64_t>(in));
        case 9:
            return sdbus::Variant(make_vector<std::string>(in, [&] { return make_string(in); }));
        case 10:
            return sdbus::Variant(VariantBox{make_variant(in, depth + 1)});
        case 11:
            return sdbus::Variant(
                make_vector<sdbus::Variant>(in, [&] { return make_variant(in, depth + 1); }));
        case 12:
            return sdbus::Variant(make_options(in, depth));
        case 13:
            return sdbus::Variant(
                make_vector<Options>(in, [&] { return make_options(in, depth); }));
        // Types the API does not accept.
        case 14: {
            const auto bits = in.literal<uint64_t>();
            double number = 0;
            std::memcpy(&number, &bits, sizeof number);
            return sdbus::Variant(number);
        }
        case 15:
            return sdbus::Variant(make_object_path(in));
        case 16:
            return sdbus::Variant(
                make_vector<sdbus::ObjectPath>(in, [&] { return make_object_path(in); }));
        case 17:
            return sdbus::Variant(sdbus::Signature(pick({"", "s", "as", "a{sv}", "v"}, in.byte())));
        case 18: {
            const std::string raw = in.bytes(in.below(17));
            return sdbus::Variant(std::vector<uint8_t>(raw.begin(), raw.end()));
        }
        case 19: {
            std::map<std::string, std::string> map;
            const size_t count = in.below(kMaximumElements + 1);
            for (size_t i = 0; i < count && in.remaining() > 0; ++i) {
                std::string key = make_string(in);
                map.insert_or_assign(std::move(key), make_string(in));
            }
            return sdbus::Variant(map);
        }
        case 20:
            return sdbus::Variant(
                sdbus::Struct<std::string, int32_t>(make_string(in), make_integer<int32_t>(in)));
        case 21: {
            std::map<int32_t, sdbus::Variant> map;
            const size_t count = in.below(kMaximumElements + 1);
            for (size_t i = 0; i < count && in.remaining() > 0; ++i) {
                const auto key = make_integer<int32_t>(in);
                map.insert_or_assign(key, make_variant(in, depth + 1));
            }
            return sdbus::Variant(map);
        }
        case 22:
            return sdbus::Variant(
                make_vector<int32_t>(in, [&] { return make_integer<int32_t>(in); }));
        case 23:
            return sdbus::Variant(make_vector<std::vector<std::string>>(
                in, [&] { return make_vector<std::string>(in, [&] { return make_string(in); }); }));
        default:
            return sdbus::Variant(make_vector<bool>(in, [&] { return in.boolean(); }));
    }
}

// TUNLAB_FUZZ_VERBOSE=1 prints each decoded call in busctl's argument syntax, so that a
// reproducer can be replayed against a running tunlabd with busctl.
bool verbose() {
    static const bool on = std::getenv("TUNLAB_FUZZ_VERBOSE") != nullptr;
    return on;
}

std::string quoted(const std::string& text) {
    return json(text).dump();
}

std::string describe(const sdbus::Variant& value);

std::string describe_options(const Options& options) {
    std::string out = std::to_string(options.size());
    for (const auto& [key, value] : options) {
        out += " " + quoted(key) + " " + describe(value);
    }
    return out;
}

template <typename Element, typename Show>
std::string describe_array(const std::vector<Element>& elements, Show&& show) {
    std::string out = std::to_string(elements.size());
    for (const auto& element : elements) {
        out += " " + show(element);
    }
    return out;
}

std::string describe(const sdbus::Variant& value) {
    const std::string type = value.peekValueType();
    const std::string head = type + " ";
    auto text = [](const std::string& element) { return quoted(element); };
    auto number = [](auto element) { return std::to_string(element); };
    if (type == "s")
        return head + quoted(value.get<std::string>());
    if (type == "b")
        return head + (value.get<bool>() ? "true" : "false");
    if (type == "y")
        return head + std::to_string(value.get<uint8_t>());
    if (type == "q")
        return head + std::to_string(value.get<uint16_t>());
    if (type == "u")
        return head + std::to_string(value.get<uint32_t>());
    if (type == "t")
        return head + std::to_string(value.get<uint64_t>());
    if (type == "n")
        return head + std::to_string(value.get<int16_t>());
    if (type == "i")
        return head + std::to_string(value.get<int32_t>());
    if (type == "x")
        return head + std::to_string(value.get<int64_t>());
    if (type == "d")
        return head + json(value.get<double>()).dump();
    if (type == "o")
        return head + value.get<sdbus::ObjectPath>();
    if (type == "g")
        return head + quoted(value.get<sdbus::Signature>());
    if (type == "v")
        return head + describe(value.get<sdbus::Variant>());
    if (type == "as")
        return head + describe_array(value.get<std::vector<std::string>>(), text);
    if (type == "ay")
        return head + describe_array(value.get<std::vector<uint8_t>>(), number);
    if (type == "ai")
        return head + describe_array(value.get<std::vector<int32_t>>(), number);
    if (type == "ab")
        return head + describe_array(value.get<std::vector<bool>>(), number);
    if (type == "ao") {
        return head + describe_array(value.get<std::vector<sdbus::ObjectPath>>(),
                                     [](const std::string& path) { return path; });
    }
    if (type == "av") {
        return head +
               describe_array(value.get<std::vector<sdbus::Variant>>(),
                              [](const sdbus::Variant& element) { return describe(element); });
    }
    if (type == "a{sv}")
        return head + describe_options(value.get<Options>());
    if (type == "aa{sv}") {
        return head + describe_array(value.get<std::vector<Options>>(),
                                     [](const Options& map) { return describe_options(map); });
    }
    return head + "...";
}

// options_to_json: RequestError is the documented rejection.
std::optional<json> to_json(const Options& options) {
    try {
        json object = tunlab::bus::options_to_json(options);
        FUZZ_CHECK(object.is_object(), "options_to_json did not make an object");
        return object;
    } catch (const tunlab::RequestError& error) {
        FUZZ_CHECK(error.kind() == tunlab::ErrorKind::InvalidArgument,
                   "a bad option must be InvalidArgument");
        FUZZ_CHECK_MESSAGE(error);
        if (verbose()) {
            std::fprintf(stderr, "  -> InvalidArgument: %s\n", error.what());
        }
        return std::nullopt;
    } catch (...) {
        tunlab::fuzz::unexpected_exception("options_to_json");
    }
}

// The bus gives the same JSON a file could hold: it must print and read back the same.
void check_printable(const json& object) {
    std::string text;
    try {
        text = object.dump();
    } catch (...) {
        tunlab::fuzz::unexpected_exception("json::dump of converted options");
    }
    const json again = json::parse(text, nullptr, false);
    FUZZ_CHECK(!again.is_discarded() && again == object, "converted options do not survive text");
}

void create_tunnel(Reader& in) {
    const std::string name = in.boolean() ? std::string("tun0") : make_string(in);
    const Options options = make_options(in, 0);
    if (verbose()) {
        std::fprintf(stderr, "CreateTunnel sa{sv} %s %s\n", quoted(name).c_str(),
                     describe_options(options).c_str());
    }
    const auto object = to_json(options);
    if (!object) {
        return;
    }
    check_printable(*object);
    std::optional<tunlab::TunnelConfig> config;
    try {
        config = tunlab::bus::create_tunnel_request(name, options);
    } catch (const tunlab::ConfigError& error) {
        FUZZ_CHECK_MESSAGE(error);
        if (verbose()) {
            std::fprintf(stderr, "  -> InvalidArgument: %s\n", error.what());
        }
        return;
    } catch (...) {
        tunlab::fuzz::unexpected_exception("create_tunnel_request(name, options)");
    }
    if (verbose()) {
        std::fprintf(stderr, "  -> created: %s\n",
                     tunlab::tunnel_config_to_json(*config).dump().c_str());
    }
    FUZZ_CHECK(tunlab::is_valid_tunnel_name(name), "a tunnel was accepted with a bad name");
    const std::string path = tunlab::bus::tunnel_path(name);
    FUZZ_CHECK(sd_bus_object_path_is_valid(path.c_str()), "tunnel_path is not an object path");

    // The tunnel as it would be saved and restored.
    try {
        const json saved = tunlab::tunnel_config_to_json(*config);
        const auto restored = tunlab::tunnel_config_from_json(name, json::parse(saved.dump()));
        FUZZ_CHECK(restored == *config, "a tunnel made over the bus changes when saved");
    } catch (...) {
        tunlab::fuzz::unexpected_exception("saving a tunnel made over the bus");
    }
}

void add_peer(Reader& in) {
    const std::string endpoint = make_string(in);
    // Bit 0: the tunnel listens on "::" (else 0.0.0.0); bit 1: its protocol is wireguard.
    const uint8_t tunnel = in.byte();
    const tunlab::IpAddress listen = *tunlab::IpAddress::parse((tunnel & 1u) ? "::" : "0.0.0.0");
    const auto protocol =
        (tunnel & 2u) ? tunlab::ProtocolKind::WireGuard : tunlab::ProtocolKind::Plain;
    const Options options = make_options(in, 0);
    if (verbose()) {
        std::fprintf(stderr, "AddPeer sa{sv} %s %s (listen_address %s)\n", quoted(endpoint).c_str(),
                     describe_options(options).c_str(), listen.to_string().c_str());
    }
    const auto object = to_json(options);
    if (!object) {
        return;
    }
    check_printable(*object);
    // What TunnelObject::AddPeer does, up to the tunnel.
    std::optional<tunlab::PeerConfig> peer;
    try {
        peer = tunlab::bus::add_peer_request(endpoint, options, listen, protocol);
    } catch (const tunlab::ConfigError& error) {
        FUZZ_CHECK_MESSAGE(error);
        if (verbose()) {
            std::fprintf(stderr, "  -> InvalidArgument: %s\n", error.what());
        }
        return;
    } catch (const tunlab::RequestError& error) {
        FUZZ_CHECK_MESSAGE(error);
        FUZZ_CHECK(error.kind() == tunlab::ErrorKind::InvalidArgument,
                   "AddPeer refused its options with another error than InvalidArgument");
        if (verbose()) {
            std::fprintf(stderr, "  -> InvalidArgument: %s\n", error.what());
        }
        return;
    } catch (...) {
        tunlab::fuzz::unexpected_exception("add_peer_request(endpoint, options, listen, protocol)");
    }
    if (verbose()) {
        std::fprintf(stderr, "  -> added: %s\n", tunlab::peer_config_to_json(*peer).dump().c_str());
    }
    FUZZ_CHECK(!peer->endpoint || !peer->endpoint->is_ipv6() || listen.family == tunlab::Family::V6,
               "an IPv6 endpoint was accepted for an IPv4 socket");
    try {
        const auto again =
            tunlab::peer_config_from_json(tunlab::peer_config_to_json(*peer), "", listen, protocol);
        FUZZ_CHECK(again == *peer, "a peer added over the bus changes when saved");
    } catch (...) {
        tunlab::fuzz::unexpected_exception("saving a peer added over the bus");
    }
}

void remove_peer(Reader& in) {
    std::string name = make_string(in);
    if (!tunlab::is_valid_tunnel_name(name)) {
        name = "tun0";  // RemovePeer is a method of an existing tunnel
    }
    const auto id = make_integer<tunlab::PeerId>(in);
    const std::string canonical = tunlab::bus::peer_path(name, id);
    FUZZ_CHECK(sd_bus_object_path_is_valid(canonical.c_str()), "peer_path is not an object path");
    FUZZ_CHECK(tunlab::bus::peer_id_from_path(name, canonical) == id,
               "peer_id_from_path(peer_path(id)) != id");

    const std::string path = make_object_path(in);
    const auto parsed = tunlab::bus::peer_id_from_path(name, path);
    if (verbose()) {
        std::fprintf(stderr, "RemovePeer o %s (tunnel %s) -> %s\n", path.c_str(), name.c_str(),
                     parsed ? std::to_string(*parsed).c_str() : "not a peer path");
    }
    if (parsed) {
        FUZZ_CHECK(
            tunlab::bus::peer_id_from_path(name, tunlab::bus::peer_path(name, *parsed)) == parsed,
            "a parsed peer id does not survive peer_path");
        FUZZ_CHECK(path.starts_with(tunlab::bus::tunnel_path(name) + "/peer/"),
                   "a peer path of another tunnel was accepted");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 16 * 1024) {
        return -1;
    }
    Reader in(data, size);
    switch (in.below(3)) {
        case 0:
            create_tunnel(in);
            break;
        case 1:
            add_peer(in);
            break;
        default:
            remove_peer(in);
            break;
    }
    return 0;
}
