#!/bin/bash
# Builds (if needed) and runs every libFuzzer target for SECONDS each, on a temporary copy of
# the seed corpus (the committed corpus never grows). Fails if any target finds a crash, a leak,
# a timeout or a broken invariant; the reproducer is kept and printed. Inputs in
# regressions/<target>/ (bugs found before) run once first and must pass.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]        default: 20 s each, all targets
#
# Environment:
#   FUZZ_BUILD_DIR   build tree holding fuzzers/ (default build/fuzz-standalone, configured from
#                    tests/fuzz on first use; the `fuzz` preset's build/fuzz works too)
#   FUZZ_NO_BUILD=1  do not (re)build first (CTest sets this: the tree is already built)
#   FUZZ_ARTIFACTS   where reproducers are kept (default <build dir>/fuzz-artifacts)
#   FUZZ_KEEP=1      keep the temporary directory (grown corpora, logs) and print its path
#   FUZZ_ARGS        extra libFuzzer flags, e.g. "-jobs=2 -workers=2" or "-use_value_profile=1"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
all_targets=(fuzz_packet fuzz_address fuzz_config fuzz_wg_quick fuzz_bus_options fuzz_offload
             fuzz_wireguard)

seconds=${1:-20}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
case $seconds in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
for target in "${targets[@]}"; do
    case " ${all_targets[*]} " in
        *" $target "*) ;;
        *) echo "run.sh: unknown target '$target' (have: ${all_targets[*]})" >&2; exit 2 ;;
    esac
done

build=${FUZZ_BUILD_DIR:-$repo/build/fuzz-standalone}
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        generator=()
        command -v ninja >/dev/null && generator=(-G Ninja)
        cmake -S "$here" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
    fi
    cmake --build "$build" --target "${targets[@]}"
fi

artifacts=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
work=$(mktemp -d "${TMPDIR:-/tmp}/tunlab-fuzz.XXXXXX")
# The file-reading targets' directories, in memory if possible; a crashing fuzzer cannot clean
# up after itself.
scratch=$(mktemp -d /dev/shm/tunlab-fuzz.XXXXXX 2>/dev/null || mktemp -d "$work/scratch.XXXXXX")
export TUNLAB_FUZZ_SCRATCH=$scratch
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    echo "run.sh: keeping $work"
    trap 'rm -rf "$scratch"' EXIT
else
    trap 'rm -rf "$work" "$scratch"' EXIT
fi

failed=()
printf '%-17s %-6s %12s %9s %7s %7s %15s %8s\n' target result execs exec/s cov ft seeds-\>corpus rss
for target in "${targets[@]}"; do
    binary=$build/fuzzers/$target
    if [ ! -x "$binary" ]; then
        echo "run.sh: $binary is missing (build it, or unset FUZZ_NO_BUILD)" >&2
        exit 1
    fi
    dir=$work/$target
    mkdir -p "$dir/corpus" "$dir/artifacts"
    # Inputs that once found a bug run first, each once: a fixed bug stays fixed.
    if [ -d "$here/regressions/$target" ]; then
        for input in "$here/regressions/$target"/*; do
            [ -f "$input" ] || continue
            if ! "$binary" -runs=1 "$input" >"$dir/regression.log" 2>&1; then
                echo "---- $target: regression input $input fails again:"
                grep -E 'invariant broken|runtime error|ERROR|SUMMARY' "$dir/regression.log" |
                    head -n 5 | sed 's/^/    /'
                echo "---- run: $binary $input"
                failed+=("$target:regressions/$(basename "$input")")
            fi
        done
    fi
    [ -d "$here/corpus/$target" ] && cp -R "$here/corpus/$target/." "$dir/corpus/"
    seeds=$(find "$dir/corpus" -type f | wc -l)
    flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix="$dir/artifacts/")
    [ -f "$here/dict/$target.dict" ] && flags+=(-dict="$here/dict/$target.dict")
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    set +e
    "$binary" "${flags[@]}" ${FUZZ_ARGS:-} "$dir/corpus" >"$dir/log" 2>&1
    status=$?
    set -e

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$dir/log" | tail -n 1 || true)
    field() { sed -n "s|.* $1: *\\([^ ]*\\).*|\\1|p" <<<"$last"; }
    crashes=$(find "$dir/artifacts" -type f | wc -l)
    result=ok
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        result=FAIL
        failed+=("$target")
    fi
    printf '%-17s %-6s %12s %9s %7s %7s %15s %8s\n' "$target" "$result" "${execs:-?}" \
        "$(field exec/s)" "$(field cov)" "$(field ft)" "$seeds->$(field corp)" "${rss:-?}MB"
    echo "    $last"
    if [ "$result" = FAIL ]; then
        mkdir -p "$artifacts/$target"
        echo "---- $target failed (exit $status); the end of its log:"
        grep -v -E '^#[0-9]+' "$dir/log" | tail -n 60 | sed 's/^/    /'
        for crash in "$dir"/artifacts/*; do
            [ -f "$crash" ] || continue
            cp "$crash" "$artifacts/$target/"
            kept=$artifacts/$target/$(basename "$crash")
            echo "---- reproducer $kept ($(stat -c %s "$crash") bytes); run: $binary $kept"
            head -c 512 "$crash" | od -A d -c | head -n 20 | sed 's/^/    /'
        done
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "run.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all ${#targets[@]} fuzz target(s) ran ${seconds}s without a finding"
