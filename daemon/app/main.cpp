#include <malloc.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "app/daemon.hpp"
#include "app/directories.hpp"
#include "util/log.hpp"

int main(int argc, char** argv) {
    tunlab::DaemonOptions options;
    options.directories = tunlab::default_directories();
    options.version = TUNLAB_VERSION;
    bool no_bus = false;
    bool no_offload = false;
    bool debug = false;

    CLI::App app{"tunlabd: the tunlab VPN tunnel daemon"};
    app.set_version_flag("--version", std::string(TUNLAB_VERSION));
    app.add_option("--config-dir", options.directories.config,
                   "Directory of tunnel files (<name>.json)")
        ->capture_default_str();
    app.add_option("--state-dir", options.directories.state,
                   "Directory for state kept across restarts")
        ->capture_default_str();
    app.add_option("--runtime-dir", options.directories.runtime, "Directory for status.json")
        ->capture_default_str();
    app.add_option("--uapi-dir", options.directories.uapi,
                   "Directory of the wireguard tunnels' control sockets (<interface>.sock), "
                   "where wg(8) finds them")
        ->capture_default_str();
    app.add_flag("--no-bus", no_bus,
                 "Run from the configuration directory only, without the D-Bus API");
    app.add_flag("--no-offload", no_offload,
                 "Move packets one by one: no TUN segmentation offload, UDP GSO or coalescing");
    app.add_flag("--debug", debug, "Log debug messages");
    CLI11_PARSE(app, argc, argv);

    tunlab::log::set_debug(debug);
    // A fixed threshold: big blocks (a 30 MB bus message, its copies) are mapped and go back
    // to the kernel when freed. glibc would otherwise raise the threshold after the first such
    // free and keep the next ones in the heap, so that one big call left its size behind.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    // Before any thread exists, so that every thread inherits the mask and only the control
    // loop's signalfd sees these signals.
    tunlab::Daemon::block_signals();
    try {
        options.use_bus = !no_bus;
        options.offload = !no_offload;
        tunlab::Daemon daemon(options);
        return daemon.run();
    } catch (const std::exception& error) {
        tunlab::log::error("fatal: ", error.what());
        return 1;
    }
}
