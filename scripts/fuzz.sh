#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for SECONDS (default 30), failing on
# any crash, panic, timeout (an input taking over 10 s: a hang) or out-of-memory. Run longer by
# hand, e.g. `bash scripts/fuzz.sh 600`, or one target: `FUZZ_TARGETS=read_from bash
# scripts/fuzz.sh 3600`. New corpus entries accumulate in fuzz/corpus/<target> (not
# committed); crashing inputs land in fuzz/artifacts/<target>/.
#
# Toolchain. cargo-fuzz builds with `-Z` flags (sanitizers, build-std) that only nightly
# accepts. CI machines have stable Rust only and cannot download a toolchain, so:
# - with a nightly toolchain installed (`rustup toolchain list`), `cargo +nightly fuzz` with
#   AddressSanitizer, which also checks the unsafe AVX-512 scan in hamming.rs;
# - otherwise stable with `--sanitizer none`: then cargo-fuzz passes no `-Z` flag (only the
#   stable `-Cpasses=sancov-module` / `-Cllvm-args=-sanitizer-coverage-*` codegen options and
#   `--cfg fuzzing`), so no RUSTC_BOOTSTRAP is needed. Rust's own bounds and overflow checks
#   (debug assertions are on) still catch what safe code can get wrong. FUZZ_SANITIZER=address
#   on stable forces AddressSanitizer through RUSTC_BOOTSTRAP=1, which works but makes stable
#   accept unstable flags: not the default.
# FUZZ_TOOLCHAIN=nightly|stable|'' ('': the default one) and FUZZ_SANITIZER=none|address
# override the choice.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
targets=(${FUZZ_TARGETS:-read_from cursors index_ops})

if ! cargo fuzz --version >/dev/null 2>&1; then
    # A debug build of the tool is enough (it only drives cargo) and compiles faster: measured
    # on a busy 2-core machine, 85-95 s against 110 s for the release build. Building the
    # targets from scratch (libFuzzer's C++ included) took about 105 s more there.
    echo "installing cargo-fuzz"
    start=$SECONDS
    cargo install cargo-fuzz --locked --debug --quiet
    echo "installed cargo-fuzz in $((SECONDS - start)) s"
fi

# Empty: the default toolchain (stable on CI).
toolchain="${FUZZ_TOOLCHAIN-}"
if [[ -z "${FUZZ_TOOLCHAIN+set}" ]]; then
    toolchains=$(rustup toolchain list 2>/dev/null || true)
    if grep -q '^nightly' <<<"$toolchains"; then toolchain=nightly; fi
fi
sanitizer="${FUZZ_SANITIZER:-}"
if [[ -z "$sanitizer" ]]; then
    if [[ "$toolchain" == nightly* ]]; then sanitizer=address; else sanitizer=none; fi
fi
if [[ "$toolchain" != nightly* && "$sanitizer" != none ]]; then
    export RUSTC_BOOTSTRAP=1
fi
fuzz=(cargo ${toolchain:+"+$toolchain"} fuzz)
options=(-O --sanitizer "$sanitizer" --target-dir "fuzz/target/${toolchain:-default}-$sanitizer")
echo "fuzzing with ${toolchain:-the default toolchain}, sanitizer $sanitizer, ${seconds} s per target: ${targets[*]}"

start=$SECONDS
"${fuzz[@]}" build "${options[@]}"
echo "built the fuzz targets in $((SECONDS - start)) s"

# libFuzzer is single-threaded: the targets run side by side, one per core.
mkdir -p fuzz/artifacts
pids=()
for target in "${targets[@]}"; do
    corpora=("fuzz/corpus/$target")
    [[ -d "fuzz/seeds/$target" ]] && corpora+=("fuzz/seeds/$target")
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    # -timeout: one input running 10 s is a hang; -rss_limit_mb: the whole process past 2 GiB
    # is a memory blow-up (the reader target bounds each read's heap much more tightly).
    "${fuzz[@]}" run "${options[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"fuzz/artifacts/$target.log" 2>&1 &
    pids+=($!)
done

failed=()
for k in "${!targets[@]}"; do
    target="${targets[$k]}"
    if wait "${pids[$k]}"; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/artifacts/$target.log" |
            grep -o '[0-9]*$' || echo '?')
        echo "fuzz $target: ok, $runs executions in ${seconds} s"
    else
        failed+=("$target")
        echo "fuzz $target: FAILED; the end of fuzz/artifacts/$target.log:"
        tail -n 60 "fuzz/artifacts/$target.log"
        for crash in "fuzz/artifacts/$target"/*; do
            [[ -f "$crash" ]] || continue
            echo "input $crash (base64): $(base64 -w0 "$crash")"
            echo "reproduce: ${fuzz[*]} run ${options[*]} $target $crash"
        done
    fi
done
if ((${#failed[@]})); then
    echo "fuzzing failed: ${failed[*]}"
    exit 1
fi
